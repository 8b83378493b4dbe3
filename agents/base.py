"""The seam between the task lifecycle and whatever plans and executes tasks.

A planning agent turns a task into a validated `Plan`; an executor agent carries the
plan out in two phases, so the bot can check each one itself: first it writes the
failing test (RED), then it fixes the code (GREEN). Progress leaves an agent only
through the `Progress` callback; agents know nothing of Slack or queues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

Progress = Callable[[str], None]
"""Receives one short human-readable line ("Editing src/auth.py")."""

CancelCheck = Callable[[], bool]
"""Returns True once the task was cancelled; long-running agents poll it."""


class AgentError(Exception):
    """An agent could not do its step; the message says why, in a sentence."""


class BudgetStop(AgentError):
    """The run reached its dollar budget and nobody allowed it more.

    Attributes:
        cost_usd: What the stopped phase spent.
    """

    def __init__(self, message: str, cost_usd: float) -> None:
        super().__init__(message)
        self.cost_usd = cost_usd


def _no_messages() -> list[str]:
    return []


def _nothing() -> None:
    return None


def _stop(spent: float) -> float | None:
    return None


@dataclass(frozen=True)
class RunControl:
    """What the bot lends one executor phase besides its progress and cancel callbacks.

    Attributes:
        messages: Returns the messages people sent the task since the last call (each
            once); an agent that can take input while it runs passes them on.
        activity: Called whenever the run shows any sign of life (an event, a line), so
            a run that goes quiet can be told from one that works.
        budget_usd: Dollars this phase may spend; None for no limit.
        over_budget: Asked, with what the phase spent, when the budget is reached;
            returns how many dollars more it may spend, or None to stop it.
    """

    messages: Callable[[], list[str]] = _no_messages
    activity: Callable[[], None] = _nothing
    budget_usd: float | None = None
    over_budget: Callable[[float], float | None] = _stop


class PlanStep(BaseModel):
    """One ordered step of a test-first plan."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["test", "implement", "verify"]
    description: str = Field(min_length=1, max_length=2000)


class Plan(BaseModel):
    """What the planning agent proposes; what approvers approve."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=3000)
    root_cause: str = Field(min_length=1, max_length=3000)
    affected_files: list[str] = Field(default_factory=list, max_length=200)
    steps: list[PlanStep] = Field(min_length=1, max_length=50)
    test_command: str = Field(min_length=1, max_length=500)
    risk: Literal["low", "medium", "high"]
    estimated_minutes: int = Field(ge=1, le=24 * 60)
    # A revised plan says what it changed from the version before it.
    changes: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _test_first(self) -> Plan:
        # The bot verifies RED before GREEN, so a plan that changes code before it has a
        # failing test cannot be carried out as approved.
        kinds = [step.kind for step in self.steps]
        if "test" not in kinds:
            raise ValueError("a plan needs a test step (the failing test comes first)")
        if "implement" in kinds and kinds.index("test") > kinds.index("implement"):
            raise ValueError("the first test step must come before the first implement step")
        return self


@dataclass(frozen=True)
class RepoSpec:
    """The repository a task works on."""

    name: str
    git_url: str
    default_branch: str
    test_command: str


@dataclass(frozen=True)
class PlanRevision:
    """A change asked for on a plan: the planner's next version answers it."""

    version: int
    previous: Plan
    feedback: str


@dataclass(frozen=True)
class TaskBrief:
    """What an agent is told about a task."""

    key: str
    description: str
    repo: RepoSpec
    source: str = "slack"
    source_data: dict[str, Any] = field(default_factory=dict)
    # Changes people asked for on earlier plan versions, oldest first.
    change_requests: tuple[str, ...] = ()
    # Set when the planner is to revise its last plan rather than plan afresh.
    revision: PlanRevision | None = None

    @property
    def request_text(self) -> str:
        """The description and every change asked for since: all that was requested."""
        return "\n".join((self.description, *self.change_requests))


@dataclass(frozen=True)
class AgentRun:
    """What one agent invocation cost and said."""

    summary: str = ""
    cost_usd: float = 0.0
    turns: int = 0
    session_id: str | None = None
    # False when the agent reports no cost (Codex reports tokens only).
    cost_known: bool = True
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class PlanOutcome:
    """A validated plan and the run that produced it."""

    plan: Plan
    run: AgentRun


class PlanningAgent(Protocol):
    """Turns a task into a plan, reading (never editing) the workspace."""

    name: str
    scripted: bool

    def plan(
        self, brief: TaskBrief, workspace: Path, progress: Progress, cancelled: CancelCheck
    ) -> PlanOutcome:
        """Discover, diagnose and propose a test-first plan.

        Raises:
            AgentError: When no valid plan could be produced.
        """


class ExecutorAgent(Protocol):
    """Carries out an approved plan in the task's own workspace."""

    name: str
    scripted: bool

    def write_failing_test(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None = None,
    ) -> AgentRun:
        """RED: add the test that shows the bug, changing no production code."""

    def implement_fix(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
        control: RunControl | None = None,
    ) -> AgentRun:
        """GREEN: change the code until the whole suite passes."""


@dataclass(frozen=True)
class AgentPair:
    """The planner and executor a task runs with."""

    planner: PlanningAgent
    executor: ExecutorAgent

    @property
    def scripted(self) -> bool:
        """True when the pair is the scripted (non-AI) implementation."""
        return self.planner.scripted or self.executor.scripted
