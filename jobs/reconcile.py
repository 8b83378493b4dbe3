"""Find tasks whose job vanished and put them right, so none waits forever.

A worker killed mid-job, or Redis losing its data, leaves a task in an active state
with no job behind it. Queued and approved tasks are queued again; planning and
executing ones are failed with a message in the thread (their work may be half done,
so a human decides whether to retry).

A SIGKILLed worker (OOM kill, lost node, `kubectl delete pod --force`) cannot tell
Redis anything: its job stays `started` until RQ's own registry cleanup, which waits
for the job's whole timeout. While a job runs, its worker writes `last_heartbeat` on
it every `job_monitoring_interval` (30 s by default), so a started job whose
heartbeat is older than `stale_after` has nobody working on it.

A job that keeps dying before it claims its task (a crash on import, a horse killed
at start) would be queued again on every pass; each requeue is noted in the task's
audit trail, and after `MAX_REQUEUES` of them the task is failed instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from jobs.db import Database
from jobs.models import Task, TaskEvent, utcnow
from jobs.queues import Queues
from jobs.states import TaskState
from jobs.tasks import SYSTEM_ACTOR, transition

log = logging.getLogger(__name__)

# A task this young may simply not have been enqueued yet. Kept no longer than
# STALE_AFTER, so it never delays noticing a dead worker.
GRACE = timedelta(seconds=30)
# How often a live worker writes the running job's heartbeat (the workers run with
# RQ's default monitoring interval).
HEARTBEAT_EVERY = timedelta(seconds=DEFAULT_JOB_MONITORING_INTERVAL)
# One whole missed heartbeat: a live worker's beat is never this old, even when the
# beat itself runs a little late; a killed one's is after at most this long.
STALE_AFTER = 2 * HEARTBEAT_EVERY
# Requeues of a task in one state before it is failed rather than queued again.
MAX_REQUEUES = 3
# The audit-trail note a requeue leaves (an event from a state to the same state).
REQUEUED_NOTE = "job lost; queued again by the reconciler"
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
LOST_WORKER = "The worker running this task stopped unexpectedly"


@dataclass
class ReconcileReport:
    """What one pass did."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def job_health(queues: Queues, job_id: str | None, stale_before: datetime) -> str | None:
    """None when someone is (or will be) working on the job, else why nobody is.

    Args:
        queues: Where the job would be.
        job_id: The job id stored on the task.
        stale_before: A started job whose last heartbeat is older has no live worker.
    """
    if not job_id:
        return "lost"
    try:
        job = Job.fetch(job_id, connection=queues.redis)
        status = job.get_status(refresh=True)
    except NoSuchJobError:
        return "lost"
    if status in WAITING:
        return None
    if status == JobStatus.STARTED:
        beat = job.last_heartbeat or job.started_at
        if beat is None or _aware(beat) >= stale_before:
            return None
        return "started, but its worker stopped sending heartbeats"
    return str(status.value if status is not None else "lost")


def requeues_since_last_move(session: Session, task_id: int) -> int:
    """How often the reconciler queued the task again since it last changed state.

    Args:
        session: An open transaction.
        task_id: The task.
    """
    last_move = (
        select(func.coalesce(func.max(TaskEvent.id), 0))
        .where(
            TaskEvent.task_id == task_id,
            or_(TaskEvent.from_state.is_(None), TaskEvent.from_state != TaskEvent.to_state),
        )
        .scalar_subquery()
    )
    return int(
        session.execute(
            select(func.count()).where(
                TaskEvent.task_id == task_id,
                TaskEvent.from_state == TaskEvent.to_state,
                TaskEvent.reason == REQUEUED_NOTE,
                TaskEvent.id > last_move,
            )
        ).scalar_one()
    )


def _still_judged(session: Session, task_id: int, state: TaskState, job_id: str | None) -> bool:
    """Lock the task's row; True while it is still in the state and job a pass judged."""
    current = session.execute(
        select(Task.state, Task.job_id).where(Task.id == task_id).with_for_update()
    ).one_or_none()
    return current is not None and tuple(current) == (state.value, job_id)


