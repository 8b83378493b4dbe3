"""Pinned npm packages for the tests, installed once into the repository's `.cache/`.

The Claude Code CLI, the Codex CLI and the JavaScript test runners all come this way:
an exact version, a lock so that parallel test processes run npm only once, and a
self-ignoring `.gitignore` that keeps the cache out of git.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def install_lock(directory: Path) -> Iterator[None]:
    """Hold the install lock of `directory` (created if missing)."""
    # Parallel test workers may all ask for a package at once; only one may run npm.
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".install.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def keep_out_of_git(cache_root: Path) -> None:
    """Make `cache_root` ignore itself, without editing the repository's own .gitignore."""
    cache_root.mkdir(parents=True, exist_ok=True)
    marker = cache_root / ".gitignore"
    if not marker.exists():
        marker.write_text("*\n")


def npm_install(
    prefix: Path,
    specs: Sequence[str],
    *,
    timeout: float,
    error: type[Exception],
    optional: bool = False,
) -> None:
    """`npm install --prefix <prefix>` of exact `name@version` specs, quietly.

    Args:
        prefix: The npm prefix to install into.
        specs: The packages, each `name@version`.
        timeout: Seconds allowed for npm.
        error: What to raise, with a message saying why, when npm is missing or fails.
        optional: Install optional dependencies even where a user config leaves them out
            (a CLI whose native binary ships as one would otherwise be a stub).
    """
    npm = shutil.which("npm")
    if npm is None:
        raise error("npm is not on PATH; install Node.js to get it")
    command = [
        npm,
        "install",
        "--prefix",
        str(prefix),
        "--save-exact",
        *(["--include=optional"] if optional else []),
        "--no-audit",
        "--no-fund",
        "--update-notifier=false",
        "--loglevel=error",
        *specs,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise error(f"npm install timed out after {timeout}s") from exc
    if done.returncode != 0:
        raise error(f"npm install failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
