"""Claude Code, run headless: `claude -p <prompt> --output-format stream-json --verbose`.

The CLI prints one JSON event per line: `system/init`, then `assistant` and `user`
events (one per content block; tool calls are `tool_use` blocks), `system/api_retry`
while the API is busy, and a final `result` event with the answer, `session_id`,
`num_turns` and `total_cost_usd`. A run fails when it ends without that event, when
`is_error` is true (an API error still has subtype "success", so `is_error` decides),
or when the process exits non-zero.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.base import AgentError, CancelCheck, Progress, RunControl
from agents.env import child_environment
from agents.mcp import allowed_tools, config_file, egress_hosts, labels
from agents.runner import (
    BudgetReached,
    CliOptions,
    Event,
    InputFeed,
    Role,
    RunResult,
    StreamExit,
    cli_sandbox,
    clip_reason,
    describe_tool,
    ended_badly,
    no_result_error,
    private_home,
    stream_process,
)
from agents.sandbox import Endpoint, Sandbox

NAME = "Claude Code"
# Where the CLI sends model requests when ANTHROPIC_BASE_URL is unset: the one place its
# sandbox may reach by default.
DEFAULT_BASE_URL = "https://api.anthropic.com"

# What the CLI needs from the bot's environment: its credentials and endpoint, its own
# switches, and how to reach the network. Never the bot's tokens or service URLs.
ENV_NAMES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    # Where the CLI keeps its settings and login, for an operator who points the agent
    # at an existing sign-in rather than an API key.
    "CLAUDE_CONFIG_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
)
ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_")
# A bot has no use for the CLI's telemetry, error reports or self-update, nor for
# bytecode files in the worktree; an operator can override these through `[agent] env`.
ENV_DEFAULTS = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def claude_environment(
    options: CliOptions, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The CLI's environment: the allowlist, the defaults, then the configured values."""
    extra = {**ENV_DEFAULTS, **options.agent.env}
    if options.home:
        extra["HOME"] = private_home(options.home)
    return child_environment(
        allow=(*ENV_NAMES, *options.agent.env_allow),
        allow_prefixes=ENV_PREFIXES,
        extra=extra,
        source=source,
    )


def lend_login(env: Mapping[str, str], options: CliOptions) -> tuple[dict[str, str], Sandbox]:
    """The environment and sandbox of a run that signs in with a stored login.

    `CLAUDE_CONFIG_DIR` names where Claude Code keeps its login and also its session
    transcripts and settings. Bound as it is, one task would read every other task's
    transcripts (and the operator's own); outside the sandbox's binds it is not there
    at all. So a sandboxed run gets `<task home>/.claude` as its config directory, and
    only the login's `.credentials.json` is lent into it, read-only: the agent can sign
    in, but not replace the login the next task, or the operator, signs in with.

    Args:
        env: The CLI's environment (`claude_environment`), HOME the task's own.
        options: The run's options, with the sandbox it starts from.
    """
    sandbox = options.sandbox
    stored = env.get("CLAUDE_CONFIG_DIR")
    if not (stored and options.home and sandbox.enabled):
        return dict(env), sandbox
    own = Path(env["HOME"]) / ".claude"
    login = Path(stored).expanduser() / ".credentials.json"
    if Path(stored).expanduser().resolve() == own.resolve():
        return dict(env), sandbox
    own.mkdir(mode=0o700, exist_ok=True)
    lent = own / ".credentials.json"
    # What an earlier run of this task left in its place: bubblewrap would follow a link.
    if lent.is_symlink():
        lent.unlink()
    elif lent.is_dir():
        shutil.rmtree(lent)
    if login.is_file():
        sandbox = sandbox.lending(str(login.resolve()), str(lent))
    return {**env, "CLAUDE_CONFIG_DIR": str(own)}, sandbox


