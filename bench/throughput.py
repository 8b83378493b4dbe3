"""Benchmark: tasks per minute through the whole lifecycle, and the bot's own cost per task.

Starts `agentbot serve`, then for each K in `--workers` starts K workers (through
`bench/timed_worker.py`, which times jobs and agent calls) and sends M `/agent run`
requests at once. An approver answers every plan posted in Slack with a signed
`/agent approve T-n`, so each task runs queued -> planning -> awaiting approval ->
approved -> executing -> succeeded with the scripted agent, the bot running the
repo's suite three times (before, RED, GREEN) and pushing the branch.

For each round it reports tasks per minute (M over the time from the first request
to the last task finishing) and, per task, where the time went: the agent's calls,
the test runs, and everything else the bot did (the HTTP requests, forking job
horses, database and Redis, git, Slack updates) — the bot's own overhead.

Run: uv run python bench/throughput.py [--tasks 8] [--workers 1,2,4]
Writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from typing import Any

from harness import (
    APPROVER,
    FIXABLE,
    Client,
    Signer,
    Stack,
    listening,
    reply_text,
    wait_until,
    write_results,
)
from timed_worker import AGENT_KEY, JOBS_KEY

PLAN = re.compile(r"^Plan for (T-\d+)$")
TERMINAL = ("succeeded", "failed", "rejected", "cancelled")


class Approver:
    """Approves every plan the fake Slack sees posted, over signed HTTP, as an approver."""

    def __init__(self, port: int, signer: Signer) -> None:
        self.client = Client(port, signer)
        self.pending: queue.Queue[str | None] = queue.Queue()
        self.latency: dict[str, float] = {}
        self.refused: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def saw(self, method: str, params: dict[str, Any]) -> None:
        """Fake Slack listener: queue an approval for each plan message (never block here)."""
        if method == "chat.postMessage":
            match = PLAN.match(str(params.get("text") or ""))
            if match:
                self.pending.put(match.group(1))

    def _run(self) -> None:
        while (key := self.pending.get()) is not None:
            try:
                reply = self.client.command(f"approve {key}", user=APPROVER)
            except (OSError, http.client.HTTPException) as exc:
                self.refused.append(f"{key}: {type(exc).__name__}: {exc}")
                continue
            if reply.status == 200 and "You approved" in reply_text(reply):
                self.latency[key] = reply.seconds
            else:
                self.refused.append(f"{key}: {reply.status} {reply_text(reply)[:120]}")

    def __enter__(self) -> Approver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.pending.put(None)
        self.thread.join(10)
        self.client.close()


def drain(stack: Stack, key: str) -> list[dict[str, Any]]:
    """Take every entry the timed workers pushed to a Redis list."""
    entries = stack.redis.lrange(key, 0, -1)
    stack.redis.delete(key)
    return [json.loads(entry) for entry in entries]


def test_seconds(result: dict[str, Any] | None) -> float:
    """Time the bot spent running the repo's test command for one task."""
    if not result:
        return 0.0
    runs = (result.get(name) or {} for name in ("tests_before", "tests_red", "tests_after"))
    return sum(float(run.get("duration_seconds") or 0.0) for run in runs)


