"""Job behaviour: retries with backoff, final failure, idempotent re-runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from rq import Queue

from agents.base import AgentError
from agents.scripted import ScriptedExecutor, ScriptedPlanner
from agents.workspace import Workspaces
from jobs.config import JobConfig
from jobs.context import current
from jobs.queues import PLAN, Queues
from jobs.tasks import events_of, get_task
from jobs.work import _Watch
from tests.conftest import APPROVER, git
from tests.slackclient import SlackUser, texts


def test_transient_failure_is_retried_then_fails_the_task_with_a_message(
    user: SlackUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that keeps crashing is retried, then its task fails and the thread says why."""
    services = user.services
    services.config = services.config.model_copy(
        update={"jobs": JobConfig(max_retries=1, retry_backoff_seconds=(0,))}
    )
    services.queues = services.lifecycle.queues = Queues(services.redis, services.config.jobs)
    calls = Path(services.config.agent.workspace_dir).parent / "planner-calls"

    def crash(self: Any, *args: Any, **kwargs: Any) -> Any:
        with calls.open("a") as handle:  # the horse is a forked process: count on disk
            handle.write("x")
        raise ConnectionResetError("the git server hung up")

    monkeypatch.setattr(ScriptedPlanner, "plan", crash)
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.work("default", "plan")  # the retry, re-enqueued without delay
    user.work("default")
    assert calls.read_text() == "xx"
    with services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "failed"
    # Not one of the project's own errors: named by type, its text kept out of Slack.
    generic = "An internal error (ConnectionResetError) stopped T-1; the operators' logs"
    assert task.error is not None and task.error.startswith(f"Job failed: {generic}")
    thread = "\n".join(texts(m) for m in user.thread())
    assert f"Attempt failed: {generic} have the details. Retrying." in thread
    assert "T-1 failed" in thread and "Retry" in texts(user.card())
    assert "the git server hung up" not in thread + texts(user.card())


def test_rerunning_a_job_for_a_task_that_moved_on_does_nothing(user: SlackUser) -> None:
    """A duplicate or replayed plan job leaves a planned task exactly as it was."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    with user.services.db.session() as session:
        before = get_task(session, 1)
        trail = len(events_of(session, 1))
    # The same job id again (a replay), and a stray job with another id.
    queue = Queue(PLAN, connection=user.services.redis)
    queue.enqueue("jobs.work.plan_task", 1, job_id=before.job_id)
    queue.enqueue("jobs.work.plan_task", 1)
    user.work("default", "plan")
    with user.services.db.session() as session:
        after = get_task(session, 1)
        assert len(events_of(session, 1)) == trail
    assert (after.state, after.version, after.plan) == (before.state, before.version, before.plan)
    assert len([m for m in user.thread() if "Plan for T-1" in texts(m)]) == 1


NEWER_JOB = "execute-1-newer"


def hand_to_newer_job(database_url: str) -> None:
    """What reconciliation does to a stuck job: the task gets a new job id, same state."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("UPDATE tasks SET job_id = %s WHERE id = 1", (NEWER_JOB,))


def approved_task(user: SlackUser) -> None:
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)


def test_stale_job_cannot_complete_a_task_a_newer_job_claimed(
    user: SlackUser, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose task was handed on while it ran leaves the task to the newer job."""
    approved_task(user)
    diff_stat = Workspaces.diff_stat

    def taken_over_after_push(self: Workspaces, *args: Any, **kwargs: Any) -> Any:
        hand_to_newer_job(database_url)  # just before the old job's final move
        return diff_stat(self, *args, **kwargs)

    monkeypatch.setattr(Workspaces, "diff_stat", taken_over_after_push)
    user.work("default", "execute")
    user.work("default")
    with user.services.db.session() as session:
        task = get_task(session, 1)
        trail = [event.to_state for event in events_of(session, 1)]
    assert (task.state, task.job_id) == ("executing", NEWER_JOB)
    assert "succeeded" not in trail
    assert not any("T-1 succeeded" in texts(m) for m in user.thread())


def test_stale_job_cannot_fail_a_task_a_newer_job_claimed(
    user: SlackUser, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old job's agent error does not fail the task now owned by a newer job."""
    approved_task(user)

    def taken_over_then_fails(self: Any, *args: Any, **kwargs: Any) -> Any:
        hand_to_newer_job(database_url)
        raise AgentError("The agent gave up.")

    monkeypatch.setattr(ScriptedExecutor, "write_failing_test", taken_over_then_fails)
    user.work("default", "execute")
    user.work("default")
    with user.services.db.session() as session:
        task = get_task(session, 1)
        trail = [event.to_state for event in events_of(session, 1)]
    assert (task.state, task.job_id, task.error) == ("executing", NEWER_JOB, None)
    assert "failed" not in trail
    assert "The agent gave up" not in "\n".join(texts(m) for m in user.thread())


def test_stale_planning_job_pushes_no_plan(
    user: SlackUser, database_url: str, sample_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planning job handed on while its agent worked neither pushes PLAN.md nor posts it."""
    plan = ScriptedPlanner.plan

    def plans_then_loses_the_task(self: ScriptedPlanner, *args: Any, **kwargs: Any) -> Any:
        outcome = plan(self, *args, **kwargs)
        hand_to_newer_job(database_url)
        return outcome

    monkeypatch.setattr(ScriptedPlanner, "plan", plans_then_loses_the_task)
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.work("default")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert (task.state, task.job_id, task.plan) == ("planning", NEWER_JOB, None)
    assert git("branch", "--list", "agent/T-1", cwd=sample_repo) == ""
    assert not any("Plan for T-1" in texts(m) for m in user.thread())


def test_the_owning_job_still_fails_its_task(
    user: SlackUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a newer job, the same agent error fails the task as before."""
    approved_task(user)

    def fails(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AgentError("The agent gave up.")

    monkeypatch.setattr(ScriptedExecutor, "write_failing_test", fails)
    user.work("default", "execute")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "failed" and "The agent gave up." in (task.error or "")


def test_held_back_progress_line_is_shown_once_the_interval_passes(user: SlackUser) -> None:
    """A line throttled behind the previous one appears at the next cancel check after 2 s."""
    user.command("run fix the discount calculation")
    now = [1000.0]
    watch = _Watch(current(), 1, clock=lambda: now[0])

    def progress_text() -> str:
        [message] = [m for m in user.thread() if "•" in m.text]
        return message.text

    watch.progress("Reading pricing.py")
    assert "Reading pricing.py" in progress_text()
    now[0] += 0.5
    watch.progress("Editing pricing.py")  # too soon after the last line: held back
    assert "Editing pricing.py" not in progress_text()
    now[0] += 1.0
    assert watch.cancelled() is False
    assert "Editing pricing.py" not in progress_text()
    now[0] += 0.6  # the agent is quiet, but the interval has passed
    assert watch.cancelled() is False
    assert "Editing pricing.py" in progress_text()
