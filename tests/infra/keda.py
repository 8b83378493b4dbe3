"""Validate KEDA custom resources with the JSON schemas generated from KEDA's CRDs.

The schemas come from the npm package ``@kubernetes-models/keda`` (pinned below),
installed once into ``.cache/kubernetes-models/<version>/`` at the repository root and
run with the machine's Node.js. Neither kubernetes-validate nor the Kubernetes
OpenAPI documents know custom resources.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

KEDA_MODELS_PACKAGE = "@kubernetes-models/keda"
KEDA_MODELS_VERSION = "2.0.0"

_ROOT = Path(__file__).resolve().parents[2]
_PREFIX = _ROOT / ".cache" / "kubernetes-models" / KEDA_MODELS_VERSION

# Reads [{"kind":..., "object":...}] on stdin; prints one error message per object
# ("" when valid). validate() throws with ajv's messages.
_SCRIPT = """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
(async () => {
  const out = [];
  for (const item of input) {
    const mod = await import(`@kubernetes-models/keda/keda.sh/v1alpha1/${item.kind}`);
    try { new mod[item.kind](item.object).validate(); out.push(""); }
    catch (e) { out.push(String(e.message || e)); }
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(2); });
"""


def ensure_installed(timeout: float = 180.0) -> Path:
    """Install the pinned package with npm unless it is there; returns the npm prefix."""
    marker = _PREFIX / "node_modules" / "@kubernetes-models" / "keda" / "package.json"
    _PREFIX.mkdir(parents=True, exist_ok=True)
    ignore = _ROOT / ".cache" / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    with (_PREFIX / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is not on PATH; the KEDA schemas come from npm")
            subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(_PREFIX),
                    "--save-exact",
                    "--no-audit",
                    "--no-fund",
                    f"{KEDA_MODELS_PACKAGE}@{KEDA_MODELS_VERSION}",
                ],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
    return _PREFIX


def validate(objects: list[dict[str, Any]]) -> list[str]:
    """One error message per KEDA object ("" for a valid one)."""
    prefix = ensure_installed()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH")
    payload = json.dumps([{"kind": o["kind"], "object": o} for o in objects])
    run = subprocess.run(
        [node, "-e", _SCRIPT],
        input=payload,
        capture_output=True,
        text=True,
        cwd=prefix,
        timeout=60,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"node failed: {run.stderr[-2000:]}")
    result: list[str] = json.loads(run.stdout)
    return result
