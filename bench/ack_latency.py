"""Benchmark: how fast `/agent run` is acknowledged, against the floor of a bare Bolt app.

Starts `agentbot serve` on PostgreSQL and Redis, and beside it a minimal Bolt app that
only acknowledges `/agent` (`bench/minimal_app.py`) under the same server
arrangement, workers and threads. Sends N signed `/agent run` deliveries, each with its own
trigger id, from C client threads on persistent connections: first to the floor, then
to Agentbot, once per concurrency level (by default 1, the unloaded latency, and 20,
which saturates a 2-core machine). Prints p50/p95/p99/max and errors for both and the
ratio between them.

Then checks that nothing was lost or doubled: exactly N tasks in the database, N
distinct plan jobs on the `plan` queue (no worker runs, so they all wait there),
each the job its task points at.

Run: uv run python bench/ack_latency.py [--n 500] [--concurrency 1,20] [--workers 2] [--threads 8]
Writes bench/results/ack_latency.json.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness import (
    FIXABLE,
    Load,
    Reply,
    Stack,
    fmt_ms,
    reply_text,
    run_load,
    write_results,
)
from rq import Queue


def check_accounting(stack: Stack, n: int) -> dict[str, Any]:
    """Tasks, jobs and deliveries after N acknowledged runs: one of each per request."""
    plan = Queue("plan", connection=stack.redis)
    queued = set(plan.get_job_ids())
    rows = stack.rows("SELECT job_id FROM tasks")
    task_jobs = [row[0] for row in rows]
    return {
        "tasks": len(task_jobs),
        "plan_jobs_queued": len(queued),
        "tasks_with_their_job_queued": sum(1 for job in task_jobs if job in queued),
        "distinct_job_ids": len(set(task_jobs)),
        "sync_jobs_queued": stack.queue_length("default"),
        "deliveries_recorded": stack.scalar(
            "SELECT count(*) FROM slack_deliveries WHERE key LIKE 'command:%'"
        ),
        "expected": n,
    }


def ratios(serve: dict[str, Any], floor: dict[str, Any]) -> dict[str, float]:
    """Agentbot's percentiles over the floor's."""
    return {
        key: round(serve[key] / floor[key], 2)
        for key in ("p50_ms", "p95_ms", "p99_ms")
        if serve[key] and floor[key]
    }


def main() -> int:
    """Measure the floor and Agentbot, check the accounting, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="requests per server and level")
    parser.add_argument(
        "--concurrency", default="1,20", help="client threads; a comma-separated list runs each"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per server")
    parser.add_argument("--max-seconds", type=float, default=45, help="time bound per load")
    args = parser.parse_args()
    levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]

    def acked(reply: Reply) -> bool:
        return True

    def queued(reply: Reply) -> bool:
        return ":inbox_tray:" in reply_text(reply) and "queued" in reply_text(reply)

    def helped(reply: Reply) -> bool:
        return "/agent run" in reply_text(reply)

    print(
        f"{args.n} signed /agent run requests per server and level, "
        f"gunicorn + uvicorn {args.workers} workers x {args.threads} threads"
    )
    measured: list[dict[str, Any]] = []
    loads: list[Load] = []
    with Stack() as stack:
        floor = stack.start_floor(args.workers, args.threads)
        serve = stack.start_serve(args.workers, args.threads)
        signer = stack.signer

        def load(port: int | None, text: str, count: int, threads: int, accept: Any) -> Load:
            return run_load(
                port or 0,
                [signer.command(text) for _ in range(count)],
                concurrency=threads,
                max_seconds=args.max_seconds,
                signer=signer,
                accept=accept,
            )

        # Warm-up: imports, connection pools, Bolt's lazy set-up. `help` makes no task,
        # so the accounting below counts only the measured requests.
        load(floor.port, "help", args.warmup, 4, acked)
        load(serve.port, "help", args.warmup, 4, helped)

        for threads in levels:
            floor_load = load(floor.port, f"run {FIXABLE}", args.n, threads, acked)
            serve_load = load(serve.port, f"run {FIXABLE}", args.n, threads, queued)
            loads += [floor_load, serve_load]
            floor_summary, serve_summary = floor_load.summary(), serve_load.summary()
            measured.append(
                {
                    "concurrency": threads,
                    "floor": floor_summary,
                    "agentbot": serve_summary,
                    "ratio_agentbot_to_floor": ratios(serve_summary, floor_summary),
                }
            )
            print(f"\nconcurrency {threads}:")
            print(
                f"{'':10} {'p50':>10} {'p95':>10} {'p99':>10} {'max':>10} {'req/s':>8} "
                f"{'errors':>7}"
            )
            for label, summary in (("floor", floor_summary), ("agentbot", serve_summary)):
                print(
                    f"{label:10} {fmt_ms(summary['p50_ms']):>10} {fmt_ms(summary['p95_ms']):>10} "
                    f"{fmt_ms(summary['p99_ms']):>10} {fmt_ms(summary['max_ms']):>10} "
                    f"{summary['requests_per_second']:>8} {summary['errors']:>7}"
                )
            ratio = measured[-1]["ratio_agentbot_to_floor"]
            print(
                "ratio agentbot/floor: "
                + ", ".join(f"{key.removesuffix('_ms')} {value}x" for key, value in ratio.items())
            )
        n = sum(level["agentbot"]["requests"] for level in measured)
        accounting = check_accounting(stack, n)

    accounting_ok = (
        accounting["tasks"] == n
        and accounting["plan_jobs_queued"] == n
        and accounting["tasks_with_their_job_queued"] == n
        and accounting["distinct_job_ids"] == n
    )
    errors = sum(load.errors for load in loads)
    summary: dict[str, str] = {}
    for level in measured:
        c, serve_s, floor_s = level["concurrency"], level["agentbot"], level["floor"]
        ratio = level["ratio_agentbot_to_floor"]
        summary[f"ack p50 / p99, concurrency {c}"] = (
            f"agentbot {fmt_ms(serve_s['p50_ms'])} / {fmt_ms(serve_s['p99_ms'])}, "
            f"floor {fmt_ms(floor_s['p50_ms'])} / {fmt_ms(floor_s['p99_ms'])}, "
            f"ratio {ratio.get('p50_ms', '-')}x / {ratio.get('p99_ms', '-')}x"
        )
        # With every client thread busy, requests per second is the server's throughput.
        served, floor_rate = serve_s["requests_per_second"], floor_s["requests_per_second"]
        summary[f"requests per second, concurrency {c}"] = (
            f"agentbot {served}, floor {floor_rate}, "
            f"{served / floor_rate if floor_rate else 0:.2f} of the floor"
        )
    summary["ack errors"] = f"{errors} of {sum(load.sent for load in loads)}"
    summary["one task + one queued job per request"] = "yes" if accounting_ok else "NO"
    results = {
        "requests_per_level": args.n,
        "gunicorn": {"worker_class": "uvicorn", "workers": args.workers, "threads": args.threads},
        "levels": measured,
        "accounting": accounting,
        "accounting_ok": accounting_ok,
        "summary": summary,
    }
    path = write_results("ack_latency", results)

    print(
        f"\naccounting: {accounting['tasks']} tasks, {accounting['plan_jobs_queued']} plan jobs "
        f"queued, {accounting['tasks_with_their_job_queued']} tasks with their own job queued, "
        f"for {n} requests: {'ok' if accounting_ok else 'MISMATCH'}"
    )
    for load in loads:
        for sample in load.error_samples[:3]:
            print(f"  error: {sample}")
    print(f"wrote {path.relative_to(path.parents[2])}")
    return 0 if accounting_ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
