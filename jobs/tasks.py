"""Task rows: creation, lookup and compare-and-set state transitions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from jobs.exceptions import BadRequest, TaskNotFound
from jobs.models import Approval, Task, TaskEvent, utcnow
from jobs.states import TaskState, can_move

# ASCII digits only: `\d` would read other scripts' digits (`T-٣`) as a task id.
TASK_KEY = re.compile(r"^\s*(?:T-?)?([0-9]{1,9})\s*$", re.IGNORECASE)
SYSTEM_ACTOR = "agentbot"


def parse_task_key(text: str) -> int:
    """Turn what a user typed (`T-12`, `t12`, `12`) into a task id.

    Raises:
        BadRequest: When it is not a task id.
    """
    match = TASK_KEY.match(text)
    if match is None:
        raise BadRequest(f"`{text.strip()[:40]}` is not a task id (they look like T-12).")
    return int(match.group(1))


def create_task(
    session: Session,
    *,
    description: str,
    repo: str,
    requester: str,
    channel: str,
    source: str = "slack",
    source_ref: str | None = None,
    source_data: dict[str, Any] | None = None,
) -> Task:
    """Insert a queued task and the first line of its audit trail."""
    task = Task(
        description=description,
        repo=repo,
        requester=requester,
        channel=channel,
        source=source,
        source_ref=source_ref,
        source_data=source_data,
        state=TaskState.QUEUED.value,
    )
    session.add(task)
    session.flush()
    session.add(
        TaskEvent(task_id=task.id, from_state=None, to_state=TaskState.QUEUED, actor=requester)
    )
    return task


def get_task(session: Session, task_id: int, *, for_update: bool = False) -> Task:
    """Load a task, optionally locking its row until the transaction ends.

    Raises:
        TaskNotFound: When there is no such task.
    """
    statement = select(Task).where(Task.id == task_id)
    if for_update:
        statement = statement.with_for_update()
    task = session.execute(statement).scalar_one_or_none()
    if task is None:
        raise TaskNotFound(f"T-{task_id}")
    return task


def transition(
    session: Session,
    task_id: int,
    source: TaskState,
    target: TaskState,
    *,
    actor: str = SYSTEM_ACTOR,
    reason: str | None = None,
    **values: Any,
) -> bool:
    """Move a task from `source` to `target` if, and only if, it is still in `source`.

    A single `UPDATE … WHERE state = :source` decides; two racing callers cannot both
    win, and a retried job that finds the task moved on does nothing.

    Args:
        session: The open transaction to write in.
        task_id: The task to move.
        source: The state the caller believes the task is in.
        target: The state to move it to.
        actor: Who caused the change (a Slack user id, or `agentbot`).
        reason: Why, for the audit trail.
        **values: Other columns to set in the same statement.

    Returns:
        True when this call moved the task.
    """
    if not can_move(source, target):
        raise ValueError(f"{source} -> {target} is not a lifecycle transition")
    now = utcnow()
    if target.is_terminal:
        values.setdefault("finished_at", now)
    result = session.execute(
        update(Task)
        .where(Task.id == task_id, Task.state == source.value)
        .values(state=target.value, version=Task.version + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(
        TaskEvent(task_id=task_id, from_state=source, to_state=target, actor=actor, reason=reason)
    )
    session.flush()
    return True


def touch(session: Session, task_id: int, **values: Any) -> None:
    """Update non-state columns and bump the version, so Slack re-renders the task."""
    session.execute(
        update(Task)
        .where(Task.id == task_id)
        .values(version=Task.version + 1, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class Viewer:
    """Who asks to see tasks, and where: a task is shown in its own channel, to its
    requester, and to approvers; anywhere else it is not shown at all."""

    user: str
    channel: str
    approver: bool = False

    def may_see(self, task: Task) -> bool:
        """Whether this viewer may read the task's card."""
        return self.approver or task.channel == self.channel or task.requester == self.user


def list_tasks(
    session: Session,
    *,
    state: TaskState | None = None,
    requester: str | None = None,
    viewer: Viewer | None = None,
    limit: int = 15,
) -> Sequence[Task]:
    """Most recent tasks first, optionally filtered (to what `viewer` may see, say)."""
    statement = select(Task).order_by(Task.id.desc()).limit(limit)
    if state is not None:
        statement = statement.where(Task.state == state.value)
    if requester is not None:
        statement = statement.where(Task.requester == requester)
    if viewer is not None and not viewer.approver:
        statement = statement.where(
            or_(Task.channel == viewer.channel, Task.requester == viewer.user)
        )
    return session.execute(statement).scalars().all()


def events_of(session: Session, task_id: int) -> Sequence[TaskEvent]:
    """The audit trail of one task, oldest first."""
    statement = select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
    return session.execute(statement).scalars().all()


def approvals_of(session: Session, task_id: int) -> Sequence[Approval]:
    """Decisions recorded on one task, oldest first."""
    statement = select(Approval).where(Approval.task_id == task_id).order_by(Approval.id)
    return session.execute(statement).scalars().all()


def count_by_state(session: Session) -> dict[str, int]:
    """How many tasks are in each state (for metrics)."""
    rows = session.execute(select(Task.state, func.count()).group_by(Task.state)).all()
    return {state: count for state, count in rows}
