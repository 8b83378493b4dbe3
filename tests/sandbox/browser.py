"""Debian's Chromium and a pinned playwright-core from npm, for the sandbox's browser test.

playwright-core is the library without browsers: it drives the system Chromium
(`/usr/bin/chromium`) over the DevTools protocol, so nothing is downloaded besides
the npm package, which is installed once into ``.cache/playwright-core/<version>/``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

PLAYWRIGHT_CORE_VERSION = "1.65.1"
CHROMIUM = Path("/usr/bin/chromium")
# Debian's fonts-noto-color-emoji: without it the screenshots show emoji as boxes.
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
REPO_ROOT = Path(__file__).resolve().parents[2]
ENSURE_CHROMIUM = REPO_ROOT / "scripts" / "ensure-chromium.sh"


class BrowserUnavailableError(RuntimeError):
    """Chromium or playwright-core could not be made available."""


def browser_required() -> bool:
    """Whether a missing browser fails the test rather than skipping it.

    In CI (`CI` set) and when the test command asks for every test
    (`AGENTBOT_REQUIRE_ALL=1`), a skipped browser test would hide a broken setup.
    """
    return bool(os.environ.get("CI")) or os.environ.get("AGENTBOT_REQUIRE_ALL") == "1"


def ensure_chromium() -> Path | None:
    """The system Chromium, installed with apt through the script when it is missing.

    Returns:
        Its path, or None when it cannot be installed here (not root, no apt, offline).
    """
    if CHROMIUM.exists() and EMOJI_FONT.exists():
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            [str(ENSURE_CHROMIUM)], capture_output=True, text=True, timeout=900, check=False
        )
    return CHROMIUM if CHROMIUM.exists() else None


def ensure_playwright_core(version: str = PLAYWRIGHT_CORE_VERSION) -> Path:
    """The installed ``playwright-core`` package directory, installing it with npm if needed.

    Raises:
        BrowserUnavailableError: npm is missing or the install failed.
    """
    prefix = REPO_ROOT / ".cache" / "playwright-core" / version
    package = prefix / "node_modules" / "playwright-core"
    if _installed(package) == version:
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserUnavailableError("npm is not on PATH; install Node.js")
    cache = prefix.parent.parent
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / ".gitignore").exists():
        (cache / ".gitignore").write_text("*\n")
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix.parent / ".install.lock").open("w") as lock:
        # Parallel test runs may all want it; one npm at a time.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(package) != version:
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(prefix),
                    "--save-exact",
                    "--no-audit",
                    "--no-fund",
                    "--update-notifier=false",
                    "--loglevel=error",
                    f"playwright-core@{version}",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if done.returncode != 0:
                raise BrowserUnavailableError(f"npm install failed: {done.stderr[-2000:]}")
    if _installed(package) != version:
        raise BrowserUnavailableError(f"playwright-core {version} is not where npm put it")
    return package


def _installed(package: Path) -> str | None:
    try:
        return str(json.loads((package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None
