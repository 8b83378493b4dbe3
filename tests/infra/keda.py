"""Validate KEDA custom resources with the JSON schemas generated from KEDA's CRDs.

The schemas come from the npm package ``@kubernetes-models/keda`` (pinned below); its
models' ``validate()`` runs them. Neither kubernetes-validate nor the Kubernetes
OpenAPI documents know custom resources.
"""

from __future__ import annotations

from typing import Any

from tests.infra.npm import ensure_package, run_node

PACKAGE = "@kubernetes-models/keda"
VERSION = "2.0.0"

# Reads [{"kind":..., "object":...}] on stdin; prints one error message per object
# ("" when valid).
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


def validate(objects: list[dict[str, Any]]) -> list[str]:
    """One error message per KEDA object ("" for a valid one)."""
    prefix = ensure_package(PACKAGE, VERSION)
    result: list[str] = run_node(
        prefix, _SCRIPT, [{"kind": o["kind"], "object": o} for o in objects]
    )
    return result
