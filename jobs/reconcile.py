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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from jobs.db import Database
from jobs.models import Task, utcnow
from jobs.queues import Queues
from jobs.states import TaskState
from jobs.tasks import transition

log = logging.getLogger(__name__)

# A task this young may simply not have been enqueued yet.
GRACE = timedelta(seconds=30)
# Four missed heartbeats at RQ's default 30 s monitoring interval.
STALE_AFTER = timedelta(seconds=120)
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


def reconcile(
    db: Database,
    queues: Queues,
    grace: timedelta = GRACE,
    stale_after: timedelta = STALE_AFTER,
) -> ReconcileReport:
    """One pass over active tasks; safe to run from several schedulers at once.

    Args:
        db: The task database.
        queues: The RQ queues the tasks' jobs live on.
        grace: Tasks updated more recently than this are left alone.
        stale_after: How old a running job's heartbeat may be before its worker is
            taken for dead.
    """
    report = ReconcileReport()
    now = utcnow()
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
            plan = state == TaskState.QUEUED
            new_job = queues.new_job_id(task_id, plan=plan)
            with db.session() as session:
                claimed = session.execute(
                    update(Task)
                    .where(Task.id == task_id, Task.state == state.value, Task.job_id == job_id)
                    .values(job_id=new_job, updated_at=utcnow())
                ).rowcount  # type: ignore[attr-defined]
            if claimed:
                queues.enqueue_phase(task_id, new_job, plan=plan)
                queues.enqueue_say(
                    task_id,
                    f":arrows_counterclockwise: This task's job was lost (job {problem}); "
                    "it is queued again.",
                )
                report.requeued.append(task_id)
                log.warning("T-%s had no job (%s); queued again", task_id, problem)
            continue
        reason = f"{LOST_WORKER} (job {problem}). Retry to run it again."
        with db.session() as session:
            moved = transition(
                session, task_id, state, TaskState.FAILED, reason=reason, error=reason
            )
        if moved:
            queues.enqueue_sync(task_id)
            report.failed.append(task_id)
            log.warning("T-%s failed: its job is %s", task_id, problem)
    return report


def reconcile_job() -> None:
    """RQ entry point for the scheduled pass."""
    from jobs.context import current

    ctx = current()
    reconcile(ctx.db, ctx.queues)
