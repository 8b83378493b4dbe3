"""RQ queues and how lifecycle jobs are put on them."""

from __future__ import annotations

import contextlib
import uuid

from redis import Redis
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from jobs.config import JobConfig

PLAN = "plan"
EXECUTE = "execute"
DEFAULT = "default"
ALL_QUEUES = (PLAN, EXECUTE, DEFAULT)

SYNC_TIMEOUT_SECONDS = 120
ON_FAILURE = Callback("jobs.work.on_job_failure", timeout=60)


class Queues:
    """Enqueues lifecycle jobs by dotted path, so the web process never imports them."""

    def __init__(self, redis: Redis, config: JobConfig) -> None:
        self.redis = redis
        self.config = config

    def queue(self, name: str) -> Queue:
        """The RQ queue called `name`."""
        return Queue(name, connection=self.redis)

    def _retry(self) -> Retry | None:
        if self.config.max_retries == 0:
            return None
        return Retry(max=self.config.max_retries, interval=list(self.config.retry_backoff_seconds))

    @staticmethod
    def new_job_id(task_id: int, *, plan: bool) -> str:
        """A fresh job id, stored on the task before the job is enqueued."""
        return f"{'plan' if plan else 'execute'}-{task_id}-{uuid.uuid4().hex[:12]}"

    def enqueue_phase(
        self, task_id: int, job_id: str, *, plan: bool, pipeline: Pipeline | None = None
    ) -> None:
        """Queue planning or execution of a task under the id stored on it."""
        if plan:
            self.enqueue_plan(task_id, job_id, pipeline=pipeline)
        else:
            self.enqueue_execute(task_id, job_id, pipeline=pipeline)

    def enqueue_phase_and_sync(self, task_id: int, job_id: str, *, plan: bool) -> None:
        """Queue a task's next phase and a refresh of its card in one Redis transaction.

        One MULTI/EXEC instead of four round trips: both jobs are queued, or neither
        (and the reconciler queues the phase again from the database).
        """
        with self.redis.pipeline() as pipeline:
            self.enqueue_phase(task_id, job_id, plan=plan, pipeline=pipeline)
            self.enqueue_sync(task_id, pipeline=pipeline)
            pipeline.execute()

    def enqueue_plan(self, task_id: int, job_id: str, pipeline: Pipeline | None = None) -> None:
        """Queue planning for a task."""
        self.queue(PLAN).enqueue(
            "jobs.work.plan_task",
            task_id,
            job_id=job_id,
            job_timeout=self.config.plan_timeout_seconds,
            retry=self._retry(),
            on_failure=ON_FAILURE,
            description=f"plan T-{task_id}",
            pipeline=pipeline,
        )

    def enqueue_execute(self, task_id: int, job_id: str, pipeline: Pipeline | None = None) -> None:
        """Queue execution of an approved plan."""
        self.queue(EXECUTE).enqueue(
            "jobs.work.execute_task",
            task_id,
            job_id=job_id,
            job_timeout=self.config.execute_timeout_seconds,
            retry=self._retry(),
            on_failure=ON_FAILURE,
            description=f"execute T-{task_id}",
            pipeline=pipeline,
        )

    def enqueue_sync(self, task_id: int, pipeline: Pipeline | None = None) -> None:
        """Queue a refresh of the task's Slack card and thread."""
        self.queue(DEFAULT).enqueue(
            "jobs.work.sync_task",
            task_id,
            job_timeout=SYNC_TIMEOUT_SECONDS,
            retry=Retry(max=3, interval=[2, 10, 30]),
            result_ttl=60,
            description=f"sync T-{task_id}",
            pipeline=pipeline,
        )

    def enqueue_say(self, task_id: int, text: str) -> None:
        """Queue a plain message in the task's thread."""
        self.queue(DEFAULT).enqueue(
            "jobs.work.say",
            task_id,
            text,
            job_timeout=SYNC_TIMEOUT_SECONDS,
            retry=Retry(max=3, interval=[2, 10, 30]),
            result_ttl=60,
        )

    def job_status(self, job_id: str) -> JobStatus | None:
        """The RQ status of a job, or None once Redis no longer knows it."""
        try:
            return Job.fetch(job_id, connection=self.redis).get_status(refresh=True)
        except NoSuchJobError:
            return None

    def stop(self, job_id: str) -> None:
        """Stop a job wherever it is: cancel it if queued, kill its work horse if running."""
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return
        status = job.get_status(refresh=True)
        if status == JobStatus.STARTED:
            # It may finish between the two reads; then there is nothing to stop.
            with contextlib.suppress(InvalidJobOperation):
                send_stop_job_command(self.redis, job_id)
        elif status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            job.cancel()

    def lengths(self) -> dict[str, int]:
        """Jobs waiting per queue (for metrics and readiness)."""
        return {name: self.queue(name).count for name in ALL_QUEUES}
