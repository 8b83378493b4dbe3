"""Pinned npm packages the infrastructure tests run with the machine's Node.js.

Each is installed once into ``.cache/npm/<name>@<version>/`` at the repository root (a
self-ignoring ``.cache/.gitignore`` keeps it out of git), under a file lock so parallel
test processes install it once.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]


def ensure_package(name: str, version: str, timeout: float = 180.0) -> Path:
    """Install `name@version` unless it is there; returns its npm prefix."""
    prefix = _ROOT / ".cache" / "npm" / f"{name.replace('/', '__')}@{version}"
    marker = prefix / "node_modules" / name / "package.json"
    prefix.mkdir(parents=True, exist_ok=True)
    ignore = _ROOT / ".cache" / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    with (prefix / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError(f"npm is not on PATH; {name} comes from npm")
            subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(prefix),
                    "--save-exact",
                    "--no-audit",
                    "--no-fund",
                    f"{name}@{version}",
                ],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
    return prefix


def run_node(prefix: Path, script: str, payload: Any, timeout: float = 120.0) -> Any:
    """Run `script` with `payload` as JSON on stdin, in `prefix`; parse its JSON output."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH")
    run = subprocess.run(
        [node, "-e", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=prefix,
        timeout=timeout,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"node failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout)
