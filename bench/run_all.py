"""Run every benchmark present in `bench/` and print one summary table.

Each benchmark runs as its own process with its default arguments and writes
`bench/results/<name>.json`; this script reads those files back for the table. A
benchmark that is not in the tree yet is skipped with a line saying so.

Run: uv run python bench/run_all.py [--only ack_latency,memory]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
# Modules here that are not benchmarks.
HELPERS = {"harness", "minimal_app", "timed_worker", "run_all"}
# What the project's claims rest on, in the order they run, and how to find each.
EXPECTED = [
    ("ack latency vs a bare Bolt app", "ack_latency"),
    ("pickup latency", "pickup_latency"),
    ("throughput with K workers", "throughput"),
    ("memory of serve and worker", "memory"),
    ("/healthz under slow clients", "slow_clients"),
    ("AWS scan, parallel vs sequential", "aws_scan"),
    ("Cost Explorer calls per digest", "cost*"),
    ("sandbox overhead per run", "sandbox_overhead"),
]


def discover() -> tuple[list[str], list[str]]:
    """Benchmarks to run (expected ones first, then any other), and the missing ones."""
    present = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in HELPERS)
    ordered: list[str] = []
    missing: list[str] = []
    for label, pattern in EXPECTED:
        matches = sorted(p.stem for p in BENCH.glob(f"{pattern}.py") if p.stem not in HELPERS)
        if not matches:
            missing.append(f"{label} (bench/{pattern}.py)")
        ordered += [m for m in matches if m not in ordered]
    ordered += [name for name in present if name not in ordered]
    return ordered, missing


def figures(name: str) -> dict[str, str]:
    """The headline figures of one results file.

    A benchmark may say what its headline is with a `summary` mapping; otherwise its
    top-level numbers are shown.
    """
    path = RESULTS / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"results": f"no readable {path.name}"}
    summary = data.get("summary")
    if isinstance(summary, dict):
        return {str(k): str(v) for k, v in summary.items()}
    return {
        key: str(value)
        for key, value in data.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def main() -> int:
    """Run the benchmarks one after another, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated names to run")
    args = parser.parse_args()
    names, missing = discover()
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        names = [n for n in names if n in wanted]

    outcomes: list[tuple[str, int, float]] = []
    for name in names:
        print(f"\n== {name} ==", flush=True)
        started = time.monotonic()
        code = subprocess.run(
            [sys.executable, str(BENCH / f"{name}.py")], cwd=BENCH.parent, check=False
        ).returncode
        outcomes.append((name, code, time.monotonic() - started))

    print("\n== summary ==")
    rows: list[tuple[str, str, str]] = []
    for name, code, seconds in outcomes:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        rows.append((name, "run", f"{status} in {seconds:.0f} s"))
        rows += [(name, key, value) for key, value in figures(name).items()]
    width_name = max((len(r[0]) for r in rows), default=10)
    width_key = max((len(r[1]) for r in rows), default=10)
    for name, key, value in rows:
        print(f"{name:<{width_name}}  {key:<{width_key}}  {value}")
    for line in missing:
        print(f"skipped: {line} is not there yet")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
