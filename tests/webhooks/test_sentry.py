"""Sentry issue alerts become tasks that start from the stack trace; storms make one task."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from bot.services import Services
from jobs.config import AgentbotConfig
from jobs.work import brief_for
from tests.conftest import APPROVER, CHANNEL
from tests.slackclient import SlackUser, texts
from tests.webhooks.conftest import Hooks, deliveries, load, tasks


def test_issue_alert_creates_a_task_carrying_the_stack_trace(
    hooks: Hooks, services: Services, user: SlackUser, config: AgentbotConfig
) -> None:
    """The alert's error, culprit, frames and count reach the card and the planning brief."""
    reply = hooks.sentry(load("sentry_event_alert.json"))
    assert reply.status == 201, reply.body
    assert reply.body["task"] == "T-1" and reply.body["channel"] == CHANNEL

    [task] = tasks(services)
    assert task.source == "sentry" and task.source_ref == "1117540176"
    assert task.repo == "acme/calc"
    data = task.source_data or {}
    assert data["error_type"] == "ReferenceError"
    assert data["message"] == "heck is not defined"
    assert data["culprit"] == "?(<anonymous>)"
    assert data["event_count"] == 1
    # Most recent call first: the raising frame leads.
    assert data["frames"][0] == {
        "file": "<anonymous>",
        "line": 3,
        "function": None,
        "in_app": False,
    }
    assert [f["file"] for f in data["frames"][1:]] == ["/js/prod/runner-4.1.7.min.js"] * 2
    assert task.requester == "sentry: Very Important Alert Rule!"

    brief = brief_for(task, config.repos[0])
    assert brief.source == "sentry"
    assert brief.source_data["frames"] == data["frames"]
    assert brief.source_data["error_type"] == "ReferenceError"

    user.work("default")
    card = texts(user.card())
    assert "T-1 · ReferenceError: heck is not defined" in card
    assert "Culprit: ?(&lt;anonymous&gt;)" in card
    # The stack trace makes the description long: the card has its head, the thread all.
    assert "The full description is in the thread" in card
    full = user.thread()[0].text
    assert "&lt;anonymous&gt;:3 in ?" in full
    assert "/js/prod/runner-4.1.7.min.js:1 in ?" in full
    assert "sentry: Very Important Alert Rule!" in card


def test_an_alert_storm_creates_one_task(hooks: Hooks, services: Services) -> None:
    """Thirty concurrent alerts for one Sentry issue: one task, thirty events counted."""
    payloads = [load("sentry_event_alert.json") for _ in range(30)]
    for payload in payloads:  # each alert is about an event of its own
        payload["data"]["event"]["event_id"] = uuid.uuid4().hex
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(hooks.sentry, payloads))
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [200] * 29 + [201], [r.body for r in replies if r.status not in (200, 201)]
    assert {r.body["task"] for r in replies} == {"T-1"}
    [task] = tasks(services)
    assert (task.source_data or {})["event_count"] == 30
    assert (task.source_data or {})["triggers"] == 30
    assert services.queues.lengths()["plan"] == 1


def test_a_new_task_once_the_previous_one_ended(hooks: Hooks, services: Services) -> None:
    """De-duplication holds only while a task for the issue is open."""
    assert hooks.sentry(load("sentry_event_alert.json")).status == 201
    services.lifecycle.cancel(1, APPROVER)
    reply = hooks.sentry(load("sentry_event_alert.json"))
    assert reply.status == 201 and reply.body["task"] == "T-2"
    assert [t.state for t in tasks(services)] == ["cancelled", "queued"]


def test_replayed_request_id_creates_nothing_new(hooks: Hooks, services: Services) -> None:
    """The same Request-ID twice is a duplicate, and is not counted as another event."""
    hooks.sentry(load("sentry_event_alert.json"), request_id="req-1")
    replay = hooks.sentry(load("sentry_event_alert.json"), request_id="req-1")
    assert replay.status == 200 and replay.body == {"status": "duplicate"}
    [task] = tasks(services)
    assert (task.source_data or {})["event_count"] == 1


def test_other_resources_and_unmapped_projects_start_nothing(
    hooks: Hooks, services: Services
) -> None:
    """Installation, issue and metric alert hooks, and unmapped projects: 202, no task."""
    for resource in ("installation", "issue", "metric_alert", "error", "comment"):
        reply = hooks.sentry(load("sentry_event_alert.json"), resource)
        assert reply.status == 202 and reply.body["status"] == "ignored", resource
    other = load("sentry_event_alert.json")
    other["data"]["event"]["url"] = other["data"]["event"]["url"].replace("front-end", "backend")
    reply = hooks.sentry(other)
    assert reply.status == 202 and "backend is not mapped" in reply.body["reason"]
    resolved = load("sentry_event_alert.json")
    resolved["action"] = "resolved"
    assert hooks.sentry(resolved).status == 202
    assert tasks(services) == []
    assert deliveries(services) == 0


def test_in_app_frames_are_shown_first_on_the_card(hooks: Hooks, user: SlackUser) -> None:
    """When some frames are the application's own, the card lists those."""
    payload = load("sentry_event_alert.json")
    exception = payload["data"]["event"]["exception"]["values"][0]
    exception["stacktrace"]["frames"].append(
        {"filename": "shop/pricing.py", "lineno": 14, "function": "apply_discount", "in_app": True}
    )
    payload["data"]["event"]["title"] = "ZeroDivisionError: division by zero"
    assert hooks.sentry(payload).status == 201
    user.work("default")
    card = texts(user.card())
    assert "In-app frames, most recent call first:\n  shop/pricing.py:14 in apply_discount" in card
    assert "runner-4.1.7" not in card
