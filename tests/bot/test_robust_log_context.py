"""Web-side log lines about a queued task name its job; one request's context ends with it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from bot.logging import configure
from bot.web import WebApp
from jobs.models import Task
from tests.conftest import APPROVER, REQUESTER
from tests.slackclient import SlackUser, texts


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The JSON log stream at DEBUG; the root logger and structlog put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure("DEBUG", stream=stream, json=True)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written so far, parsed as JSON."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def job_of(user: SlackUser, task_id: int) -> str:
    with user.services.db.session() as session:
        job_id = session.execute(select(Task.job_id).where(Task.id == task_id)).scalar_one()
    assert job_id
    return str(job_id)


def test_requesting_and_approving_log_the_job_they_queue(
    user: SlackUser, log_stream: io.StringIO
) -> None:
    """`/agent run` and an Approve click log, on the web side, the task and its new job."""
    user.command("run fix the discount calculation")
    plan_job = job_of(user, 1)
    queued = [r for r in records(log_stream) if r["event"].startswith("queued T-1")]
    assert [(r["task_id"], r["job_id"], r["user"]) for r in queued] == [
        ("T-1", plan_job, REQUESTER)
    ]
    # RQ's own lines about putting the job on its queue carry it as well.
    pushed = [r for r in records(log_stream) if r["event"].startswith(f"Pushed job {plan_job}")]
    assert pushed and all(r.get("job_id") == plan_job for r in pushed)

    user.work("default", "plan")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    seen = len(records(log_stream))
    user.click(plan, "plan_approve", APPROVER)
    execute_job = job_of(user, 1)
    assert execute_job.startswith("execute-1-")
    queued = [r for r in records(log_stream)[seen:] if r["event"].startswith("queued T-1")]
    assert [(r["task_id"], r["job_id"], r["user"]) for r in queued] == [
        ("T-1", execute_job, APPROVER)
    ]


def test_a_request_served_on_a_thread_does_not_inherit_the_previous_ones_task(
    user: SlackUser, log_stream: io.StringIO
) -> None:
    """A task bound while serving one request (a webhook's, say) is gone for the next."""
    # A webhook creates a task on the server's own thread, which binds it there.
    user.services.lifecycle.request(
        description="fix the totals", requester=REQUESTER, channel="CDEV", check_access=False
    )
    assert structlog.contextvars.get_contextvars().get("task_id") == "T-1"

    web = WebApp(user.services, user.app)

    def hook(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        logging.getLogger("tests.hook").info("hook called")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    web.webhooks["probe"] = hook
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/probe",
        "wsgi.input": io.BytesIO(b""),
    }
    assert b"".join(web(environ, lambda status, headers: None)) == b"ok"
    line = next(r for r in records(log_stream) if r["event"] == "hook called")
    assert "task_id" not in line and "job_id" not in line
