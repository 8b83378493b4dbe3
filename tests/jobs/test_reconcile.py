"""The reconciler: no task waits forever after its worker or its Redis data is lost."""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from rq.job import Job, JobStatus
from sqlalchemy import func, select, update

from bot import blocks
from jobs import reconcile as reconcile_module
from jobs.models import Task, TaskEvent, utcnow
from jobs.reconcile import GRACE, LOST_WORKER, MAX_REQUEUES, STALE_AFTER, reconcile
from jobs.schedule import LOST_WORKER_NOTICED_WITHIN
from jobs.states import TaskState
from jobs.tasks import get_task, transition
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, CHANNEL, REQUESTER, git
from tests.procs import children_of, proc_stats
from tests.slackclient import SlackUser, texts


def task_row(user: SlackUser, task_id: int = 1) -> Task:
    with user.services.db.session() as session:
        return get_task(session, task_id)


def kill_worker_and_horse(worker_pid: int) -> list[int]:
    """SIGKILL a forking worker and its work horse, as an OOM kill or a lost node would."""
    victims = [*children_of(worker_pid), worker_pid]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    return victims


def start_executing(
    user: SlackUser, slack: FakeSlack, description: str = "slow discount work"
) -> multiprocessing.Process:
    """A slow task planned, approved, and running in a forked worker of its own."""
    user.command(f"run {description}")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    worker = multiprocessing.get_context("fork").Process(target=user.work, args=("execute",))
    worker.start()
    slack.wait_for(lambda: task_row(user).state == "executing", timeout=30)
    # Kill it while the agent works, not while it holds the task's Slack-sync lock (a
    # lock left by a killed horse only expires after 60 s, delaying the next update).
    lock = "agentbot:slack-sync:1"
    slack.wait_for(
        lambda: "executing" in texts(user.card()) and not user.services.redis.exists(lock),
        timeout=30,
    )
    return worker


def test_killed_worker_fails_the_task_with_a_message_in_the_thread(
    user: SlackUser, slack: FakeSlack
):
    """SIGKILL of worker and horse mid-execution: the next pass fails the task, says why."""
    worker = start_executing(user, slack)
    job_id = task_row(user).job_id
    assert job_id is not None
    kill_worker_and_horse(worker.pid or 0)
    worker.join(timeout=10)
    assert worker.exitcode == -signal.SIGKILL
    # Redis still believes the job runs: nothing in RQ notices a SIGKILLed worker soon.
    assert user.services.queues.job_status(job_id) == JobStatus.STARTED

    killed_at = utcnow()
    job = Job.fetch(job_id, connection=user.services.redis)
    beat = job.last_heartbeat or job.started_at
    assert beat is not None
    beat = beat.replace(tzinfo=UTC) if beat.tzinfo is None else beat
    assert beat <= killed_at

    # Passes run with the production settings, at moments given rather than waited for.
    # Until its heartbeat is STALE_AFTER old the job may belong to a live worker.
    report = reconcile(
        user.services.db, user.services.queues, now=beat + STALE_AFTER - timedelta(seconds=1)
    )
    assert report.failed == [] and task_row(user).state == "executing"

    # The first pass after that fails the task. Passes come every RECONCILE_EVERY_SECONDS,
    # so the worst case is LOST_WORKER_NOTICED_WITHIN after the kill, which leaves time
    # for the Slack update inside the two minutes users are promised.
    assert GRACE <= STALE_AFTER
    assert timedelta(seconds=100) >= LOST_WORKER_NOTICED_WITHIN
    report = reconcile(
        user.services.db, user.services.queues, now=beat + STALE_AFTER + timedelta(seconds=1)
    )
    assert report.failed == [1]
    task = task_row(user)
    assert task.state == "failed"
    assert LOST_WORKER in (task.error or "")

    user.work("default")
    card = user.card()
    assert "failed" in texts(card)
    outcome = user.thread()[-1]
    assert "T-1 failed" in texts(outcome)
    assert LOST_WORKER in texts(outcome)
    assert "Retry to run it again" in texts(outcome)
    # A second pass has nothing left to do.
    again = reconcile(
        user.services.db, user.services.queues, grace=timedelta(0), stale_after=timedelta(0)
    )
    assert again.failed == [] and again.requeued == []

    # Retry from the outcome message runs the approved plan again, to success.
    user.click(outcome, blocks.RETRY, APPROVER)
    assert task_row(user).state == "approved"


def alive(pid: int) -> bool:
    """Whether a process still runs (a zombie has finished)."""
    return any(found == pid and fields[0] != "Z" for found, fields in proc_stats())


def test_a_work_horse_that_outlives_its_worker_goes_quiet_once_the_task_is_failed(
    user: SlackUser, slack: FakeSlack, sample_repo: Path
):
    """Only the worker's pid killed: after the reconciler fails the task, its still
    running horse posts, edits, commits and pushes nothing more."""
    worker = start_executing(user, slack, "lingering discount work")
    (horse,) = children_of(worker.pid or 0)
    os.kill(worker.pid or 0, signal.SIGKILL)
    worker.join(timeout=10)
    pushed = git("rev-parse", "agent/T-1", cwd=sample_repo)

    report = reconcile(
        user.services.db, user.services.queues, now=utcnow() + STALE_AFTER + timedelta(seconds=1)
    )
    assert report.failed == [1]
    user.work("default")
    assert LOST_WORKER in texts(user.thread()[-1])
    seen = len(slack.calls)

    slack.wait_for(lambda: not alive(horse), timeout=60)
    assert [call.method for call in slack.calls[seen:]] == []
    assert "GREEN" not in thread_text(slack, user, 1)
    assert git("rev-parse", "agent/T-1", cwd=sample_repo) == pushed
    assert task_row(user).state == "failed"


