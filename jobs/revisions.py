"""Plan versions: Request changes on a plan, the planner's next version, and which one counts.

A task's first plan is v1. A change asked for (the Request changes… modal, or a reply
that mentions the bot in the task's thread) is stored as the next version's request,
a `PlanVersion` row without a plan; the planner answers it with the whole plan again,
the previous plan and the request in view. Approvals belong to one version: a click
on a superseded version is refused, and N-of-M counts the current version's only.

A change asked for while a plan is still being made waits for it: the plan in progress
is finished, kept as its version, and revised at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.base import Plan, PlanRevision
from jobs.exceptions import Conflict
from jobs.models import PlanVersion, Task, utcnow
from jobs.states import TaskState

# States in which a plan is being made: a change request waits for it to be done.
BEING_PLANNED = frozenset({TaskState.QUEUED, TaskState.PLANNING})


@dataclass(frozen=True)
class ChangeRequest:
    """Where a change request went: the version it asks for, and whether to plan it now."""

    version: int
    revise_now: bool


def versions_of(session: Session, task_id: int) -> Sequence[PlanVersion]:
    """Every version of a task's plan (and change requests not yet answered), oldest first."""
    statement = (
        select(PlanVersion).where(PlanVersion.task_id == task_id).order_by(PlanVersion.version)
    )
    return session.execute(statement).scalars().all()


def version_row(session: Session, task_id: int, version: int) -> PlanVersion | None:
    """One version's row, or None."""
    statement = select(PlanVersion).where(
        PlanVersion.task_id == task_id, PlanVersion.version == version
    )
    return session.execute(statement).scalar_one_or_none()


def _pending(session: Session, task_id: int, version: int) -> PlanVersion | None:
    row = version_row(session, task_id, version)
    return row if row is not None and row.plan is None else None


def revision_for(session: Session, task: Task) -> PlanRevision | None:
    """What the planner is to answer: the change asked for on the latest plan, or None.

    None means planning afresh (a new task, or one retried from the start).
    """
    asked = _pending(session, task.id, task.plan_version + 1)
    previous = version_row(session, task.id, task.plan_version)
    if asked is None or previous is None or previous.plan is None:
        return None
    return PlanRevision(
        version=asked.version,
        previous=Plan.model_validate(previous.plan),
        feedback=asked.feedback or "",
    )


def change_requests(session: Session, task_id: int, upto: int) -> tuple[str, ...]:
    """The changes asked for on the way to version `upto`, oldest first."""
    return tuple(
        row.feedback
        for row in versions_of(session, task_id)
        if row.version <= upto and row.feedback
    )


def record_plan(session: Session, task: Task, version: int, plan: Plan) -> PlanVersion | None:
    """Keep `plan` as version `version` of the task; return a change already asked of it.

    The message that showed the version before it is remembered on that version's row,
    so Slack can mark it superseded once the new one is posted.
    """
    row = version_row(session, task.id, version)
    if row is None:
        row = PlanVersion(task_id=task.id, version=version)
        session.add(row)
    row.plan = plan.model_dump()
    row.changes = plan.changes or None
    row.planned_at = utcnow()
    if version > task.plan_version:
        previous = version_row(session, task.id, task.plan_version)
        if previous is not None and previous.message_ts is None:
            previous.message_ts = task.plan_ts
    session.flush()
    return _pending(session, task.id, version + 1)


def request_change(
    session: Session, task: Task, user: str, feedback: str, *, max_revisions: int
) -> ChangeRequest:
    """Store a change asked of the task's plan (the task's row locked by the caller).

    Raises:
        Conflict: The task has no plan that can still change, or its plan was revised
            as often as `[agent] max_plan_revisions` allows.
    """
    state = task.task_state
    if state == TaskState.AWAITING_APPROVAL:
        version, now = task.plan_version + 1, True
    elif state in BEING_PLANNED:
        revising = _pending(session, task.id, task.plan_version + 1) is not None
        being_made = task.plan_version + 1 if revising else task.plan_version
        version, now = being_made + 1, False
    else:
        raise Conflict(
            f"{task.key} is {state.label}; only a plan being made or awaiting approval "
            "can be changed."
        )
    check_cap(task, version, max_revisions)
    row = version_row(session, task.id, version)
    if row is None:
        session.add(
            PlanVersion(task_id=task.id, version=version, feedback=feedback, requested_by=user)
        )
    else:
        # A second request before the planner started on the first: both are answered.
        row.feedback = f"{row.feedback}\n\n{feedback}" if row.feedback else feedback
    if now:
        current = version_row(session, task.id, task.plan_version)
        if current is not None and current.message_ts is None:
            current.message_ts = task.plan_ts
    session.flush()
    return ChangeRequest(version=version, revise_now=now)


def check_cap(task: Task, version: int, max_revisions: int) -> None:
    """Refuse a request for plan `version` past `[agent] max_plan_revisions`.

    Raises:
        Conflict: The plan was revised as often as allowed.
    """
    if version - 1 > max_revisions:
        raise Conflict(
            f"The plan of {task.key} was revised {max_revisions} "
            f"time{'' if max_revisions == 1 else 's'}, the most allowed "
            "(`[agent] max_plan_revisions`); approve or reject it, or start a new task."
        )


def check_current(task: Task, version: int | None) -> None:
    """Refuse a decision on a version that is not the one awaiting approval.

    `version` None (a slash command, a GitHub comment) means the latest.

    Raises:
        Conflict: The version was superseded, or the next one is being written.
    """
    if version is not None and version > task.plan_version:
        raise Conflict(f"{task.key} has no plan v{version}; use `/agent status {task.key}`.")
    if version is not None and version < task.plan_version:
        raise Conflict(
            f"Plan v{version} of {task.key} was superseded by v{task.plan_version}; "
            f"decide on v{task.plan_version}."
        )
    if task.task_state in BEING_PLANNED and task.plan is not None:
        raise Conflict(
            f"Plan v{task.plan_version} of {task.key} is being revised; decide on "
            f"v{task.plan_version + 1} once it is posted."
        )
