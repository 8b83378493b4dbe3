"""OpenAI's Codex CLI, run headless: `codex exec --json <prompt>`.

The CLI prints JSON lines: `thread.started` (with the `thread_id` that resumes it),
`turn.started`, `item.started` / `item.updated` / `item.completed` for each thread item
(`agent_message`, `reasoning`, `command_execution`, `file_change`, `mcp_tool_call`,
`web_search`, `todo_list`, `error`), then `turn.completed` with token `usage`, or
`turn.failed` with a message. A top-level `error` event is not the end: the CLI prints
one per retry ("Reconnecting... 2/5 ...") and may still complete the turn. An `error`
item is a warning. Codex reports tokens but no cost, and a whole `exec` is one turn.

What each role may do maps onto Codex's `--sandbox` modes; see the README for why both
run with `danger-full-access` inside the bot's own sandbox.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.base import AgentError, CancelCheck, Progress, RunControl
from agents.env import child_environment
from agents.runner import (
    CliOptions,
    Event,
    Role,
    RunResult,
    StreamExit,
    cli_sandbox,
    clip_reason,
    display_path,
    ended_badly,
    no_result_error,
    private_home,
    short_command,
    stream_process,
)

NAME = "Codex"
# The API the CLI calls when OPENAI_BASE_URL is unset: what its sandbox may reach.
DEFAULT_BASE_URL = "https://api.openai.com"

ENV_NAMES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CODEX_API_KEY",
    "CODEX_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
)


# "Reconnecting... 2/5 (stream disconnected before completion: ...)", or without a count
# "Reconnecting... waiting for network (...)" while the endpoint cannot be reached.
_RETRY = re.compile(r"^Reconnecting\.\.\.(?: (\d+/\d+))?")
# The CLI waits for an endpoint it cannot reach without end ("waiting for network", with
# a growing pause: about 1, 6 and 17 s). Three such notices before the model ever
# answered mean the endpoint is wrong or down: the run stops instead of waiting for the
# timeout.
UNREACHABLE_NOTICES = 3
# Names the commands Codex runs never inherit from it: the provider key is the CLI's,
# not the model's shell's (Codex's own default passes every variable on).
SHELL_EXCLUDE = ("OPENAI_API_KEY", "CODEX_API_KEY", "*_API_KEY", "*SECRET*", "*TOKEN*")


def codex_environment(
    options: CliOptions, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The CLI's environment: the allowlist, then the configured values.

    With a home configured, `CODEX_HOME` is `<home>/.codex` and `TMPDIR` is `<home>/tmp`:
    Codex's sandbox helper lives under `CODEX_HOME`, and the CLI refuses to create it
    under the temporary directory, so the two must not nest the other way round.
    """
    extra = {"PYTHONDONTWRITEBYTECODE": "1", **options.agent.env}
    if options.home:
        home = Path(private_home(options.home))
        for name, sub in (("CODEX_HOME", ".codex"), ("TMPDIR", "tmp")):
            directory = home / sub
            directory.mkdir(mode=0o700, exist_ok=True)
            extra[name] = str(directory)
        extra["HOME"] = str(home)
    return child_environment(
        allow=(*ENV_NAMES, *options.agent.env_allow), extra=extra, source=source
    )


PROVIDER = "agentbot"
# What the CLI would otherwise reach besides the model: the plugin catalogue on GitHub,
# apps, analytics and feedback on chatgpt.com, its own update check. The sandbox's
# proxy would refuse them anyway; asking for none keeps its log about real refusals.
OFFLINE_ARGS = (
    "--disable",
    "plugins",
    "--disable",
    "apps",
    "-c",
    "analytics.enabled=false",
    "-c",
    "feedback.enabled=false",
    "-c",
    "check_for_update_on_startup=false",
)


def provider_args(base_url: str, env_key: str) -> list[str]:
    """`-c` options that send the CLI's model requests to `base_url`.

    Codex ignores `OPENAI_BASE_URL`; an endpoint other than OpenAI's is a model provider
    in its configuration, streaming `POST <base_url>/responses`, its key read from the
    variable `env_key`.
    """
    provider = (
        f"{{name={json.dumps(PROVIDER)}, base_url={json.dumps(base_url)}, "
        f'env_key={json.dumps(env_key)}, wire_api="responses"}}'
    )
    return ["-c", f"model_provider={PROVIDER}", "-c", f"model_providers.{PROVIDER}={provider}"]


def endpoint_args(env: Mapping[str, str]) -> list[str]:
    """The provider options for the configured endpoint, if one is configured.

    `OPENAI_BASE_URL` in `[agent].env` names the endpoint; the key is whichever of
    `OPENAI_API_KEY` and `CODEX_API_KEY` is set beside it.
    """
    base_url = env.get("OPENAI_BASE_URL", "").strip()
    if not base_url:
        return []
    env_key = "CODEX_API_KEY" if "CODEX_API_KEY" in env else "OPENAI_API_KEY"
    return provider_args(base_url, env_key)