def thread_text(slack: FakeSlack, user: SlackUser, task_id: int) -> str:
    task = task_row(user, task_id)
    root = task.thread_ts or task.card_ts
    assert root is not None, f"T-{task_id} has no card"
    return "\n".join(texts(m) for m in slack.thread(CHANNEL, root))


def test_redis_flushed_requeues_waiting_tasks_and_fails_running_ones(
    user: SlackUser, slack: FakeSlack
):
    """After Redis loses every job, waiting tasks run again and a running one is failed."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)  # T-1: approved, execute job queued
    user.command("run fix the discount calculation again")
    user.work("default")  # T-2: queued, plan job queued, card posted
    user.command("run fix the discount calculation a third time")
    user.work("default")
    with user.services.db.session() as session:  # T-3: a worker was planning it
        assert transition(session, 3, TaskState.QUEUED, TaskState.PLANNING)
    assert [task_row(user, n).state for n in (1, 2, 3)] == ["approved", "queued", "planning"]

    user.services.redis.flushall()
    report = reconcile(user.services.db, user.services.queues, grace=timedelta(0))
    assert sorted(report.requeued) == [1, 2]
    assert report.failed == [3]
    # Another pass right away finds every job in place.
    again = reconcile(user.services.db, user.services.queues, grace=timedelta(0))
    assert again.requeued == [] and again.failed == []

    user.work("default", "plan", "execute")
    assert task_row(user, 1).state == "succeeded"
    assert task_row(user, 2).state == "awaiting_approval"
    assert task_row(user, 3).state == "failed"
    assert "queued again" in thread_text(slack, user, 1)
    assert "Plan for T-2" in thread_text(slack, user, 2)
    assert "queued again" in thread_text(slack, user, 2)
    t3 = thread_text(slack, user, 3)
    assert LOST_WORKER in t3 and "job lost" in t3


def test_recent_and_live_tasks_are_left_alone(user: SlackUser, slack: FakeSlack):
    """Within the grace period, or with its job still queued, a task is not touched."""
    user.command("run fix the discount calculation")
    job_id = task_row(user).job_id
    report = reconcile(user.services.db, user.services.queues)  # default 30 s grace
    assert report.requeued == [] and report.failed == []
    report = reconcile(user.services.db, user.services.queues, grace=timedelta(0))
    assert report.requeued == [] and report.failed == []
    assert task_row(user).job_id == job_id
    assert user.services.queues.lengths()["plan"] == 1


def requeue_notes(user: SlackUser, task_id: int = 1) -> int:
    with user.services.db.session() as session:
        return int(
            session.execute(
                select(func.count()).where(
                    TaskEvent.task_id == task_id, TaskEvent.from_state == TaskEvent.to_state
                )
            ).scalar_one()
        )


def test_a_job_lost_again_and_again_fails_the_task_after_the_requeue_limit(
    user: SlackUser, slack: FakeSlack
):
    """A task whose job keeps vanishing is queued again MAX_REQUEUES times, then failed."""
    user.command("run fix the discount calculation")
    user.work("default")  # the card
    moment = utcnow()
    for attempt in range(1, MAX_REQUEUES + 1):
        user.services.redis.flushall()
        moment += timedelta(minutes=1)
        report = reconcile(user.services.db, user.services.queues, now=moment)
        assert report.requeued == [1] and report.failed == []
        assert requeue_notes(user) == attempt
        user.work("default")  # the "queued again" message
    assert task_row(user).state == "queued"

    user.services.redis.flushall()
    moment += timedelta(minutes=1)
    report = reconcile(user.services.db, user.services.queues, now=moment)
    assert report.requeued == [] and report.failed == [1]
    task = task_row(user)
    assert task.state == "failed"
    assert f"lost {MAX_REQUEUES + 1} times" in (task.error or "")
    assert user.services.queues.lengths()["plan"] == 0
    user.work("default")
    thread = thread_text(slack, user, 1)
    assert thread.count("queued again") == MAX_REQUEUES
    outcome = user.thread()[-1]
    assert "T-1 failed" in texts(outcome)
    assert f"lost {MAX_REQUEUES + 1} times" in texts(outcome)

    # Retrying is a fresh start: the count begins again from the retry.
    user.click(outcome, blocks.RETRY, REQUESTER)
    assert task_row(user).state == "queued"
    user.services.redis.flushall()
    report = reconcile(user.services.db, user.services.queues, now=moment + timedelta(minutes=1))
    assert report.requeued == [1] and report.failed == []


def test_a_task_claimed_by_a_new_job_meanwhile_is_not_failed(
    user: SlackUser, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
):
    """A running task whose lost job was replaced while the pass judged it is left alone."""
    user.command("run fix the discount calculation")
    user.work("default")
    with user.services.db.session() as session:  # a worker was planning it
        assert transition(session, 1, TaskState.QUEUED, TaskState.PLANNING)
    user.services.redis.flushall()
    judge = reconcile_module.job_health

    def lost_then_replaced(*args: Any, **kwargs: Any) -> str | None:
        problem = judge(*args, **kwargs)
        # Meanwhile the task was failed, retried and claimed again by a new job.
        with user.services.db.session() as session:
            session.execute(update(Task).where(Task.id == 1).values(job_id="plan-1-newer"))
        return problem

    monkeypatch.setattr(reconcile_module, "job_health", lost_then_replaced)
    report = reconcile(user.services.db, user.services.queues, grace=timedelta(0))

    assert report.failed == [] and report.requeued == []
    task = task_row(user)
    assert (task.state, task.job_id, task.error) == ("planning", "plan-1-newer", None)
