"""GET /metrics: what an operator's Prometheus sees, read from the database and Redis."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, update

from bot.app import build_app
from bot.metrics import CE_CALLS_KEY
from bot.services import Services, make_redis
from bot.web import WebApp
from jobs.models import Task, TaskEvent, utcnow
from jobs.queues import Queues
from jobs.reconcile import reconcile
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER
from tests.slackclient import SlackUser

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(services: Services) -> tuple[str, Samples]:
    """GET /metrics through the WSGI app; the content type and every sample."""
    environ: dict[str, Any] = {"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(WebApp(services, build_app(services))(environ, start_response)).decode()
    assert seen["status"] == "200 OK"
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return seen["headers"]["Content-Type"], samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_a_finished_task_shows_in_states_transitions_phases_and_cost(
    user: SlackUser, slack: FakeSlack
):
    """One task run to success: counted by state, per transition, per phase, in dollars."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    user.command("run fix the discount calculation again")  # T-2 waits in the plan queue
    db = user.services.db
    with db.session() as session:
        # Pin T-1's audit trail to known instants so the phase arithmetic can be checked.
        events = session.execute(
            select(TaskEvent).where(TaskEvent.task_id == 1).order_by(TaskEvent.id)
        ).scalars()
        trail = list(events)
        start = trail[0].created_at
        offsets = [0, 2, 92, 3692, 3700, 4300]  # queued 2 s, planning 90 s, approval 1 h ...
        for event, offset in zip(trail, offsets, strict=True):
            event.created_at = start + timedelta(seconds=offset)
        session.execute(update(Task).where(Task.id == 1).values(agent_cost_usd=0.25))
        session.execute(update(Task).where(Task.id == 2).values(agent_cost_usd=0.5))

    content_type, samples = scrape(user.services)
    assert content_type.startswith("text/plain; version=")
    assert value(samples, "agentbot_tasks", state="succeeded") == 1
    assert value(samples, "agentbot_tasks", state="queued") == 1
    assert value(samples, "agentbot_tasks", state="failed") == 0
    assert value(samples, "agentbot_queue_length", queue="plan") == 1
    assert value(samples, "agentbot_queue_length", queue="execute") == 0

    transitions = {
        (dict(labels)["from"], dict(labels)["to"]): v
        for (name, labels), v in samples.items()
        if name == "agentbot_task_transitions_total"
    }
    assert transitions == {
        ("none", "queued"): 2,
        ("queued", "planning"): 1,
        ("planning", "awaiting_approval"): 1,
        ("awaiting_approval", "approved"): 1,
        ("approved", "executing"): 1,
        ("executing", "succeeded"): 1,
    }

    histogram = "agentbot_task_phase_duration_seconds"
    assert value(samples, f"{histogram}_count", phase="planning") == 1
    assert value(samples, f"{histogram}_sum", phase="planning") == pytest.approx(90, abs=0.01)
    assert value(samples, f"{histogram}_bucket", phase="planning", le="60.0") == 0
    assert value(samples, f"{histogram}_bucket", phase="planning", le="120.0") == 1
    assert value(samples, f"{histogram}_sum", phase="awaiting_approval") == pytest.approx(3600)
    assert value(samples, f"{histogram}_bucket", phase="awaiting_approval", le="1800.0") == 0
    assert value(samples, f"{histogram}_bucket", phase="awaiting_approval", le="3600.0") == 1
    assert value(samples, f"{histogram}_sum", phase="executing") == pytest.approx(600)
    assert value(samples, f"{histogram}_bucket", phase="executing", le="+Inf") == 1
    # T-2 is still queued: an unfinished phase is not a duration yet.
    assert value(samples, f"{histogram}_count", phase="queued") == 1

    assert value(samples, "agentbot_agent_cost_usd_total", repo="acme/calc") == 0.75
    assert value(samples, "agentbot_backend_up", backend="database") == 1
    assert value(samples, "agentbot_backend_up", backend="redis") == 1


def test_failures_slack_errors_and_cost_explorer_calls_are_counted(
    user: SlackUser, slack: FakeSlack, services: Services
):
    """Errors from forked job horses and from the web process all reach one scrape."""
    # A card update that meets a 500 once: retried in a forked horse, and counted there.
    slack.fail_next("chat.postMessage", status=500)
    user.command("run fix the discount calculation")
    user.work("default")
    with pytest.raises(SlackApiError):
        services.slack.usergroups_users_list(usergroup="SNOSUCHGROUP")
    services.queues.queue("default").enqueue("jobs.work.no_such_job", 1)
    user.work("default")
    for _ in range(3):
        services.redis.incr(CE_CALLS_KEY)

    _, samples = scrape(services)
    errors = "agentbot_slack_api_errors_total"
    assert value(samples, errors, method="chat.postMessage", error="http_500") == 1
    assert value(samples, errors, method="usergroups.users.list", error="no_such_subteam") == 1
    assert value(samples, "agentbot_jobs_failed", queue="default") == 1
    assert value(samples, "agentbot_jobs_failed", queue="plan") == 0
    assert value(samples, "agentbot_cost_explorer_calls_total") == 3
    assert value(samples, "agentbot_workers") == 0  # burst workers have left
    # The card was posted after all.
    assert user.card() is not None


def test_redis_down_still_serves_database_metrics(services: Services, user: SlackUser):
    """With Redis unreachable the scrape still answers, and says which backend is down."""
    user.command("run fix the discount calculation")
    dead = make_redis("redis://127.0.0.1:9/0")
    broken = dataclasses.replace(services, redis=dead, queues=Queues(dead, services.config.jobs))
    _, samples = scrape(broken)
    assert value(samples, "agentbot_backend_up", backend="redis") == 0
    assert value(samples, "agentbot_backend_up", backend="database") == 1
    assert value(samples, "agentbot_tasks", state="queued") == 1
    assert not any(name == "agentbot_queue_length" for name, _ in samples)


def test_requeues_are_counted_apart_and_do_not_split_a_phase(user: SlackUser):
    """A job queued again shows as a requeue, not as a transition or a second phase."""
    user.command("run fix the discount calculation")
    user.services.redis.flushall()
    report = reconcile(user.services.db, user.services.queues, now=utcnow() + timedelta(minutes=1))
    assert report.requeued == [1]
    user.work("default", "plan")

    _, samples = scrape(user.services)
    assert value(samples, "agentbot_task_requeues_total", state="queued") == 1
    transitions = [
        dict(labels)
        for (name, labels), _ in samples.items()
        if name == "agentbot_task_transitions_total"
    ]
    assert {"from": "queued", "to": "queued"} not in transitions
    # One queued phase, from the command to the plan job starting.
    assert value(samples, "agentbot_task_phase_duration_seconds_count", phase="queued") == 1