def claude_command(
    options: CliOptions,
    prompt: str,
    *,
    system: str,
    role: Role,
    resume: str | None = None,
    mcp_config: Path | None = None,
    streamed: bool = False,
    budget_usd: float | None = None,
) -> list[str]:
    """The argv of one headless run (the prompt is one argument, never shell text).

    A `streamed` run reads its prompt, and later messages, as stream-json user messages
    on stdin (`user_message`), so people can talk to it while it works. `budget_usd`
    is the CLI's own `--max-budget-usd`: it stops between turns once that is spent.

    Only the servers in `mcp_config`, the run's own file, are started: the repository's
    `.mcp.json` and the CLI's user settings are written by others and are ignored.
    The role's allowlist gains its servers' allowed tools.
    """
    permissions = options.permissions(role)
    allowed = (*permissions.allowed_tools, *allowed_tools(options.mcp_servers(role)))
    disallowed = (*permissions.disallowed_tools, *_unreadable(options, mcp_config))
    args = [options.command, "-p"]
    args += ["--input-format", "stream-json"] if streamed else [prompt]
    args += [
        # stream-json in -p mode is refused without --verbose.
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        permissions.permission_mode,
        "--max-turns",
        str(options.agent.max_turns),
    ]
    if allowed:
        args += ["--allowedTools", ",".join(allowed)]
    if disallowed:
        args += ["--disallowedTools", ",".join(disallowed)]
    if options.agent.model:
        args += ["--model", options.agent.model]
    if system:
        args += ["--append-system-prompt", system]
    if resume:
        args += ["--resume", resume]
    if budget_usd is not None:
        args += ["--max-budget-usd", f"{max(budget_usd, 0.0):.4f}"]
    if mcp_config is not None:
        # --mcp-config takes several values; the flag after it ends the list.
        args += ["--mcp-config", str(mcp_config)]
    args.append("--strict-mcp-config")
    return args + list(options.agent.extra_args)


def user_message(text: str) -> str:
    """One stream-json input line: a user turn carrying `text`."""
    return json.dumps({"type": "user", "message": {"role": "user", "content": text}})


def _unreadable(options: CliOptions, mcp_config: Path | None) -> list[str]:
    """Deny rules that keep the file tools out of every run's MCP file and its secrets.

    The CLI itself reads the file; the agent's Read, Grep and Glob may not, neither this
    run's nor those of other tasks' runs beside it, and its Write and Edit may not
    change them. `//` starts an absolute path in a Claude Code rule.
    """
    folders = [Path(options.agent.mcp_dir).resolve()]
    if mcp_config is not None and not any(mcp_config.is_relative_to(f) for f in folders):
        folders.append(mcp_config.parent)
    return [f"{tool}(/{folder}/**)" for folder in folders for tool in ("Read", "Edit")]


