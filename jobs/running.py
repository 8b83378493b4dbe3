"""What people may do to a task while its agent runs: talk to it, wait for it, fund it.

Each request is checked here, in the web process, against the database: the task
must be executing, under the job the request names (a question's buttons carry it),
and the person must be allowed. Only then is a note left for that job in Redis
(`jobs.steering`); the job reads it while its agent runs. A refused request leaves
nothing behind.
"""

from __future__ import annotations

from redis import Redis
from sqlalchemy import select

from jobs.access import AccessPolicy
from jobs.db import Database
from jobs.exceptions import Conflict, NotAllowed
from jobs.models import Task
from jobs.states import TaskState
from jobs.steering import RunChannel
from jobs.tasks import get_task

# What the agent is told about who wrote (never a Slack user id).
REQUESTER = "the requester"
APPROVER = "an approver"


def task_in_thread(db: Database, channel: str, thread_ts: str) -> Task | None:
    """The task whose Slack thread this is, if any."""
    with db.session() as session:
        return session.execute(
            select(Task).where(Task.channel == channel, Task.thread_ts == thread_ts).limit(1)
        ).scalar_one_or_none()


class RunningTasks:
    """Requests about running tasks, checked and handed to the job that runs each.

    Args:
        db: The task database.
        redis: Where the notes for jobs are left.
        access: Who may do what.
    """

    def __init__(self, db: Database, redis: Redis, access: AccessPolicy) -> None:
        self.db = db
        self.redis = redis
        self.access = access

    def _running(self, task_id: int, job_id: str | None) -> tuple[Task, RunChannel]:
        with self.db.session() as session:
            task = get_task(session, task_id)
        if task.task_state != TaskState.EXECUTING or task.job_id is None:
            raise Conflict(f"{task.key} is {task.task_state.label}; its agent is not running.")
        if job_id is not None and job_id != task.job_id:
            raise Conflict(f"That question about {task.key} is no longer open.")
        return task, RunChannel(self.redis, task.id, task.job_id)

    def keep_waiting(self, task_id: int, job_id: str, user: str) -> Task:
        """Keep waiting for a quiet run (the requester or an approver).

        Raises:
            NotAllowed: Neither the requester nor an approver.
            Conflict: The run is over, or the question was asked by an earlier job.
        """
        task, channel = self._running(task_id, job_id)
        if not self.access.may_cancel(user, task.requester):
            raise NotAllowed("Only the requester or an approver can decide to keep waiting.")
        channel.keep_waiting(user)
        return task

    def decide_budget(self, task_id: int, job_id: str, user: str, more_usd: float | None) -> Task:
        """An approver's answer to the budget question: `more_usd` more, or stop (None).

        Raises:
            NotAllowed: Not an approver.
            Conflict: The run is over, the question is stale, or already answered.
        """
        if not self.access.is_approver(user):
            raise NotAllowed("Only an approver can decide on the agent's budget.")
        task, channel = self._running(task_id, job_id)
        if not channel.decide_budget(user, more_usd):
            raise Conflict(f"The budget of {task.key} was already decided.")
        return task

    def author(self, task: Task, user: str) -> str | None:
        """How the agent is told who wrote, or None when `user` may not talk to the task."""
        if user == task.requester:
            return REQUESTER
        if self.access.is_approver(user):
            return APPROVER
        return None

    def send(self, task: Task, user: str, text: str) -> bool:
        """Pass a thread message to the task's running agent.

        Returns:
            False, changing nothing, when `user` is neither the requester nor an
            approver, or the agent no longer runs.
        """
        author = self.author(task, user)
        if author is None or not text.strip():
            return False
        try:
            _task, channel = self._running(task.id, task.job_id)
        except Conflict:
            return False
        channel.send(author, text.strip())
        return True
