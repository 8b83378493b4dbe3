"""Task states and the transitions between them."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """Where a task is in its lifecycle."""

    QUEUED = "queued"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True once nothing more will happen without a human asking for it."""
        return self in TERMINAL

    @property
    def label(self) -> str:
        """How the state reads in Slack."""
        return self.value.replace("_", " ")


TERMINAL = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.REJECTED, TaskState.CANCELLED}
)

# States a worker is (or should be) busy in; the reconciler watches these.
ACTIVE = frozenset({TaskState.QUEUED, TaskState.PLANNING, TaskState.APPROVED, TaskState.EXECUTING})

CANCELLABLE = frozenset(
    {
        TaskState.QUEUED,
        TaskState.PLANNING,
        TaskState.AWAITING_APPROVAL,
        TaskState.APPROVED,
        TaskState.EXECUTING,
    }
)

ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: frozenset({TaskState.PLANNING, TaskState.CANCELLED, TaskState.FAILED}),
    # Back to queued: a change was asked for while the plan was being made.
    TaskState.PLANNING: frozenset(
        {TaskState.AWAITING_APPROVAL, TaskState.QUEUED, TaskState.FAILED, TaskState.CANCELLED}
    ),
    # Back to queued: Request changes sends the plan to the planner for its next version.
    TaskState.AWAITING_APPROVAL: frozenset(
        {TaskState.APPROVED, TaskState.REJECTED, TaskState.QUEUED, TaskState.CANCELLED}
    ),
    TaskState.APPROVED: frozenset({TaskState.EXECUTING, TaskState.CANCELLED, TaskState.FAILED}),
    TaskState.EXECUTING: frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}),
    # Retry: back to planning, or straight to execution when a plan was approved.
    TaskState.FAILED: frozenset({TaskState.QUEUED, TaskState.APPROVED}),
    TaskState.SUCCEEDED: frozenset(),
    TaskState.REJECTED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


def can_move(source: TaskState, target: TaskState) -> bool:
    """Whether the lifecycle allows `source` → `target` at all."""
    return target in ALLOWED[source]