class ClaudeStream:
    """Reads one run's events: progress lines as they come, the result at the end."""

    def __init__(self, workspace: Path, mcp_labels: Mapping[str, str] | None = None) -> None:
        self.workspace = workspace
        self.mcp_labels = dict(mcp_labels or {})
        self.result: Event | None = None
        self.session_id: str | None = None
        self.model: str | None = None

    def feed(self, event: Event) -> str | None:
        """Take one event; return a progress line for it, if it deserves one."""
        kind = event.get("type")
        if kind == "system":
            return self._system(event)
        if kind == "assistant":
            return self._assistant(event)
        if kind == "result":
            self.result = event
            self.session_id = str(event.get("session_id") or self.session_id or "") or None
        return None

    def _system(self, event: Event) -> str | None:
        subtype = event.get("subtype")
        if subtype == "init":
            self.session_id = str(event.get("session_id") or "") or None
            self.model = str(event.get("model") or "") or None
            return f"{NAME} started" + (f" ({self.model})" if self.model else "")
        if subtype == "api_retry":
            status = event.get("error_status") or "no answer"
            return (
                f"Model API unavailable ({status}); retrying, attempt "
                f"{event.get('attempt', '?')} of {event.get('max_retries', '?')}"
            )
        return None

    def _assistant(self, event: Event) -> str | None:
        message = event.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        line = None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                tool_input = block.get("input")
                line = describe_tool(
                    str(block.get("name", "a tool")),
                    tool_input if isinstance(tool_input, dict) else {},
                    self.workspace,
                    self.mcp_labels,
                )
        return line

    def finish(self, exit: StreamExit, timeout: float) -> RunResult:
        """The run's result, or the reason it failed.

        Raises:
            AgentError: A readable reason: stopped, no result, `is_error`, or a bad exit.
        """
        stopped = ended_badly(NAME, exit, timeout)
        if stopped is not None:
            raise stopped
        result = self.result
        if result is None:
            raise no_result_error(NAME, exit)
        if result.get("subtype") == "error_max_budget_usd":
            raise BudgetReached(
                f"{NAME} reached its budget.",
                self.session_id,
                _float(result.get("total_cost_usd")),
            )
        if result.get("is_error"):
            raise AgentError(f"{NAME} reported an error: {clip_reason(_error_text(result))}")
        if exit.returncode != 0:
            raise AgentError(
                f"{NAME} exited with status {exit.returncode}: "
                f"{clip_reason(exit.stderr_tail or 'no output')}"
            )
        text = result.get("result")
        if not isinstance(text, str):
            raise AgentError(f"{NAME}'s result event carried no answer.")
        usage = result.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return RunResult(
            text=text,
            session_id=self.session_id,
            turns=_int(result.get("num_turns")),
            cost_usd=_float(result.get("total_cost_usd")),
            duration_seconds=exit.duration_seconds,
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
        )


def _error_text(result: Event) -> str:
    errors = result.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)
    text = result.get("result")
    if isinstance(text, str) and text.strip():
        return text
    return str(result.get("terminal_reason") or result.get("subtype") or "unknown error")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


class ClaudeCodeRunner:
    """Runs prompts through the Claude Code CLI."""

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

        With `control`, the prompt goes in on stdin and the messages people send while
        the run goes follow it there, each becoming a user turn at the CLI's next step.

        Raises:
            BudgetReached: The CLI stopped at `control.budget_usd`.
            AgentError: With a readable reason when the run does not succeed.
        """
        servers = self.options.mcp_servers(role)
        stream = ClaudeStream(workspace, labels(servers))

        def on_event(event: Event) -> None:
            if control is not None:
                control.activity()
            line = stream.feed(event)
            if line:
                progress(line)

        feed = None
        if control is not None:
            pending = control.messages

            def messages() -> list[str]:
                said = pending()
                for _ in said:
                    progress(f"Message passed to {NAME}")
                return [user_message(text) for text in said]

            feed = InputFeed(
                opening=user_message(prompt),
                pending=messages,
                ends=lambda event: event.get("type") == "result",
            )

        options = self.options.for_workspace(workspace)
        env, lent = lend_login(claude_environment(options), options)
        with config_file(servers, Path(self.options.agent.mcp_dir)) as mcp_config:
            sandbox = cli_sandbox(
                replace(options, sandbox=lent), env, "ANTHROPIC_BASE_URL", DEFAULT_BASE_URL
            )
            # The run's remote MCP servers join its egress, and nothing else does; its
            # stdio servers are the CLI's children, inside. Only this run's file shows.
            sandbox = sandbox.allowing(Endpoint(host, port) for host, port in egress_hosts(servers))
            if mcp_config is not None:
                sandbox = sandbox.with_read_only([str(mcp_config)])
            exit = stream_process(
                claude_command(
                    self.options,
                    prompt,
                    system=system,
                    role=role,
                    resume=resume,
                    mcp_config=mcp_config,
                    streamed=feed is not None,
                    budget_usd=None if control is None else control.budget_usd,
                ),
                cwd=workspace,
                env=env,
                timeout=self.options.agent.timeout_seconds,
                cancelled=cancelled,
                on_event=on_event,
                sandbox=sandbox,
                home=env["HOME"] if options.home else None,
                feed=feed,
            )
        return stream.finish(exit, self.options.agent.timeout_seconds)
