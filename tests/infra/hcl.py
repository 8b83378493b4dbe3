"""Parse Terraform files with HashiCorp's own HCL parser.

``@cdktf/hcl2json`` (pinned below) is the Go `hclsyntax` package compiled to
WebAssembly: the parser Terraform itself uses, so its syntax errors are Terraform's.
The Terraform binary cannot be installed from the package registries this project uses.
"""

from __future__ import annotations

from pathlib import Path

from tests.infra.npm import ensure_package, run_node

PACKAGE = "@cdktf/hcl2json"
VERSION = "0.21.0"

# Reads [{"name":..., "text":...}] on stdin; prints one error message per file ("" if
# it parses).
_SCRIPT = """
const { parse } = require("@cdktf/hcl2json");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
(async () => {
  const out = [];
  for (const file of input) {
    try { await parse(file.name, file.text); out.push(""); }
    catch (e) { out.push(String(e.message || e)); }
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(2); });
"""


def syntax_errors(files: dict[str, str]) -> dict[str, str]:
    """Parse each file's text; the files that do not parse, with Terraform's message."""
    prefix = ensure_package(PACKAGE, VERSION)
    names = list(files)
    results: list[str] = run_node(prefix, _SCRIPT, [{"name": n, "text": files[n]} for n in names])
    return {name: error for name, error in zip(names, results, strict=True) if error}


def read_all(directory: Path) -> dict[str, str]:
    """Every .tf file under `directory`, by path relative to it."""
    return {
        str(path.relative_to(directory)): path.read_text()
        for path in sorted(directory.rglob("*.tf"))
    }
