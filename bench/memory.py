"""Benchmark: resident memory of `agentbot serve` after warm-up and of an idle worker.

Reads VmRSS and PSS from /proc for every process of the tree: the gunicorn master
and its workers for `serve`; the worker and its scheduler for `agentbot worker`.
RSS counts pages shared between forked processes once per process; PSS divides
them among the processes sharing them, so the PSS total is what the tree costs.

Order: the worker is measured idle right after it registers, then again idle after
it has planned a few tasks (its forked horses did the work); `serve` is measured
after a warm-up of signed requests (runs, lists, statuses, help).

The floor beside `serve` is the bare Bolt app of the ack benchmark
(`bench/minimal_app.py`) under the same gunicorn settings, warmed with as many
`/agent` requests: what any Bolt app on this server stack costs.

Run: uv run python bench/memory.py [--warmup 300] [--workers 2] [--threads 8]
Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from harness import (
    FIXABLE,
    Reply,
    Stack,
    process_tree_memory,
    run_load,
    wait_until,
    write_results,
)


def describe(label: str, tree: dict[str, Any]) -> str:
    """One line per measured tree."""
    parts = ", ".join(f"{p['rss_kib'] / 1024:.0f}" for p in tree["processes"])
    return (
        f"{label:34} RSS {tree['rss_mib']:7.1f} MiB   PSS {tree['pss_mib']:7.1f} MiB"
        f"   (per process RSS MiB: {parts})"
    )


def main() -> int:
    """Measure serve and worker memory, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=300, help="requests to serve before")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument("--tasks", type=int, default=5, help="tasks the worker plans")
    args = parser.parse_args()

    with Stack() as stack:
        floor = stack.start_floor(args.workers, args.threads)
        floor_load = run_load(
            floor.port or 0,
            [stack.signer.command("help") for _ in range(args.warmup)],
            concurrency=8,
            max_seconds=60,
            signer=stack.signer,
            accept=lambda reply: True,
        )
        floor_warm = process_tree_memory(floor.pid)
        stack.stop([floor])
        serve = stack.start_serve(args.workers, args.threads)
        serve_cold = process_tree_memory(serve.pid)
        (worker,) = stack.start_workers(1, timed=False)
        time.sleep(2)
        worker_idle = process_tree_memory(worker.pid)

        texts = [f"run {FIXABLE}"] * args.tasks
        texts += ["list", "status T-1", "help", "list --mine"] * (args.warmup // 4)
        bodies = [stack.signer.command(text) for text in texts[: max(args.warmup, args.tasks)]]

        def answered(reply: Reply) -> bool:
            return bool(reply.body)

        load = run_load(
            serve.port or 0,
            bodies,
            concurrency=8,
            max_seconds=60,
            signer=stack.signer,
            accept=answered,
        )
        wait_until(
            lambda: (
                stack.scalar("SELECT count(*) FROM tasks WHERE state = 'awaiting_approval'")
                >= args.tasks
            ),
            60,
            f"{args.tasks} plans",
            interval=0.2,
        )
        wait_until(stack.drained, 30, "the queues to drain", interval=0.1)
        time.sleep(1)
        worker_after = process_tree_memory(worker.pid)
        serve_warm = process_tree_memory(serve.pid)

    results = {
        "gunicorn": {"worker_class": "uvicorn", "workers": args.workers, "threads": args.threads},
        "warmup_requests": load.sent,
        "warmup_errors": load.errors,
        "floor_warm": floor_warm,
        "floor_warmup_errors": floor_load.errors,
        "serve_rss_over_floor": round(serve_warm["rss_mib"] / floor_warm["rss_mib"], 2),
        "serve_started": serve_cold,
        "serve_warm": serve_warm,
        "worker_idle": worker_idle,
        "worker_idle_after_tasks": worker_after,
        "tasks_planned": args.tasks,
        "summary": {
            f"serve RSS / PSS ({args.workers} workers, warm)": (
                f"{serve_warm['rss_mib']} / {serve_warm['pss_mib']} MiB"
            ),
            "floor (bare Bolt, same settings) RSS / PSS": (
                f"{floor_warm['rss_mib']} / {floor_warm['pss_mib']} MiB"
            ),
            "serve RSS over the floor's": (f"{serve_warm['rss_mib'] / floor_warm['rss_mib']:.2f}x"),
            "idle worker RSS / PSS": f"{worker_idle['rss_mib']} / {worker_idle['pss_mib']} MiB",
        },
    }
    path = write_results("memory", results)

    print(describe(f"floor (bare Bolt), after {floor_load.sent}", floor_warm))
    print(describe("serve, just started", serve_cold))
    print(describe(f"serve, after {load.sent} requests", serve_warm))
    print(describe("worker, idle", worker_idle))
    print(describe(f"worker, idle after {args.tasks} plans", worker_after))
    print(f"serve RSS over the floor's: {results['serve_rss_over_floor']}x")
    if load.errors or floor_load.errors:
        print(f"warm-up errors: {load.errors}: {load.error_samples[:2]}")
        print(f"floor warm-up errors: {floor_load.errors}: {floor_load.error_samples[:2]}")
    print(f"wrote {path.relative_to(path.parents[2])}")
    return 1 if load.errors or floor_load.errors else 0


if __name__ == "__main__":
    sys.exit(main())