def one_round(
    stack: Stack, port: int, approver: Approver, tasks: int, workers: int, max_seconds: float
) -> dict[str, Any]:
    """M tasks through the lifecycle on K fresh workers; the figures for this round."""
    drain(stack, JOBS_KEY)
    drain(stack, AGENT_KEY)
    first_id = int(stack.scalar("SELECT coalesce(max(id), 0) FROM tasks")) + 1
    started_workers = stack.start_workers(workers, timed=True)
    client = Client(port, stack.signer)
    ack: dict[int, float] = {}
    started = time.time()
    for _ in range(tasks):
        reply = client.command(f"run {FIXABLE}")
        match = re.search(r"T-(\d+) queued", reply_text(reply))
        if reply.status != 200 or match is None:
            raise RuntimeError(f"/agent run was not queued: {reply.status} {reply.body!r}")
        ack[int(match.group(1))] = reply.seconds
    client.close()
    ids = sorted(ack)

    def finished() -> bool:
        done = stack.scalar(
            "SELECT count(*) FROM tasks WHERE id >= :first AND state = ANY(:terminal)",
            first=first_id,
            terminal=list(TERMINAL),
        )
        return int(done) >= tasks

    timed_out = False
    try:
        wait_until(finished, max_seconds, f"{tasks} tasks to finish", interval=0.1)
    except TimeoutError:
        timed_out = True
    # Let the last Slack updates land before the workers stop and the tally is taken.
    try:
        wait_until(stack.drained, 30, "the queues to drain", interval=0.1)
    except TimeoutError:
        timed_out = True
    stack.stop(started_workers)

    rows = stack.rows(
        "SELECT id, state, error, result, created_at, finished_at, outcome_ts, version, "
        "slack_version "
        "FROM tasks WHERE id >= :first ORDER BY id",
        first=first_id,
    )
    states: dict[str, int] = defaultdict(int)
    for row in rows:
        states[row.state] += 1
    finished_at = [row.finished_at.timestamp() for row in rows if row.finished_at]
    wall = (max(finished_at) - started) if finished_at else float("nan")

    job_time: dict[int, float] = defaultdict(float)
    job_kinds: dict[str, list[float]] = defaultdict(list)
    for entry in drain(stack, JOBS_KEY):
        if entry["task_id"] is not None:
            job_time[int(entry["task_id"])] += entry["seconds"]
        job_kinds[entry["func"].rsplit(".", 1)[-1]].append(entry["seconds"])
    agent_time: dict[int, float] = defaultdict(float)
    for entry in drain(stack, AGENT_KEY):
        agent_time[int(entry["task"].removeprefix("T-"))] += entry["seconds"]

    per_task = []
    for row in rows:
        http = ack.get(row.id, 0.0) + approver.latency.get(f"T-{row.id}", 0.0)
        tests = test_seconds(row.result)
        agent = agent_time[row.id]
        bot = job_time[row.id] + http
        per_task.append(
            {
                "task": row.id,
                "state": row.state,
                "error": row.error,
                "lifecycle_seconds": round(
                    (row.finished_at - row.created_at).total_seconds() if row.finished_at else 0, 3
                ),
                "bot_busy_seconds": round(bot, 3),
                "tests_seconds": round(tests, 3),
                "agent_seconds": round(agent, 3),
                "overhead_seconds": round(bot - tests - agent, 3),
                "slack_current": row.outcome_ts is not None and row.slack_version == row.version,
            }
        )

    def mean(name: str) -> float:
        return round(statistics.fmean(t[name] for t in per_task), 3) if per_task else 0.0

    return {
        "workers": workers,
        "tasks": tasks,
        "task_ids": [ids[0], ids[-1]] if ids else [],
        "states": dict(states),
        "timed_out": timed_out,
        "wall_seconds": round(wall, 2),
        "tasks_per_minute": round(tasks / wall * 60, 1) if wall == wall and wall > 0 else None,
        "slack_current_for_all": all(t["slack_current"] for t in per_task),
        "per_task_mean": {
            "bot_busy_seconds": mean("bot_busy_seconds"),
            "tests_seconds": mean("tests_seconds"),
            "agent_seconds": mean("agent_seconds"),
            "overhead_seconds": mean("overhead_seconds"),
            "lifecycle_seconds": mean("lifecycle_seconds"),
        },
        "job_seconds_mean_by_kind": {
            kind: {"count": len(values), "mean": round(statistics.fmean(values), 3)}
            for kind, values in sorted(job_kinds.items())
        },
        "per_task": per_task,
    }


def main() -> int:
    """Run one round per worker count, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="tasks per round (M)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, one round each (K)")
    parser.add_argument("--max-seconds", type=float, default=90, help="time bound per round")
    args = parser.parse_args()
    counts = [int(k) for k in args.workers.split(",") if k.strip()]

    rounds = []
    with Stack() as stack:
        serve = stack.start_serve(workers=1, threads=4)
        approver = Approver(serve.port or 0, stack.signer)
        with approver, listening(stack.slack, approver.saw):
            for workers in counts:
                result = one_round(
                    stack, serve.port or 0, approver, args.tasks, workers, args.max_seconds
                )
                rounds.append(result)
                mean = result["per_task_mean"]
                print(
                    f"K={workers}: {args.tasks} tasks in {result['wall_seconds']} s -> "
                    f"{result['tasks_per_minute']} tasks/min; per task: "
                    f"overhead {mean['overhead_seconds']:.2f} s, tests "
                    f"{mean['tests_seconds']:.2f} s, agent {mean['agent_seconds']:.3f} s; "
                    f"states {result['states']}",
                    flush=True,
                )
        refused = list(approver.refused)

    ok = all(
        r["states"].get("succeeded") == r["tasks"]
        and r["slack_current_for_all"]
        and not r["timed_out"]
        for r in rounds
    )
    results = {
        "tasks_per_round": args.tasks,
        "agent": "scripted",
        "rounds": rounds,
        "approvals_refused": refused,
        "all_succeeded": ok,
        "summary": {
            f"throughput K={r['workers']}": (
                f"{r['tasks_per_minute']} tasks/min, overhead "
                f"{r['per_task_mean']['overhead_seconds']:.2f} s/task"
            )
            for r in rounds
        },
    }
    path = write_results("throughput", results)

    print(f"{'K':>3} {'tasks/min':>10} {'overhead/task':>14} {'tests/task':>11} {'agent/task':>11}")
    for r in rounds:
        mean = r["per_task_mean"]
        print(
            f"{r['workers']:>3} {r['tasks_per_minute']!s:>10} {mean['overhead_seconds']:>12.2f} s "
            f"{mean['tests_seconds']:>9.2f} s {mean['agent_seconds']:>9.3f} s"
        )
    kinds = rounds[0]["job_seconds_mean_by_kind"] if rounds else {}
    print(
        "mean job time (K="
        + str(counts[0])
        + "): "
        + ", ".join(f"{kind} {v['mean']:.2f} s x{v['count']}" for kind, v in kinds.items())
    )
    for line in refused[:3]:
        print(f"  approval refused: {line}")
    print(f"all tasks succeeded with Slack up to date: {'yes' if ok else 'NO'}")
    print(f"wrote {path.relative_to(path.parents[2])}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
