"""Coding-agent CLIs run headless: the subprocess, its event stream, and the agents on top.

A `CodingAgentRunner` runs one prompt through an external CLI (Claude Code, Codex) in a
workspace and returns what the run said and cost. This module holds what every such
CLI shares: starting it in a process group of its own with an allowlisted environment,
reading its JSON-lines stdout as it arrives, turning tool calls into short progress
lines, and stopping it on cancel or timeout. `CliPlanner` and `CliExecutor` build the
planning and executor agents of `agents.base` on any runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from agents.base import (
    AgentError,
    AgentRun,
    BudgetStop,
    CancelCheck,
    Plan,
    PlanOutcome,
    Progress,
    RunControl,
    TaskBrief,
)
from agents.config import AgentConfig, AgentRoleConfig
from agents.mcp import (
    McpServerConfig,
    McpServers,
    describe_call,
    egress_hosts,
    for_repo,
    for_role,
    source_hint,
)
from agents.processes import group_process, kill_group
from agents.prompts import (
    PlanInvalid,
    executor_system_prompt,
    fix_prompt,
    parse_plan,
    plan_correction_prompt,
    planner_prompt,
    planner_system_prompt,
    red_prompt,
)
from agents.sandbox import Sandbox, endpoint_of_url, tool_paths

Role = Literal["planner", "executor"]
Event = dict[str, Any]

STDERR_LINES = 40
REASON_LIMIT = 400
POLL_SECONDS = 0.2
LINE_LIMIT = 80
# What a run resumed after its budget was raised is told.
CONTINUE_PROMPT = (
    "Your budget was raised. Continue the same task where you stopped; the instructions "
    "you were given still hold."
)


@dataclass(frozen=True)
class CliOptions:
    """How to run an agent CLI: the validated `[agent]` table, and where the runs happen.

    Attributes:
        agent: The `[agent]` table as configured, a repository's environment added
            (`AgentConfig.with_environment`): the command, model, limits, variables,
            HOME root, role permissions and MCP servers all come from it as they are.
        sandbox: Where the CLI runs; each run adds the model's endpoint to its egress.
        repo: The repository whose tasks these runs serve: only its MCP servers, with
            its overrides, are given. Every configured server when None.
        workspace: The task's worktree once known (`for_workspace`): HOME is then that
            task's own under `[agent] home`.
    """

    agent: AgentConfig
    sandbox: Sandbox = field(default_factory=Sandbox)
    repo: str | None = None
    workspace: Path | None = None

    @property
    def command(self) -> str:
        """The CLI's path or name on PATH."""
        return self.agent.cli_command

    @property
    def home(self) -> str | None:
        """HOME for the CLI, created private on first use: the task's own (`task_home`)
        once a workspace is known; the bot's own when `[agent] home` is unset."""
        home = self.agent.home
        if home and self.workspace is not None:
            return task_home(home, self.workspace)
        return home

    @property
    def mcp(self) -> dict[str, McpServerConfig]:
        """The MCP servers of these runs, by name; each says which roles get it."""
        servers = self.agent.mcp
        return for_repo(servers, self.repo) if self.repo else dict(servers)

    def permissions(self, role: Role) -> AgentRoleConfig:
        """The permissions of one role."""
        return self.agent.planner if role == "planner" else self.agent.executor

    def mcp_servers(self, role: Role) -> dict[str, McpServerConfig]:
        """The MCP servers one role's runs are given."""
        return for_role(self.mcp, role)

    def mcp_egress(self, role: Role) -> tuple[tuple[str, int], ...]:
        """The (host, port) pairs one role's runs must reach for their remote MCP servers."""
        return egress_hosts(self.mcp_servers(role))

    def for_workspace(self, workspace: Path) -> CliOptions:
        """These options for a run in `workspace`: HOME is that task's own (`task_home`)."""
        return replace(self, workspace=workspace)


@dataclass(frozen=True)
class RunResult:
    """What one CLI run answered and cost.

    Attributes:
        text: The final answer.
        session_id: The CLI's session (Claude Code) or thread (Codex) id, for resuming.
        turns: Agent-loop turns the CLI reported.
        cost_usd: Cost the CLI reported (0 when it reports none).
        duration_seconds: Wall-clock time of the run.
        input_tokens: Input tokens the CLI reported.
        output_tokens: Output tokens the CLI reported.
        cost_known: False when the CLI reports no cost at all.
    """

    text: str
    session_id: str | None
    turns: int
    cost_usd: float
    duration_seconds: float
    input_tokens: int = 0
    output_tokens: int = 0
    cost_known: bool = True


