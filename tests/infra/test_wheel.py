"""The wheel carries the product and nothing of the dev sandbox.

`pip install agentbot` (or an image's `uv sync --no-dev`) gets `bot`, `jobs` and
`agents`, and the libraries they run on; the sandbox and what only it uses (moto's
demo estate, fakeredis's in-process Redis) stay with a checkout of the repository.
"""

from __future__ import annotations

import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_ONLY = {"moto", "fakeredis"}


def test_the_wheel_has_no_sandbox_and_requires_none_of_its_libraries(tmp_path: Path) -> None:
    """`uv build --wheel`: no `sandbox/` inside, and no moto or fakeredis in Requires-Dist."""
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path), "--quiet"],
        cwd=ROOT,
        check=True,
        timeout=240,
    )
    (wheel,) = tmp_path.glob("agentbot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        fields = Parser().parsestr(archive.read(metadata).decode())
    packages = {name.split("/")[0] for name in names if not name.endswith(".dist-info/")}
    assert {"bot", "jobs", "agents"} <= packages
    assert "sandbox" not in packages
    assert "bot/aws/listeners.py" in names and "jobs/aws/digest.py" in names
    required = {Requirement(r).name for r in fields.get_all("Requires-Dist") or []}
    assert "slack-bolt" in required and "boto3" in required
    assert required & SANDBOX_ONLY == set()