def codex_command(
    options: CliOptions,
    prompt: str,
    *,
    system: str,
    role: Role,
    workspace: Path,
    resume: str | None = None,
) -> list[str]:
    """The argv of one `codex exec --json` run.

    Codex has no flag for extra system instructions, so they lead the prompt.
    """
    permissions = options.permissions(role)
    args = [
        options.command,
        "exec",
        "--json",
        "--sandbox",
        permissions.sandbox,
        "--cd",
        str(workspace),
        # The bot chose the directory; without this Codex refuses one that does not look
        # like a git checkout to it (a worktree whose mirror the sandbox does not show).
        "--skip-git-repo-check",
        *OFFLINE_ARGS,
        *endpoint_args(options.agent.env),
    ]
    if options.agent.model:
        args += ["--model", options.agent.model]
    args += ["-c", f"shell_environment_policy.exclude={json.dumps(list(SHELL_EXCLUDE))}"]
    args += list(options.agent.extra_args)
    text = f"{system}\n\n{prompt}" if system else prompt
    if resume:
        return [*args, "resume", resume, text]
    return [*args, text]


class CodexStream:
    """Reads one `codex exec --json` run."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.thread_id: str | None = None
        self.answer: str | None = None
        self.turns = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.failure: str | None = None
        self.last_error: str | None = None
        self.notes: list[str] = []
        self.answered = False
        self.network_waits = 0

    @property
    def unreachable(self) -> bool:
        """Whether the model endpoint has never answered and the CLI keeps waiting for it."""
        return not self.answered and self.network_waits >= UNREACHABLE_NOTICES

    def feed(self, event: Event) -> str | None:
        """Take one event; return a progress line for it, if it deserves one."""
        kind = event.get("type")
        if kind == "thread.started":
            self.thread_id = str(event.get("thread_id") or "") or None
            return f"{NAME} started"
        if kind == "turn.completed":
            self.answered = True
            self.turns += 1
            usage = event.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            self.input_tokens += _int(usage.get("input_tokens"))
            self.output_tokens += _int(usage.get("output_tokens"))
            return None
        if kind == "turn.failed":
            self.failure = _message(event)
            return None
        if kind == "error":
            # A retry notice, not the end: the turn may still complete.
            self.last_error = _message(event)
            retry = _RETRY.match(self.last_error)
            if retry is None:
                return None
            if "waiting for network" in self.last_error:
                self.network_waits += 1
            count = f" ({retry.group(1)})" if retry.group(1) else ""
            return f"{NAME} lost the model connection; retrying{count}"
        item = event.get("item")
        if kind in ("item.started", "item.completed") and isinstance(item, dict):
            return self._item(item, completed=kind == "item.completed")
        return None

    def _item(self, item: dict[str, Any], *, completed: bool) -> str | None:
        kind = item.get("type")
        if kind != "error":
            self.answered = True
        if kind == "agent_message" and completed:
            self.answer = str(item.get("text", ""))
        elif kind == "reasoning" and completed:
            thought = _headline(str(item.get("text", "")))
            return f"Thinking: {thought}" if thought else None
        elif kind == "command_execution" and not completed:
            return f"Running {short_command(_inner_command(str(item.get('command', ''))))}"
        elif kind == "file_change" and completed and item.get("status") != "failed":
            return self._file_change(item)
        elif kind == "mcp_tool_call" and not completed:
            return f"Using {item.get('server', '?')}.{item.get('tool', '?')}"
        elif kind == "web_search" and not completed:
            query = str(item.get("query") or "").strip()
            if not query:
                return "Looking something up on the web"
            return f"Searching the web for {clip_reason(query, 60)}"
        elif kind == "error" and completed:
            self.notes.append(str(item.get("message", "")))
        return None

    def _file_change(self, item: dict[str, Any]) -> str | None:
        changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
        if not changes:
            return None
        verb = {"add": "Writing", "delete": "Deleting"}.get(str(changes[0].get("kind")), "Editing")
        more = f" and {len(changes) - 1} more" if len(changes) > 1 else ""
        path = display_path(str(changes[0].get("path", "")), self.workspace)
        return f"{verb} {path}{more}"

    def finish(self, exit: StreamExit, timeout: float) -> RunResult:
        """The run's result, or the reason it failed.

        Raises:
            AgentError: A readable reason: stopped, failed turn, no answer, or a bad exit.
        """
        if exit.cancelled and self.unreachable:
            raise AgentError(
                f"{NAME} could not reach its model endpoint, so it was stopped: "
                f"{clip_reason(_reason(self.last_error or 'no answer'))}"
            )
        stopped = ended_badly(NAME, exit, timeout)
        if stopped is not None:
            raise stopped
        if self.failure is not None:
            raise AgentError(f"{NAME} reported an error: {clip_reason(self.failure)}")
        if self.turns == 0:
            if self.last_error is not None:
                raise AgentError(f"{NAME} reported an error: {clip_reason(self.last_error)}")
            raise no_result_error(NAME, exit)
        if exit.returncode != 0:
            raise AgentError(
                f"{NAME} exited with status {exit.returncode}: "
                f"{clip_reason(exit.stderr_tail or 'no output')}"
            )
        if self.answer is None:
            raise AgentError(f"{NAME} finished without a final message.")
        return RunResult(
            text=self.answer,
            session_id=self.thread_id,
            turns=self.turns,
            cost_usd=0.0,
            duration_seconds=exit.duration_seconds,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_known=False,
        )


def _inner_command(command: str) -> str:
    """The model's command inside the `/bin/bash -lc '<command>'` wrapper Codex reports.

    Unwrapped whole, before anything splits it at `;` or `&&` inside the quotes.
    """
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    shells = ("bash", "sh", "zsh")
    if len(words) == 3 and os.path.basename(words[0]) in shells and words[1] in ("-c", "-lc"):
        return words[2]
    return command


def _reason(notice: str) -> str:
    """`Connection failed: ...` out of `Reconnecting... waiting for network (Connection ...)`."""
    match = re.match(r"^Reconnecting\.\.\.[^(]*\((.*)\)$", notice)
    return match.group(1) if match else notice


def _headline(text: str) -> str:
    """The first line of a reasoning summary, without its markdown bold."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return clip_reason(line.strip("*").strip(), 80)