def private_home(home: str) -> str:
    """The agent's HOME as an absolute path, created readable by its owner only.

    A relative path is taken from the bot's working directory (the agent runs in its
    worktree, where a relative HOME would mean something else).
    """
    path = Path(home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return str(path)


def task_home(home: str, workspace: Path) -> str:
    """The HOME of one task's runs: `<home>/<task key>`, created private like `home` itself.

    The agent's CLI keeps its session transcripts there, and the task's agent and tests
    may leave anything in it, so no two tasks share one: a run of one task never sees
    what another task's runs left, nor finds a file planted for it. A task's worktree is
    named by its key (`Workspaces.worktree_path`), and only that worktree is passed in.

    Args:
        home: The configured `[agent] home`, the root of every task's home.
        workspace: The task's worktree.
    """
    key = workspace.name
    if key in ("", ".", ".."):
        raise ValueError(f"{workspace} is not a task's worktree")
    return private_home(str(Path(private_home(home)) / key))


def cli_sandbox(
    options: CliOptions, env: Mapping[str, str], base_url_variable: str, default_url: str
) -> Sandbox:
    """The sandbox of one CLI run: the configured one, the model's endpoint, the CLI's files.

    Args:
        options: The CLI's options, with the configured sandbox.
        env: The CLI's environment, which may name the model's endpoint.
        base_url_variable: The variable that does (`ANTHROPIC_BASE_URL`).
        default_url: The vendor's endpoint when it is unset.
    """
    try:
        model = [endpoint_of_url(env.get(base_url_variable) or default_url)]
    except ValueError:
        model = []
    installed = tool_paths(options.command, env.get("PATH"))
    return options.sandbox.allowing(model).with_read_only(installed)


def combine(runs: Sequence[RunResult], summary: str) -> AgentRun:
    """One `AgentRun` for several CLI runs of the same step (a retry, say)."""
    return AgentRun(
        summary=summary,
        cost_usd=round(sum(r.cost_usd for r in runs), 6),
        turns=sum(r.turns for r in runs),
        session_id=runs[-1].session_id if runs else None,
        cost_known=all(r.cost_known for r in runs),
        input_tokens=sum(r.input_tokens for r in runs),
        output_tokens=sum(r.output_tokens for r in runs),
    )


class BudgetReached(AgentError):
    """A run stopped at its dollar budget, at a turn boundary; it can be resumed.

    Attributes:
        session_id: The session to resume.
        cost_usd: What the run spent.
    """

    def __init__(self, message: str, session_id: str | None, cost_usd: float) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.cost_usd = cost_usd


class CodingAgentRunner(Protocol):
    """Runs one prompt through a coding-agent CLI in a workspace."""

    name: str

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
        """Run to completion and return the final answer.

        `control`, when given, brings messages for the agent while it runs, hears every
        sign of life, and sets the run's dollar budget (where the CLI can take them).

        Raises:
            BudgetReached: The run stopped at `control.budget_usd`.
            AgentError: On timeout, cancel, a non-zero exit, unreadable output, or an
                error the CLI reported; the message says which, in a sentence.
        """


@dataclass(frozen=True)
class InputFeed:
    """What a run reads on stdin while it goes: its prompt, then people's messages.

    Attributes:
        opening: The first line written (the prompt).
        pending: Returns the lines to write now (messages that arrived).
        ends: Whether an event ends the conversation, so stdin is closed after it.
    """

    opening: str
    pending: Callable[[], list[str]]
    ends: Callable[[Event], bool]


# -- the subprocess -----------------------------------------------------------------------


@dataclass(frozen=True)
class StreamExit:
    """How a streamed run ended.

    Attributes:
        returncode: The exit status (negative: killed by that signal).
        stderr_tail: The last lines of stderr.
        unreadable: Stdout lines that were not JSON objects (the first few).
        timed_out: The hard timeout stopped it.
        cancelled: The task was cancelled and the run stopped.
        duration_seconds: Wall-clock time.
    """

    returncode: int
    stderr_tail: str
    unreadable: tuple[str, ...]
    timed_out: bool
    cancelled: bool
    duration_seconds: float


_EOF = object()


def stream_process(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    cancelled: CancelCheck,
    on_event: Callable[[Event], None],
    sandbox: Sandbox | None = None,
    home: str | None = None,
    feed: InputFeed | None = None,
) -> StreamExit:
    """Run `args` in a process group of its own, handing each stdout JSON line to `on_event`.

    Stdin is closed (a CLI waiting for piped input would stall), unless `feed` writes
    to it: then its opening line goes first, whatever else it has at each poll, and
    stdin closes after the event that ends the conversation. The whole group, and
    whatever its members started, is killed on timeout or when `cancelled()` turns true.
    It all runs in `sandbox`, with `cwd` and `home` its only writable places.

    Args:
        args: The argv; never passed through a shell.
        cwd: Working directory.
        env: The complete environment of the child.
        timeout: Seconds before the run is stopped.
        cancelled: Polled while the run goes on.
        on_event: Called in this thread with each decoded JSON object, as it arrives.
        sandbox: Where it runs; the default sandbox (no network) if None.
        home: The CLI's private HOME, writable in the sandbox.
        feed: What to write on stdin while the run goes, if anything.

    Returns:
        How the run ended.

    Raises:
        AgentError: When the command cannot be started at all.
        SandboxError: When the sandbox could not start.
    """
    sandbox = Sandbox() if sandbox is None else sandbox
    started = time.monotonic()
    lines: queue.Queue[object] = queue.Queue()
    stderr: deque[str] = deque(maxlen=STDERR_LINES)
    unreadable: list[str] = []
    timed_out = stopped = False
    try:
        with (
            sandbox.launch(args, workspace=cwd, home=home, env=env) as launch,
            group_process(
                launch.argv,
                cwd=cwd,
                env=launch.env,
                pass_fds=launch.pass_fds,
                stdin=subprocess.DEVNULL if feed is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
            ) as process,
        ):
            assert process.stdout is not None and process.stderr is not None
            out, err = process.stdout, process.stderr
            stdin = _Stdin(process.stdin)
            if feed is not None:
                stdin.write([feed.opening])

            def read_stdout() -> None:
                for raw in out:
                    lines.put(raw)
                lines.put(_EOF)

            def read_stderr() -> None:
                for raw in err:
                    stderr.append(raw.rstrip("\n"))

            readers = [
                threading.Thread(target=read_stdout, daemon=True),
                threading.Thread(target=read_stderr, daemon=True),
            ]
            for reader in readers:
                reader.start()
            deadline = started + timeout
            while True:
                if time.monotonic() >= deadline:
                    timed_out = True
                    kill_group(process.pid)
                    break
                if cancelled():
                    stopped = True
                    kill_group(process.pid)
                    break
                if feed is not None and stdin.open:
                    stdin.write(feed.pending())
                try:
                    item = lines.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue
                if item is _EOF:
                    break
                text = str(item).strip()
                if not text:
                    continue
                event = _decode(text)
                if event is None:
                    if len(unreadable) < 3:
                        unreadable.append(text[:200])
                    continue
                on_event(event)
                if feed is not None and feed.ends(event):
                    stdin.close()
            stdin.close()
            if not (timed_out or stopped):
                # Output ended, but a CLI may close stdout and keep running: the same
                # deadline and cancel still hold until it exits.
                timed_out, stopped = _await_exit(process, deadline, cancelled)
            process.wait()
            for reader in readers:
                reader.join(timeout=2)
            returncode = process.returncode
            if not (timed_out or stopped):
                launch.verify("\n".join(stderr))
    except OSError as exc:
        raise AgentError(f"The agent command {args[0]!r} could not be started: {exc}") from None
    return StreamExit(
        returncode=returncode,
        stderr_tail="\n".join(stderr),
        unreadable=tuple(unreadable),
        timed_out=timed_out,
        cancelled=stopped,
        duration_seconds=round(time.monotonic() - started, 2),
    )


class _Stdin:
    """A child's stdin that lines are written to until it is closed (or the child left)."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.open = pipe is not None

    def write(self, lines: Sequence[str]) -> None:
        if not self.open or not lines:
            return
        try:
            for line in lines:
                self.pipe.write(line.rstrip("\n") + "\n")
            self.pipe.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.open = False  # the child stopped reading; what it said will tell why

    def close(self) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(OSError):  # BrokenPipeError among them
                self.pipe.close()


def _await_exit(
    process: subprocess.Popen[str], deadline: float, cancelled: CancelCheck
) -> tuple[bool, bool]:
    """Wait for the process until the deadline or a cancel; returns (timed out, cancelled)."""
    while True:
        try:
            process.wait(timeout=max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
            return False, False
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            kill_group(process.pid)
            return True, False
        if cancelled():
            kill_group(process.pid)
            return False, True


def _decode(text: str) -> Event | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def ended_badly(name: str, exit: StreamExit, timeout: float) -> AgentError | None:
    """The error for a run that was stopped, whatever it printed before."""
    if exit.cancelled:
        return AgentError("Cancelled.")
    if exit.timed_out:
        return AgentError(f"{name} did not finish within {timeout:g} s, so it was stopped.")
    return None


def no_result_error(name: str, exit: StreamExit) -> AgentError:
    """The error for a run that ended without its final result event."""
    if exit.unreadable:
        return AgentError(
            f"{name}'s output could not be read (exit {exit.returncode}): "
            f"{clip_reason(exit.unreadable[0])}"
        )
    detail = last_line(exit.stderr_tail) or "no output"
    return AgentError(
        f"{name} exited with status {exit.returncode} without a result: {clip_reason(detail)}"
    )


def clip_reason(text: str, limit: int = REASON_LIMIT) -> str:
    """One readable line of at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def last_line(text: str) -> str:
    """The last non-blank line of `text`."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


# -- progress lines -----------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"^python[0-9.]*$")
_SEPARATORS = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")
_WRAPPERS = {"uv", "poetry", "pipenv", "hatch", "pdm", "rye"}
_SCAFFOLDING = {"cd", "export", "source", ".", "set", "true", "pushd", "popd"}
_TWO_WORD = {"npm", "npx", "yarn", "pnpm", "bun", "go", "cargo", "make", "git", "mvn", "gradle"}


def short_command(command: str) -> str:
    """What a shell command is, in a word or two: `python -m pytest -q tests/` -> `pytest`."""
    for segment in _SEPARATORS.split(command.strip()):
        try:
            words = shlex.split(segment)
        except ValueError:
            words = segment.split()
        while words and _ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words or os.path.basename(words[0]) in _SCAFFOLDING:
            continue
        return _program(words)
    return _clip(command.strip() or "a command")


def _program(words: list[str]) -> str:
    program = os.path.basename(words[0])
    rest = words[1:]
    if program in ("bash", "sh", "zsh") and len(rest) >= 2 and rest[0] in ("-c", "-lc"):
        return short_command(rest[1])
    if program in _WRAPPERS and rest[:1] == ["run"] and len(rest) > 1:
        return _program(rest[1:])
    if _PYTHON.match(program) and len(rest) >= 2 and rest[0] == "-m":
        return rest[1]
    if program in _TWO_WORD and rest and not rest[0].startswith("-"):
        return _clip(f"{program} {rest[0]}")
    return _clip(program)


def _usd(amount: float) -> str:
    return f"${amount:.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def _clip(text: str, limit: int = LINE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def display_path(path: str, workspace: Path) -> str:
    """A path as people read it: relative to the repository when inside it."""
    if not path:
        return "a file"
    candidate = Path(path)
    if candidate.is_absolute():
        for root in {workspace, workspace.resolve()}:
            if candidate.is_relative_to(root):
                return _clip(str(candidate.relative_to(root)) or ".")
    return _clip(path)


def describe_tool(
    name: str,
    tool_input: Mapping[str, Any],
    workspace: Path,
    mcp_labels: Mapping[str, str] | None = None,
) -> str:
    """One progress line for a tool call: `Editing src/auth.py`, `Sentry: get_issue 4211`.

    Args:
        name: The tool's name; MCP tools are `mcp__<server>__<tool>`.
        tool_input: The call's arguments.
        workspace: The worktree, so paths read relative to it.
        mcp_labels: MCP server name -> how people call it.
    """
    if name.startswith("mcp__"):
        return describe_call(name, tool_input, mcp_labels or {})
    path = str(tool_input.get("file_path") or tool_input.get("notebook_path") or "")
    if name == "Read":
        return f"Reading {display_path(path, workspace)}"
    if name == "Write":
        return f"Writing {display_path(path, workspace)}"
    if name in ("Edit", "MultiEdit", "NotebookEdit"):
        return f"Editing {display_path(path, workspace)}"
    if name == "Bash":
        return f"Running {short_command(str(tool_input.get('command', '')))}"
    if name in ("Grep", "Glob"):
        return f"Searching for {_clip(str(tool_input.get('pattern', '')), 60)}"
    if name in ("WebFetch", "WebSearch"):
        return "Looking something up on the web"
    if name in ("Agent", "Task"):
        return "Handing part of the work to a sub-agent"
    return _clip(f"Using {name}")


# -- the agents ---------------------------------------------------------------------------


def _snapshot(workspace: Path) -> str:
    completed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return completed.stdout


class CliPlanner:
    """The planning agent on a CLI runner: read-only discovery, then a validated plan.

    `mcp` holds the MCP servers the planner's runs are given: when one of them can look
    up the task's Sentry issue, Jira ticket or GitHub issue, the prompt says which and
    with what id.
    """

    scripted = False

    def __init__(self, runner: CodingAgentRunner, mcp: McpServers | None = None) -> None:
        self.runner = runner
        self.name = runner.name
        self.mcp = dict(mcp or {})

    def plan(
        self, brief: TaskBrief, workspace: Path, progress: Progress, cancelled: CancelCheck
    ) -> PlanOutcome:
        """Ask for a plan; one corrective retry when the answer is not a valid plan.

        Raises:
            AgentError: When the run fails, the planner changed files, or the second
                answer is still not a valid plan.
        """
        before = _snapshot(workspace)
        system = planner_system_prompt()
        if brief.revision is None:
            progress(f"{self.name} is reading the repository")
        else:
            progress(f"{self.name} is revising the plan (v{brief.revision.version})")
        runs = [
            self.runner.run(
                planner_prompt(brief, source_hint(brief.source, brief.source_data, self.mcp)),
                system=system,
                workspace=workspace,
                role="planner",
                progress=progress,
                cancelled=cancelled,
            )
        ]
        try:
            plan = parse_plan(runs[0].text)
        except PlanInvalid as first:
            progress("The plan was not valid; asking once more")
            runs.append(
                self.runner.run(
                    plan_correction_prompt(str(first)),
                    system=system,
                    workspace=workspace,
                    role="planner",
                    progress=progress,
                    cancelled=cancelled,
                    resume=runs[0].session_id,
                )
            )
            try:
                plan = parse_plan(runs[1].text)
            except PlanInvalid as second:
                raise AgentError(
                    f"{self.name} did not return a valid plan, even when asked again: {second}"
                ) from None
        if _snapshot(workspace) != before:
            raise AgentError(f"{self.name} changed files while planning; planning may only read.")
        return PlanOutcome(plan=plan, run=combine(runs, plan.summary.splitlines()[0][:200]))


class CliExecutor:
    """The executor agent on a CLI runner: the failing test first, then the fix."""

    scripted = False

    def __init__(self, runner: CodingAgentRunner) -> None:
        self.runner = runner
        self.name = runner.name

    def _run(
        self,
        prompt: str,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None,
    ) -> AgentRun:
        """One phase: a run, resumed in its own session each time more budget is allowed.

        The CLI stops at its budget between turns; resuming the session (rather than
        starting the phase again) keeps what the agent already did and knows, and the
        CLI's budget counts per process, so each resumed run gets just the extra.
        """
        runs: list[RunResult] = []
        resume: str | None = None
        reported = 0.0  # the session's cost as the CLI last reported it (it accumulates)
        while True:
            try:
                result = self.runner.run(
                    prompt,
                    system=executor_system_prompt(),
                    workspace=workspace,
                    role="executor",
                    progress=progress,
                    cancelled=cancelled,
                    resume=resume,
                    control=control,
                )
            except BudgetReached as reached:
                own = max(0.0, reached.cost_usd - reported) if resume else reached.cost_usd
                reported = reached.cost_usd if resume else own
                runs.append(RunResult("", reached.session_id, 0, own, 0.0))
                spent = round(sum(r.cost_usd for r in runs), 6)
                more = None if control is None else control.over_budget(spent)
                if more is None or reached.session_id is None or cancelled():
                    raise BudgetStop(
                        f"{self.name} reached its budget ({_usd(spent)} spent) and was stopped.",
                        spent,
                    ) from None
                progress(f"Budget raised by {_usd(more)}; {self.name} carries on")
                assert control is not None
                control = replace(control, budget_usd=more)
                resume = reached.session_id
                prompt = CONTINUE_PROMPT
                continue
            if resume:
                result = replace(result, cost_usd=max(0.0, result.cost_usd - reported))
            runs.append(result)
            return combine(runs, result.text.strip()[:500])

    def write_failing_test(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None = None,
    ) -> AgentRun:
        """RED: have the agent add the test that shows the bug."""
        progress(f"{self.name} is writing the failing test")
        return self._run(red_prompt(brief, plan), workspace, progress, cancelled, control)

    def implement_fix(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None = None,
    ) -> AgentRun:
        """GREEN: have the agent fix the code until the suite passes."""
        progress(f"{self.name} is fixing the code")
        return self._run(fix_prompt(brief, plan), workspace, progress, cancelled, control)
