"""Install and run the real Codex CLI headless against the fake Responses API.

The CLI comes from npm (``@openai/codex``, pinned below; the package carries a native
binary per platform) and is installed once into ``.cache/codex/<version>/`` at the
repository root, kept out of git like the Claude Code cache. Typical use::

    codex = ensure_codex_cli()
    with FakeResponsesServer(brain) as server:
        run = run_headless(
            headless_command(codex, "fix the bug", base_url=server.base_url, workspace=repo),
            cwd=repo,
            env=headless_env(home=tmp_path / "home"),
        )
    assert run.returncode == 0
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.codex import provider_args
from tests.fakes.claude_cli import parse_stream
from tests.fakes.npm_install import install_lock, keep_out_of_git, npm_install

CODEX_PACKAGE = "@openai/codex"
# Pinned so recorded streams and the notes stay true; bump deliberately, then re-run the
# smoke test and re-record the fixtures.
CODEX_VERSION = "0.171.0"
# A model the pinned CLI has metadata for: it offers its full tool set (exec_command,
# apply_patch) and prints no "metadata not found" warning.
MODEL = "gpt-5.5"
# Any non-empty value passes as the provider key; the fake server ignores it.
DUMMY_API_KEY = "sk-codex-fake-key-for-tests"
KEY_VARIABLE = "AGENTBOT_TEST_CODEX_KEY"

_REPO_ROOT = Path(__file__).resolve().parents[2]


class CodexCliUnavailableError(RuntimeError):
    """The CLI could not be installed or does not run here."""


def default_cache_dir(version: str = CODEX_VERSION) -> Path:
    """Where the pinned CLI version is installed: ``<repo>/.cache/codex/<version>``."""
    return _REPO_ROOT / ".cache" / "codex" / version


def codex_executable(prefix: Path) -> Path:
    """Path of the ``codex`` launcher inside an ``npm install --prefix`` directory."""
    return prefix / "node_modules" / ".bin" / "codex"


def installed_version(executable: Path, timeout: float = 30.0) -> str | None:
    """Version reported by ``codex --version`` (``codex-cli 0.171.0``), or None."""
    if not executable.exists():
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="codex-home-") as home:
            proc = subprocess.run(
                [str(executable), "--version"],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                env=headless_env(Path(home)),
            )
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = proc.stdout.split()
    if proc.returncode != 0 or not words:
        return None
    return words[-1]


def ensure_codex_cli(
    prefix: Path | None = None, *, version: str = CODEX_VERSION, timeout: float = 600.0
) -> Path:
    """Return the ``codex`` executable, installing the pinned version with npm if needed.

    Args:
        prefix: npm prefix to install into; :func:`default_cache_dir` by default.
        version: Exact package version to install.
        timeout: Seconds allowed for ``npm install``.

    Returns:
        Absolute path of the ``codex`` launcher.

    Raises:
        CodexCliUnavailableError: npm is missing, the install failed, or the installed
            binary does not report the expected version.
    """
    prefix = prefix or default_cache_dir(version)
    executable = codex_executable(prefix)
    if installed_version(executable) == version:
        return executable
    if prefix == default_cache_dir(version):
        keep_out_of_git(prefix.parent.parent)
    with install_lock(prefix.parent):
        if installed_version(executable) == version:
            return executable
        # The native binary is the optional dependency @openai/codex-linux-x64.
        npm_install(
            prefix,
            [f"{CODEX_PACKAGE}@{version}"],
            timeout=timeout,
            error=CodexCliUnavailableError,
            optional=True,
        )
    found = installed_version(executable)
    if found != version:
        raise CodexCliUnavailableError(f"installed CLI reports {found!r}, expected {version}")
    return executable


def headless_env(
    home: Path, *, api_key: str = DUMMY_API_KEY, path: str | None = None
) -> dict[str, str]:
    """A minimal environment for the CLI: PATH, a fresh HOME and CODEX_HOME, the key.

    Args:
        home: An empty, writable directory; ``CODEX_HOME`` is ``home/.codex``.
        api_key: The provider key, under :data:`KEY_VARIABLE`.
        path: PATH for the CLI and the commands it runs; this process's by default.

    Returns:
        A complete environment mapping for ``subprocess``.
    """
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": path or os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        KEY_VARIABLE: api_key,
    }


def headless_command(
    executable: Path,
    prompt: str,
    *,
    base_url: str,
    workspace: Path,
    sandbox: str = "workspace-write",
    model: str = MODEL,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Command line for one ``codex exec --json`` run against a loopback provider.

    Args:
        executable: The ``codex`` launcher.
        prompt: The user prompt.
        base_url: The fake server's base URL.
        workspace: The directory Codex works in (``--cd``).
        sandbox: Codex's ``--sandbox`` mode.
        model: Model name sent in each request.
        extra_args: Further options, before the prompt.

    Returns:
        The argv list.
    """
    return [
        str(executable),
        "exec",
        "--json",
        "--sandbox",
        sandbox,
        "--cd",
        str(workspace),
        "--model",
        model,
        *provider_args(base_url, KEY_VARIABLE),
        *extra_args,
        prompt,
    ]


@dataclass
class HeadlessRun:
    """Outcome of one headless CLI run.

    Attributes:
        returncode: Process exit status.
        stdout: Raw stdout, one JSON event per line.
        stderr: Raw stderr.
        events: Decoded stdout lines.
        elapsed: Wall-clock seconds.
    """

    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]
    elapsed: float

    def kinds(self) -> list[str]:
        """The event types, with item events as ``item.completed:command_execution``."""
        found = []
        for event in self.events:
            item = event.get("item")
            kind = str(event.get("type"))
            found.append(f"{kind}:{item.get('type')}" if isinstance(item, dict) else kind)
        return found


def run_headless(
    cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 120.0
) -> HeadlessRun:
    """Run the CLI to completion, stdin closed.

    Raises:
        subprocess.TimeoutExpired: The CLI did not finish in time.
    """
    started = time.monotonic()
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return HeadlessRun(
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        events=parse_stream(proc.stdout),
        elapsed=time.monotonic() - started,
    )