def _message(event: Event) -> str:
    error = event.get("error")
    if isinstance(error, dict):
        return _unwrap(str(error.get("message") or "unknown error"))
    return _unwrap(str(event.get("message") or error or "unknown error"))


def _unwrap(message: str) -> str:
    """The message inside an API error body, which Codex passes on as raw JSON."""
    if not message.startswith("{"):
        return message
    try:
        body = json.loads(message)
    except ValueError:
        return message
    error = body.get("error") if isinstance(body, dict) else None
    inner = error.get("message") if isinstance(error, dict) else None
    return str(inner) if inner else message


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def native_packages(command: str, search_path: str | None = None) -> list[str]:
    """The npm packages holding the CLI's native binary, for the sandbox to show.

    `@openai/codex` is a Node launcher; the program is in a sibling package per platform
    (`@openai/codex-linux-x64`), which the launcher's own directory does not cover.
    """
    found = shutil.which(command, path=search_path)
    if found is None:
        return []
    target = Path(found).resolve()
    package = next((p for p in target.parents if (p / "package.json").is_file()), None)
    if package is None or "node_modules" not in package.parts:
        return []
    return sorted(str(p) for p in package.parent.glob(f"{package.name}-*") if p.is_dir())


class CodexRunner:
    """Runs prompts through the Codex CLI."""

    name = NAME

    def __init__(self, options: CliOptions) -> None:
        self.options = options

    def run(
        self,
        prompt: str,
        *,
        system: str,
        workspace: Path,
        role: Role,
        progress: Progress,
        cancelled: CancelCheck,
        resume: str | None = None,
        control: RunControl | None = None,
    ) -> RunResult:
        """Run one prompt to completion in `workspace`.

        `codex exec` reads stdin only before it starts and reports no cost, so of
        `control` only the signs of life are used: no message reaches a running Codex,
        and its budget cannot be enforced.

        Raises:
            AgentError: With a readable reason when the run does not succeed.
        """
        stream = CodexStream(workspace)

        def on_event(event: Event) -> None:
            if control is not None:
                control.activity()
            line = stream.feed(event)
            if line:
                progress(line)

        options = self.options.for_workspace(workspace)
        env = codex_environment(options)
        exit = stream_process(
            codex_command(
                self.options, prompt, system=system, role=role, workspace=workspace, resume=resume
            ),
            cwd=workspace,
            env=env,
            timeout=self.options.agent.timeout_seconds,
            cancelled=lambda: cancelled() or stream.unreachable,
            on_event=on_event,
            sandbox=cli_sandbox(
                self.options, env, "OPENAI_BASE_URL", DEFAULT_BASE_URL
            ).with_read_only(native_packages(self.options.command, env.get("PATH"))),
            home=env["HOME"] if options.home else None,
        )
        return stream.finish(exit, self.options.agent.timeout_seconds)
