"""Job behaviour: retries with backoff, final failure, idempotent re-runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rq import Queue

from agents.scripted import ScriptedPlanner
from jobs.config import JobConfig
from jobs.queues import PLAN, Queues
from jobs.tasks import events_of, get_task
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
