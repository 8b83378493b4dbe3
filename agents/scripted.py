"""The scripted agent: deterministic, honest, and never presented as AI.

It follows a script kept in the repository (`.agentbot/script.json`): a list of
scenarios, each chosen when its `match` words appear in the task description, giving
the plan to propose and the file edits to make in the RED and GREEN phases. It edits
files for real, so everything the bot checks afterwards (tests, commits, diffs) is
real. With no matching scenario it proposes a plan from what it can see in the repo
and then declines to execute, saying why.

A change requested on a plan counts as part of the request: its words, added to the
description's, may choose another scenario (listed before the one they refine), whose
plan is the next version and whose `changes` says what differs.

Script shape::

    {"scenarios": [{"match": ["divide"], "plan": {...Plan...}, "changes": "...",
                    "red": [{"write": "tests/test_x.py", "content": "..."}],
                    "green": [{"replace": "src/x.py", "old": "a", "new": "b"}],
                    "delay_seconds": 0, "command": ["make", "build"], "cost_usd": 0}]}

While a phase waits out its `delay_seconds` it hears the task's thread: each message
people send is shown as a progress line ("Message received: ..."). `cost_usd` is what
each phase reports it cost; at the phase's budget it asks for more, as a CLI agent's
stop would, and stops when refused.

`command`, when given, is run in the workspace at the start of each execution phase
and waited for without ever looking at cancellation, as a long build or a hung tool
would be: only stopping the job (which kills the process group it runs in) ends it
early. It runs as the repository's test command does (`agents.testing.run_tests`):
no bot secret in its environment, the agent's private home as HOME, and inside the
agent's sandbox (`agents.sandbox`), as any coding agent's own commands would.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.base import (
    AgentError,
    AgentRun,
    BudgetStop,
    CancelCheck,
    Plan,
    PlanOutcome,
    PlanStep,
    Progress,
    RunControl,
    TaskBrief,
)
from agents.processes import group_process
from agents.runner import task_home
from agents.sandbox import Sandbox
from agents.testing import command_environment, command_home

SCRIPT_PATH = Path(".agentbot") / "script.json"
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{3,}")
# A thread message as agents are given it (`agents.prompts.thread_message_prompt`).
QUOTED = re.compile(r"<thread_message>\n(.*)\n</thread_message>", re.S)


class Edit(BaseModel):
    """One file change: write a whole file, or replace text in one."""

    model_config = ConfigDict(extra="forbid")

    write: str | None = None
    content: str | None = None
    replace: str | None = None
    old: str | None = None
    new: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Edit:
        if (self.write is None) == (self.replace is None):
            raise ValueError("an edit has either `write` or `replace`")
        if self.write is not None and self.content is None:
            raise ValueError("`write` needs `content`")
        if self.replace is not None and (self.old is None or self.new is None):
            raise ValueError("`replace` needs `old` and `new`")
        return self

    @property
    def path(self) -> str:
        """The file this edit touches."""
        return self.write if self.write is not None else str(self.replace)


class Scenario(BaseModel):
    """What to do for tasks whose description mentions all `match` words."""

    model_config = ConfigDict(extra="forbid")

    match: list[str] = Field(default_factory=list)
    plan: dict[str, Any]
    # What this scenario's plan changes, when a change request chose it.
    changes: str = Field("", max_length=2000)
    red: list[Edit] = Field(default_factory=list)
    green: list[Edit] = Field(default_factory=list)
    # How long each execution phase pretends to work (to exercise cancel and timeouts).
    delay_seconds: float = Field(0, ge=0, le=3600)
    # A command each execution phase runs and waits for, blind to cancellation.
    command: list[str] = Field(default_factory=list)
    command_timeout_seconds: float = Field(3600, gt=0, le=86400)
    # What each execution phase reports it cost (to exercise the budget).
    cost_usd: float = Field(0, ge=0, le=10000)


class Script(BaseModel):
    """The whole script file."""

    model_config = ConfigDict(extra="forbid")

    scenarios: list[Scenario] = Field(default_factory=list)


def load_script(workspace: Path) -> Script | None:
    """Read the repo's script, if it has one.

    Raises:
        AgentError: When the file exists but is not a valid script.
    """
    path = workspace / SCRIPT_PATH
    if not path.is_file():
        return None
    try:
        return Script.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise AgentError(f"The scripted agent's script {SCRIPT_PATH} is invalid: {exc}") from None


def choose(script: Script | None, description: str) -> Scenario | None:
    """The first scenario whose words all appear in the description."""
    if script is None:
        return None
    text = description.lower()
    for scenario in script.scenarios:
        if all(word.lower() in text for word in scenario.match):
            return scenario
    return None


def _wait(seconds: float, cancelled: CancelCheck, progress: Progress, control: RunControl) -> None:
    """Pretend to work for `seconds`, hearing messages (each shown as a line) meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        for text in control.messages():
            control.activity()
            quoted = QUOTED.search(text)
            heard = quoted.group(1) if quoted else text
            progress(f"Message received: {' '.join(heard.split())[:120]}")
        if time.monotonic() >= deadline:
            return
        if cancelled():
            raise AgentError("Cancelled.")
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _spend(scenario: Scenario, control: RunControl) -> float:
    """The phase's scripted cost, asking for more budget as a CLI agent's stop would."""
    budget = control.budget_usd
    if budget is None or scenario.cost_usd < budget:
        return scenario.cost_usd
    more = control.over_budget(budget)
    if more is None or scenario.cost_usd >= budget + more:
        raise BudgetStop(f"The scripted agent reached its budget (${budget:.2f}).", budget)
    return scenario.cost_usd


