"""Install and run the real Claude Code CLI headless against a fake model server.

The CLI comes from npm (``@anthropic-ai/claude-code``, pinned below) and is installed once
into ``.cache/claude-code/<version>/`` at the repository root; the cache is kept out of git
by a ``.gitignore`` written inside it. Typical use::

    claude = ensure_claude_cli()
    with FakeAnthropicServer(script) as server:
        env = headless_env(server.base_url, home=tmp_path / "home")
        cmd = headless_command(claude, "fix the bug", max_turns=8)
        run = run_headless(cmd, cwd=repo, env=env, timeout=120)
    assert run.result is not None and run.result["is_error"] is False
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.npm_install import install_lock, keep_out_of_git, npm_install

CLAUDE_CODE_PACKAGE = "@anthropic-ai/claude-code"
# Pinned so recorded streams and the notes stay true; bump deliberately, then re-run the
# smoke test and re-record the fixtures.
CLAUDE_CODE_VERSION = "2.1.330"
# Any non-empty value passes the CLI's auth check; the fake server ignores it.
DUMMY_API_KEY = "sk-ant-fake-key-for-tests"
DEFAULT_ALLOWED_TOOLS = ("Read", "Write", "Edit", "Bash")

_REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables that would point the CLI at a real account, another provider, a telemetry
# sink, or make it believe it runs nested inside another Claude Code session.
_DROPPED_PREFIXES = ("ANTHROPIC_", "CLAUDE", "OTEL_")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ClaudeCliUnavailableError(RuntimeError):
    """The CLI could not be installed or does not run here."""


def default_cache_dir(version: str = CLAUDE_CODE_VERSION) -> Path:
    """Where the pinned CLI version is installed.

    Args:
        version: CLI version.

    Returns:
        ``<repo>/.cache/claude-code/<version>``.
    """
    return _REPO_ROOT / ".cache" / "claude-code" / version


def claude_executable(prefix: Path) -> Path:
    """Path of the ``claude`` launcher inside an ``npm install --prefix`` directory.

    Args:
        prefix: The npm prefix directory.

    Returns:
        ``<prefix>/node_modules/.bin/claude`` (it may not exist yet).
    """
    return prefix / "node_modules" / ".bin" / "claude"


def installed_version(executable: Path, timeout: float = 30.0) -> str | None:
    """Version reported by ``claude --version``.

    Args:
        executable: Path of the ``claude`` launcher.
        timeout: Seconds to wait.

    Returns:
        The version string (e.g. ``2.1.330``), or None when it is missing or broken.
    """
    if not executable.exists():
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="claude-home-") as home:
            proc = subprocess.run(
                [str(executable), "--version"],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                env=headless_env("http://127.0.0.1:9", home=Path(home)),
            )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return proc.stdout.split()[0]


def ensure_claude_cli(
    prefix: Path | None = None,
    *,
    version: str = CLAUDE_CODE_VERSION,
    timeout: float = 600.0,
) -> Path:
    """Return the ``claude`` executable, installing the pinned version with npm if needed.

    Args:
        prefix: npm prefix to install into; :func:`default_cache_dir` by default.
        version: Exact package version to install.
        timeout: Seconds allowed for ``npm install``.

    Returns:
        Absolute path of the ``claude`` launcher.

    Raises:
        ClaudeCliUnavailableError: npm is missing, the install failed, or the installed
            binary does not report the expected version.
    """
    prefix = prefix or default_cache_dir(version)
    executable = claude_executable(prefix)
    if installed_version(executable) == version:
        return executable
    if prefix == default_cache_dir(version):
        keep_out_of_git(prefix.parent.parent)
    with install_lock(prefix.parent):
        # Another worker may have finished the install while this one waited for the lock.
        if installed_version(executable) == version:
            return executable
        npm_install(
            prefix,
            [f"{CLAUDE_CODE_PACKAGE}@{version}"],
            timeout=timeout,
            error=ClaudeCliUnavailableError,
            optional=True,
        )
    found = installed_version(executable)
    if found != version:
        raise ClaudeCliUnavailableError(f"installed CLI reports {found!r}, expected {version}")
    return executable


def headless_env(
    base_url: str,
    home: Path,
    *,
    api_key: str = DUMMY_API_KEY,
    max_retries: int = 2,
    base_env: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for running the CLI with ``-p`` against a fake server, offline.

    Args:
        base_url: The fake server's base URL (``ANTHROPIC_BASE_URL``).
        home: An empty, writable directory used as ``HOME``; the CLI keeps its config,
            session transcripts and plugin state there.
        api_key: Sent as ``x-api-key``; any non-empty value works against the fake.
        max_retries: API retries per request. The CLI's default (10, with exponential
            backoff up to about 40 s) turns a dead server into minutes of waiting.
        base_env: Environment to start from; ``os.environ`` by default. Credentials,
            provider switches and telemetry settings in it are dropped.
        extra: Variables applied last, overriding everything else.

    Returns:
        A complete environment mapping for ``subprocess``.
    """
    source = os.environ if base_env is None else base_env
    env = {k: v for k, v in source.items() if not k.upper().startswith(_DROPPED_PREFIXES)}
    home.mkdir(parents=True, exist_ok=True)
    no_proxy = [h for h in env.get("NO_PROXY", env.get("no_proxy", "")).split(",") if h]
    no_proxy += [h for h in _LOOPBACK_HOSTS if h not in no_proxy]
    env.update(
        {
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            # One switch for auto-update, telemetry, error reporting and feedback; without
            # it the CLI resolves and calls api.anthropic.com even with a custom base URL.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            # The individual switches too, so the run stays offline if the umbrella
            # variable's meaning changes in a later version.
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_BUG_COMMAND": "1",
            "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
            # The CLI honours HTTP(S)_PROXY even for a loopback base URL.
            "NO_PROXY": ",".join(no_proxy),
            "no_proxy": ",".join(no_proxy),
        }
    )
    env.update(extra or {})
    return env


