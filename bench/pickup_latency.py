"""Benchmark: from enqueue to a worker starting the job to the first Slack update.

Starts `agentbot serve` and K idle `agentbot worker` processes, then sends N
`/agent run` requests one at a time, each after the previous task's plan is posted
(so every job meets an idle worker: this is pickup latency, not queueing). For each
task it takes:

- enqueued: the RQ job's `enqueued_at` (stamped by the web process);
- job started: the job's `started_at` (stamped in the work horse);
- claimed: the `queued -> planning` transition in `task_events`;
- first Slack update: the first `chat.postMessage` of the task's card, seen by the
  fake Slack server as it arrives.

Run: uv run python bench/pickup_latency.py [--n 30] [--workers 2]
Writes bench/results/pickup_latency.json.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from datetime import datetime
from typing import Any

from harness import (
    FIXABLE,
    Client,
    Stack,
    fmt_ms,
    listening,
    percentiles,
    reply_text,
    write_results,
)
from rq.job import Job

CARD = re.compile(r"^(T-\d+) · ")
PLAN = re.compile(r"^Plan for (T-\d+)$")


class SlackClock:
    """When the fake Slack first saw each task's card and plan message (epoch seconds)."""

    def __init__(self) -> None:
        self.first_card: dict[str, float] = {}
        self.plan_posted: dict[str, float] = {}
        self.changed = threading.Condition()

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        if method != "chat.postMessage":
            return
        now = time.time()
        text = str(params.get("text") or "")
        with self.changed:
            card = CARD.match(text)
            if card and not params.get("thread_ts"):
                self.first_card.setdefault(card.group(1), now)
            plan = PLAN.match(text)
            if plan:
                self.plan_posted.setdefault(plan.group(1), now)
            self.changed.notify_all()

    def wait_for_plan(self, key: str, timeout: float) -> bool:
        """Block until the task's plan is posted; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: key in self.plan_posted, timeout)


def epoch(moment: datetime | None) -> float | None:
    """A timezone-aware datetime as epoch seconds."""
    return None if moment is None else moment.timestamp()


def main() -> int:
    """Measure pickup for N tasks on idle workers, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="tasks, one after another")
    parser.add_argument("--workers", type=int, default=2, help="agentbot worker processes")
    parser.add_argument("--gap", type=float, default=0.3, help="idle seconds between tasks")
    parser.add_argument("--max-seconds", type=float, default=90, help="time bound for the run")
    args = parser.parse_args()

    clock = SlackClock()
    sent: dict[str, float] = {}
    timed_out: list[str] = []
    with Stack() as stack, listening(stack.slack, clock):
        serve = stack.start_serve(workers=1, threads=4)
        stack.start_workers(args.workers, timed=False)
        client = Client(serve.port or 0, stack.signer)
        deadline = time.monotonic() + args.max_seconds
        for _ in range(args.n):
            if time.monotonic() > deadline:
                break
            sent_at = time.time()
            reply = client.command(f"run {FIXABLE}")
            match = re.search(r"(T-\d+) queued", reply_text(reply))
            if reply.status != 200 or match is None:
                raise RuntimeError(f"/agent run was not queued: {reply.status} {reply.body!r}")
            key = match.group(1)
            sent[key] = sent_at
            if not clock.wait_for_plan(key, timeout=30):
                timed_out.append(key)
            time.sleep(args.gap)
        client.close()

        claimed = {
            f"T-{task_id}": epoch(at)
            for task_id, at in stack.rows(
                "SELECT task_id, created_at FROM task_events WHERE to_state = 'planning'"
            )
        }
        jobs = {
            f"T-{task_id}": job_id for task_id, job_id in stack.rows("SELECT id, job_id FROM tasks")
        }
        samples: dict[str, list[float]] = {
            "enqueue_to_job_start": [],
            "enqueue_to_claim": [],
            "enqueue_to_first_slack_update": [],
            "request_to_first_slack_update": [],
        }
        for key in sent:
            job = Job.fetch(jobs[key], connection=stack.redis)
            enqueued, started = epoch(job.enqueued_at), epoch(job.started_at)
            card, claim = clock.first_card.get(key), claimed.get(key)
            if enqueued is None or started is None or card is None or claim is None:
                timed_out.append(key)
                continue
            samples["enqueue_to_job_start"].append(started - enqueued)
            samples["enqueue_to_claim"].append(claim - enqueued)
            samples["enqueue_to_first_slack_update"].append(card - enqueued)
            samples["request_to_first_slack_update"].append(card - sent[key])

    figures = {name: percentiles(values) for name, values in samples.items()}
    results = {
        "tasks": len(sent),
        "workers": args.workers,
        "incomplete": sorted(set(timed_out)),
        "figures": figures,
        "summary": {
            "pickup enqueue->job start p50 / p99": (
                f"{fmt_ms(figures['enqueue_to_job_start']['p50_ms'])} / "
                f"{fmt_ms(figures['enqueue_to_job_start']['p99_ms'])}"
            ),
            "pickup enqueue->first Slack update p50 / p99": (
                f"{fmt_ms(figures['enqueue_to_first_slack_update']['p50_ms'])} / "
                f"{fmt_ms(figures['enqueue_to_first_slack_update']['p99_ms'])}"
            ),
        },
    }
    path = write_results("pickup_latency", results)

    print(f"{len(sent)} tasks, one at a time, {args.workers} idle workers")
    print(f"{'':32} {'p50':>10} {'p99':>10} {'max':>10}")
    for name, figure in figures.items():
        label = name.replace("_", " ")
        print(
            f"{label:32} {fmt_ms(figure['p50_ms']):>10} {fmt_ms(figure['p99_ms']):>10} "
            f"{fmt_ms(figure['max_ms']):>10}"
        )
    if timed_out:
        print(f"incomplete: {', '.join(sorted(set(timed_out)))}")
    print(f"wrote {path.relative_to(path.parents[2])}")
    return 1 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
