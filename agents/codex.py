"""OpenAI's Codex CLI, run headless: `codex exec --json <prompt>`.

The CLI prints JSON lines: `thread.started` (with the `thread_id` that resumes it),
`turn.started`, `item.started` / `item.updated` / `item.completed` for each thread item
(`agent_message`, `reasoning`, `command_execution`, `file_change`, `mcp_tool_call`,
`web_search`, `todo_list`, `error`), then `turn.completed` with token `usage`, or
`turn.failed` / `error` with a message. Codex reports tokens but no cost, and a whole
`exec` is one turn. What the planner may do maps onto Codex's `--sandbox` modes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.base import AgentError, CancelCheck, Progress
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


def codex_environment(
    options: CliOptions, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The CLI's environment: the allowlist, then the configured values."""
    extra = {"PYTHONDONTWRITEBYTECODE": "1", **options.env}
    if options.home:
        extra["HOME"] = private_home(options.home)
    return child_environment(allow=(*ENV_NAMES, *options.env_allow), extra=extra, source=source)


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
    ]
    if options.model:
        args += ["--model", options.model]
    args += list(options.extra_args)
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
        self.notes: list[str] = []

    def feed(self, event: Event) -> str | None:
        """Take one event; return a progress line for it, if it deserves one."""
        kind = event.get("type")
        if kind == "thread.started":
            self.thread_id = str(event.get("thread_id") or "") or None
            return f"{NAME} started"
        if kind == "turn.completed":
            self.turns += 1
            usage = event.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            self.input_tokens += _int(usage.get("input_tokens"))
            self.output_tokens += _int(usage.get("output_tokens"))
            return None
        if kind in ("turn.failed", "error"):
            self.failure = _message(event)
            return None
        item = event.get("item")
        if kind in ("item.started", "item.completed") and isinstance(item, dict):
            return self._item(item, completed=kind == "item.completed")
        return None

    def _item(self, item: dict[str, Any], *, completed: bool) -> str | None:
        kind = item.get("type")
        if kind == "agent_message" and completed:
            self.answer = str(item.get("text", ""))
        elif kind == "command_execution" and not completed:
            return f"Running {short_command(str(item.get('command', '')))}"
        elif kind == "file_change" and completed:
            changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
            if changes:
                verb = {"add": "Writing", "delete": "Deleting"}.get(
                    str(changes[0].get("kind")), "Editing"
                )
                more = f" and {len(changes) - 1} more" if len(changes) > 1 else ""
                path = display_path(str(changes[0].get("path", "")), self.workspace)
                return f"{verb} {path}{more}"
        elif kind == "mcp_tool_call" and not completed:
            return f"Using {item.get('server', '?')}.{item.get('tool', '?')}"
        elif kind == "web_search" and not completed:
            return "Looking something up on the web"
        elif kind == "error" and completed:
            self.notes.append(str(item.get("message", "")))
        return None

    def finish(self, exit: StreamExit, timeout: float) -> RunResult:
        """The run's result, or the reason it failed.

        Raises:
            AgentError: A readable reason: stopped, failed turn, no answer, or a bad exit.
        """
        stopped = ended_badly(NAME, exit, timeout)
        if stopped is not None:
            raise stopped
        if self.failure is not None:
            raise AgentError(f"{NAME} reported an error: {clip_reason(self.failure)}")
        if self.turns == 0:
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


def _message(event: Event) -> str:
    error = event.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or "unknown error")
    return str(event.get("message") or error or "unknown error")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


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
    ) -> RunResult:
        """Run one prompt to completion in `workspace`.

        Raises:
            AgentError: With a readable reason when the run does not succeed.
        """
        stream = CodexStream(workspace)

        def on_event(event: Event) -> None:
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
            timeout=self.options.timeout_seconds,
            cancelled=cancelled,
            on_event=on_event,
            sandbox=cli_sandbox(self.options, env, "OPENAI_BASE_URL", DEFAULT_BASE_URL),
            home=env["HOME"] if options.home else None,
        )
        return stream.finish(exit, self.options.timeout_seconds)