def headless_command(
    executable: Path,
    prompt: str,
    *,
    allowed_tools: Sequence[str] = DEFAULT_ALLOWED_TOOLS,
    disallowed_tools: Sequence[str] = (),
    permission_mode: str = "acceptEdits",
    max_turns: int | None = 10,
    model: str | None = None,
    append_system_prompt: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Command line for one headless run that prints a stream-json event log.

    Args:
        executable: The ``claude`` launcher.
        prompt: The user prompt.
        allowed_tools: Tools (or rules like ``Bash(git *)``) that run without a prompt.
        disallowed_tools: Tools removed from the session entirely.
        permission_mode: ``default``, ``acceptEdits``, ``plan``, ``bypassPermissions``...
        max_turns: Agent-loop turn limit; None for the CLI's default (unlimited).
        model: Model name sent in each request; the CLI's default when None.
        append_system_prompt: Text appended to the default system prompt.
        extra_args: Further CLI arguments.

    Returns:
        The argv list.
    """
    cmd = [
        str(executable),
        "-p",
        prompt,
        # stream-json in -p mode is refused without --verbose.
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        permission_mode,
    ]
    if allowed_tools:
        cmd += ["--allowedTools", ",".join(allowed_tools)]
    if disallowed_tools:
        cmd += ["--disallowedTools", ",".join(disallowed_tools)]
    if max_turns is not None:
        cmd += ["--max-turns", str(max_turns)]
    if model:
        cmd += ["--model", model]
    if append_system_prompt:
        cmd += ["--append-system-prompt", append_system_prompt]
    return cmd + list(extra_args)


@dataclass
class HeadlessRun:
    """Outcome of one headless CLI run.

    Attributes:
        returncode: Process exit status (0 success, 1 error result).
        stdout: Raw stdout, one JSON event per line.
        stderr: Raw stderr.
        events: Decoded stdout lines (lines that are not JSON are skipped).
        elapsed: Wall-clock seconds.
    """

    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]
    elapsed: float

    @property
    def result(self) -> dict[str, Any] | None:
        """The final ``result`` event, if the CLI got that far."""
        for event in self.events[::-1]:
            if event.get("type") == "result":
                return event
        return None


def parse_stream(stdout: str) -> list[dict[str, Any]]:
    """Decode stream-json output.

    Args:
        stdout: The CLI's stdout.

    Returns:
        One dict per JSON object line; other lines are skipped.
    """
    events: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def run_headless(
    cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 120.0
) -> HeadlessRun:
    """Run the CLI to completion.

    Args:
        cmd: Argv from :func:`headless_command`.
        cwd: Working directory (the repository the agent works in).
        env: Environment from :func:`headless_env`.
        timeout: Seconds before the process is killed.

    Returns:
        The run's outcome.

    Raises:
        subprocess.TimeoutExpired: The CLI did not finish in time.
    """
    started = time.monotonic()
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=dict(env),
        # An open stdin makes -p wait 3 s for piped input before it starts.
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
