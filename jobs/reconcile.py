"""Find tasks whose job vanished and put them right, so none waits forever.

A worker killed mid-job, or Redis losing its data, leaves a task in an active state
with no job behind it. Queued and approved tasks are queued again; planning and
executing ones are failed with a message in the thread (their work may be half done,
so a human decides whether to retry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from rq.job import JobStatus
from sqlalchemy import select, update

from jobs.db import Database
from jobs.models import Task, utcnow
from jobs.queues import Queues
from jobs.states import TaskState
from jobs.tasks import transition

log = logging.getLogger(__name__)

# A task this young may simply not have been enqueued yet.
GRACE = timedelta(seconds=30)
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@dataclass
class ReconcileReport:
    """What one pass did."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def reconcile(db: Database, queues: Queues, grace: timedelta = GRACE) -> ReconcileReport:
    """One pass over active tasks; safe to run from several schedulers at once."""
    report = ReconcileReport()
    cutoff = utcnow() - grace
    with db.session() as session:
        rows = session.execute(
            select(Task.id, Task.state, Task.job_id).where(
                Task.state.in_(
                    [
                        s.value
                        for s in (
                            TaskState.QUEUED,
                            TaskState.APPROVED,
                            TaskState.PLANNING,
                            TaskState.EXECUTING,
                        )
                    ]
                ),
                Task.updated_at < cutoff,
            )
        ).all()
    for task_id, state_value, job_id in rows:
        state = TaskState(state_value)
        status = queues.job_status(job_id) if job_id else None
        if status in LIVE:
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
                report.requeued.append(task_id)
                log.warning("T-%s had no job (%s); queued again", task_id, status)
            continue
        reason = (
            f"The worker running this task stopped unexpectedly (job {status or 'lost'}). "
            "Retry to run it again."
        )
        with db.session() as session:
            moved = transition(
                session, task_id, state, TaskState.FAILED, reason=reason, error=reason
            )
        if moved:
            queues.enqueue_sync(task_id)
            report.failed.append(task_id)
            log.warning("T-%s failed: its job is %s", task_id, status or "gone")
    return report


def reconcile_job() -> None:
    """RQ entry point for the scheduled pass."""
    from jobs.context import current

    ctx = current()
    reconcile(ctx.db, ctx.queues)