def _requeue(
    db: Database,
    queues: Queues,
    task_id: int,
    state: TaskState,
    job_id: str | None,
    problem: str,
    max_requeues: int,
) -> str | None:
    """Queue the task's phase again, or fail it once it has been requeued too often.

    Returns:
        "requeued", "failed", or None when another pass got there first.
    """
    plan = state == TaskState.QUEUED
    new_job = queues.new_job_id(task_id, plan=plan)
    with db.session() as session:
        # Lock the row so a racing pass cannot count this task's notes while it adds one.
        if not _still_judged(session, task_id, state, job_id):
            return None
        if requeues_since_last_move(session, task_id) >= max_requeues:
            reason = (
                f"The job for this task was lost {max_requeues + 1} times (last: job "
                f"{problem}), so Agentbot stopped queuing it. Retry to run it again."
            )
            moved = transition(
                session, task_id, state, TaskState.FAILED, reason=reason, error=reason
            )
            return "failed" if moved else None
        claimed = session.execute(
            update(Task)
            .where(Task.id == task_id, Task.state == state.value, Task.job_id == job_id)
            .values(job_id=new_job, updated_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return None
        session.add(
            TaskEvent(
                task_id=task_id,
                from_state=state,
                to_state=state,
                actor=SYSTEM_ACTOR,
                reason=REQUEUED_NOTE,
            )
        )
    queues.enqueue_phase(task_id, new_job, plan=plan)
    queues.enqueue_say(
        task_id,
        f":arrows_counterclockwise: This task's job was lost (job {problem}); it is queued again.",
    )
    return "requeued"


def _fail_lost(
    db: Database, task_id: int, state: TaskState, job_id: str | None, reason: str
) -> bool:
    """Fail a running task whose job is gone, if it is still that job's.

    Between reading the task and judging its job, the task may have been failed,
    retried and claimed by a new, live job in the same state; the row lock and the
    job id make sure only the task that was judged is failed.

    Returns:
        True when this call failed the task.
    """
    with db.session() as session:
        if not _still_judged(session, task_id, state, job_id):
            return False
        return transition(session, task_id, state, TaskState.FAILED, reason=reason, error=reason)


def reconcile(
    db: Database,
    queues: Queues,
    grace: timedelta = GRACE,
    stale_after: timedelta = STALE_AFTER,
    max_requeues: int = MAX_REQUEUES,
    now: datetime | None = None,
) -> ReconcileReport:
    """One pass over active tasks; safe to run from several schedulers at once.

    Args:
        db: The task database.
        queues: The RQ queues the tasks' jobs live on.
        grace: Tasks updated more recently than this are left alone.
        stale_after: How old a running job's heartbeat may be before its worker is
            taken for dead.
        max_requeues: Requeues of a waiting task before it is failed instead.
        now: The moment the pass judges ages from (the current time by default).
    """
    report = ReconcileReport()
    now = now or utcnow()
    cutoff = now - grace
    active = (TaskState.QUEUED, TaskState.APPROVED, TaskState.PLANNING, TaskState.EXECUTING)
    with db.session() as session:
        rows = session.execute(
            select(Task.id, Task.state, Task.job_id).where(
                Task.state.in_([s.value for s in active]), Task.updated_at < cutoff
            )
        ).all()
    for task_id, state_value, job_id in rows:
        state = TaskState(state_value)
        problem = job_health(queues, job_id, now - stale_after)
        if problem is None:
            continue
        if state in (TaskState.QUEUED, TaskState.APPROVED):
            outcome = _requeue(db, queues, task_id, state, job_id, problem, max_requeues)
            if outcome == "requeued":
                report.requeued.append(task_id)
                log.warning("T-%s had no job (%s); queued again", task_id, problem)
            elif outcome == "failed":
                queues.enqueue_sync(task_id)
                report.failed.append(task_id)
                log.warning("T-%s failed: its job was lost too often (%s)", task_id, problem)
            continue
        reason = f"{LOST_WORKER} (job {problem}). Retry to run it again."
        if _fail_lost(db, task_id, state, job_id, reason):
            queues.enqueue_sync(task_id)
            report.failed.append(task_id)
            log.warning("T-%s failed: its job is %s", task_id, problem)
    return report


def reconcile_job() -> None:
    """RQ entry point for the scheduled pass."""
    from jobs.context import current

    ctx = current()
    reconcile(ctx.db, ctx.queues)