def _run_command(
    scenario: Scenario, workspace: Path, progress: Progress, home: str | None, sandbox: Sandbox
) -> None:
    """Run the scenario's command to the end; no cancellation check on the way."""
    progress(f"Running {' '.join(scenario.command)[:200]}")
    try:
        with (
            command_home(home) as run_home,
            sandbox.launch(
                scenario.command,
                workspace=workspace,
                home=run_home,
                env=command_environment(run_home),  # never the bot's secrets, nor its HOME
            ) as launch,
            group_process(
                launch.argv,
                cwd=workspace,
                env=launch.env,
                pass_fds=launch.pass_fds,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            ) as process,
        ):
            try:
                returncode = process.wait(timeout=scenario.command_timeout_seconds)
            except subprocess.TimeoutExpired:
                raise AgentError(
                    "The script's command did not finish in time; it was stopped."
                ) from None
            launch.verify()
    except FileNotFoundError:
        raise AgentError(f"The script's command {scenario.command[0]!r} was not found.") from None
    if returncode != 0:
        raise AgentError(f"The script's command exited with status {returncode}.")


def _apply(edits: list[Edit], workspace: Path, progress: Progress) -> None:
    root = workspace.resolve()
    for edit in edits:
        target = (root / edit.path).resolve()
        if not target.is_relative_to(root):
            raise AgentError(f"The script tried to edit {edit.path}, outside the repository.")
        if edit.write is not None:
            progress(f"Writing {edit.path}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(edit.content or "", encoding="utf-8")
        else:
            progress(f"Editing {edit.path}")
            if not target.is_file():
                raise AgentError(f"The script edits {edit.path}, which does not exist.")
            text = target.read_text(encoding="utf-8")
            if str(edit.old) not in text:
                raise AgentError(f"The script's text to replace is not in {edit.path}.")
            target.write_text(text.replace(str(edit.old), str(edit.new), 1), encoding="utf-8")


def _tracked_files(workspace: Path) -> list[str]:
    completed = subprocess.run(
        ["git", "ls-files"], cwd=workspace, capture_output=True, text=True, timeout=60
    )
    return completed.stdout.splitlines()


def _discover(brief: TaskBrief, workspace: Path, progress: Progress) -> list[str]:
    """Files whose text mentions words of the description (a plain grep, no AI)."""
    words = {w.lower() for w in WORD.findall(brief.description)}
    hits: list[str] = []
    for name in _tracked_files(workspace):
        if name.startswith(".agentbot/"):
            continue
        try:
            text = (workspace / name).read_text(encoding="utf-8").lower()
        except (OSError, UnicodeDecodeError):
            continue
        if any(word in text for word in words):
            hits.append(name)
    progress(f"Searched {len(_tracked_files(workspace))} files; {len(hits)} mention the task")
    return hits[:20]


UNSCRIPTED_CHANGE = "The scripted agent has no script for this change; the plan is unchanged."


def _changes(scenario: Scenario, plan: Plan, brief: TaskBrief) -> str:
    """What a revised scripted plan says it changed: the scenario's words, or nothing."""
    revision = brief.revision
    if revision is not None and plan.model_dump(
        exclude={"changes"}
    ) == revision.previous.model_dump(exclude={"changes"}):
        return UNSCRIPTED_CHANGE
    return scenario.changes or "Follows the script's scenario for the change requested."


class ScriptedPlanner:
    """Plans from the repo's script; without one, from a plain search of the repo."""

    name = "scripted agent"
    scripted = True

    def plan(
        self, brief: TaskBrief, workspace: Path, progress: Progress, cancelled: CancelCheck
    ) -> PlanOutcome:
        """Propose the scenario's plan, validated like any agent's."""
        progress("Reading the repository")
        scenario = choose(load_script(workspace), brief.request_text)
        if scenario is not None:
            try:
                plan = Plan.model_validate(scenario.plan)
            except ValidationError as exc:
                raise AgentError(f"The scripted plan is not a valid plan: {exc}") from None
            if brief.revision is not None:
                plan = plan.model_copy(update={"changes": _changes(scenario, plan, brief)})
            return PlanOutcome(plan=plan, run=AgentRun(summary="scripted plan", turns=1))
        files = _discover(brief, workspace, progress)
        changes = "" if brief.revision is None else UNSCRIPTED_CHANGE
        plan = Plan(
            summary=f"Scripted agent: no script for this task. {brief.description[:200]}",
            root_cause="Not diagnosed: the scripted agent only follows scripts.",
            affected_files=files,
            steps=[
                PlanStep(kind="test", description="Write a test that reproduces the problem."),
                PlanStep(kind="implement", description="Fix the code until the test passes."),
                PlanStep(kind="verify", description=f"Run `{brief.repo.test_command}`."),
            ],
            test_command=brief.repo.test_command,
            risk="medium",
            estimated_minutes=30,
            changes=changes,
        )
        return PlanOutcome(plan=plan, run=AgentRun(summary="search-only plan", turns=1))


class ScriptedExecutor:
    """Makes the scenario's edits; refuses honestly when there is no scenario."""

    name = "scripted agent"
    scripted = True

    def __init__(self, home: str | None = None, sandbox: Sandbox | None = None) -> None:
        """Make an executor.

        Args:
            home: The root of the agent's homes: the script's commands get their task's
                own under it (`task_home`), as a coding agent's CLI does; None for a
                throwaway one per command.
            sandbox: Where the script's commands run; the default one (no network) if
                None.
        """
        self.home = home
        self.sandbox = Sandbox() if sandbox is None else sandbox

    def _phase(
        self,
        phase: Literal["red", "green"],
        brief: TaskBrief,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None,
    ) -> AgentRun:
        control = control or RunControl()
        scenario = choose(load_script(workspace), brief.request_text)
        if scenario is None:
            raise AgentError(
                "The scripted agent has no script for this task, so it changed nothing. "
                "Configure a coding agent to have it implemented."
            )
        _wait(scenario.delay_seconds, cancelled, progress, control)
        cost = _spend(scenario, control)
        if scenario.command:
            home = task_home(self.home, workspace) if self.home else None
            _run_command(scenario, workspace, progress, home, self.sandbox)
        edits = scenario.red if phase == "red" else scenario.green
        _apply(edits, workspace, progress)
        return AgentRun(summary=f"applied {len(edits)} scripted edit(s)", turns=1, cost_usd=cost)

    def write_failing_test(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None = None,
    ) -> AgentRun:
        """Write the scenario's test files."""
        return self._phase("red", brief, workspace, progress, cancelled, control)

    def implement_fix(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None = None,
    ) -> AgentRun:
        """Make the scenario's fix."""
        return self._phase("green", brief, workspace, progress, cancelled, control)
