"""The real JavaScript test runners (mocha, jest, vitest, ava), installed once from npm.

They are pinned below and installed into ``.cache/js-runners/<pins>/`` at the repository
root (kept out of git by a ``.gitignore`` inside ``.cache``), the way the Claude Code CLI
is. A test project reaches them through a ``node_modules`` symlink, as a checked-out
project reaches its own after ``npm install``::

    modules = ensure_js_runners()
    link_node_modules(project, modules)
    run = run_tests("node_modules/.bin/jest --ci", project)

The versions are the newest whose ``engines`` still accept Node 18 and 20, the Node
versions Debian and Ubuntu ship.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.fakes.npm_install import install_lock, keep_out_of_git, npm_install

RUNNERS = {"mocha": "11.8.0", "jest": "30.5.2", "vitest": "3.2.7", "ava": "6.4.1"}

_REPO_ROOT = Path(__file__).resolve().parents[2]


class JsRunnersUnavailableError(RuntimeError):
    """npm is missing or the install failed."""


def _pins() -> list[str]:
    return [f"{name}@{version}" for name, version in sorted(RUNNERS.items())]


def default_prefix() -> Path:
    """``<repo>/.cache/js-runners/<hash of the pins>``: a new pin installs afresh."""
    key = hashlib.sha256(" ".join(_pins()).encode()).hexdigest()[:12]
    return _REPO_ROOT / ".cache" / "js-runners" / key


def _installed(prefix: Path) -> bool:
    bins = prefix / "node_modules" / ".bin"
    return (prefix / ".complete").exists() and all((bins / name).exists() for name in RUNNERS)


def ensure_js_runners(prefix: Path | None = None, timeout: float = 600.0) -> Path:
    """The ``node_modules`` directory holding the pinned runners, installing if needed.

    Raises:
        JsRunnersUnavailableError: npm is not on PATH or ``npm install`` failed.
    """
    prefix = prefix or default_prefix()
    if _installed(prefix):
        return prefix / "node_modules"
    keep_out_of_git(_REPO_ROOT / ".cache")
    with install_lock(prefix.parent):
        if not _installed(prefix):
            npm_install(prefix, _pins(), timeout=timeout, error=JsRunnersUnavailableError)
            (prefix / ".complete").write_text(" ".join(_pins()) + "\n")
    return prefix / "node_modules"


def link_node_modules(project: Path, modules: Path) -> None:
    """Give `project` the runners as its own ``node_modules``."""
    (project / "node_modules").symlink_to(modules, target_is_directory=True)
