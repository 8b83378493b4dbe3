"""What the sandbox adds to one run of a command: bubblewrap, and its egress proxy.

The same trivial test command (`true`, through `agents.testing.run_tests`, as the
bot runs a repo's suite) runs N times bare, in the sandbox without network (a test
run), and in the sandbox with the egress proxy and its forwarder (an agent run). The
difference of the medians is the added time per sandboxed run; the goal is under
100 ms.

Run: uv run python bench/sandbox_overhead.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import fmt_ms, percentiles, write_results

from agents.sandbox import Endpoint, Sandbox
from agents.testing import run_tests

GOAL_MS = 100.0
MODEL = Endpoint("127.0.0.1", 9)  # never connected to: only the proxy's start counts


def timed(sandbox: Sandbox, workspace: Path, runs: int) -> list[float]:
    """Seconds per run of `true` in `sandbox`, after one warm-up run."""
    run_tests("true", workspace, timeout=60, sandbox=sandbox)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run = run_tests("true", workspace, timeout=60, sandbox=sandbox)
        samples.append(time.perf_counter() - started)
        assert run.exit_code == 0, run.output_tail
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentbot-bench-") as scratch:
        workspace = Path(scratch)
        kinds = {
            "bare": Sandbox(enabled=False),
            "sandbox, no network (test run)": Sandbox(),
            "sandbox + egress proxy (agent run)": Sandbox(egress=frozenset({MODEL})),
        }
        samples = {name: timed(box, workspace, args.runs) for name, box in kinds.items()}
    bare = statistics.median(samples["bare"])
    rows = {}
    print(f"{'run':<36} {'median':>10} {'added':>10} {'goal':>10}")
    for name, values in samples.items():
        median = statistics.median(values)
        added_ms = (median - bare) * 1000
        rows[name] = {**percentiles(values), "added_ms": round(added_ms, 2)}
        goal = "-" if name == "bare" else f"< {GOAL_MS:.0f} ms"
        print(f"{name:<36} {fmt_ms(median * 1000):>10} {fmt_ms(added_ms):>10} {goal:>10}")
    added = {name: row["added_ms"] for name, row in rows.items() if name != "bare"}
    write_results(
        "sandbox_overhead",
        {
            "runs": args.runs,
            "goal_ms": GOAL_MS,
            "kinds": rows,
            "summary": {
                **{f"added, {name}": f"{ms:.1f} ms" for name, ms in added.items()},
                "goal": f"< {GOAL_MS:.0f} ms",
            },
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
