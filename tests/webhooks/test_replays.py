"""A captured, signed webhook body acts once: new headers do not make it a new delivery.

The HMAC covers the body alone, so anyone who captured a delivery can send it again
with any `X-GitHub-Delivery`, `Request-ID` or Jira identifier they like.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.services import Services
from jobs.deliveries import KEEP
from tests.conftest import APPROVER
from tests.slackclient import SlackUser
from tests.webhooks.conftest import Hooks, deliveries, load, tasks


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def later(stamp: str) -> str:
    """GitHub's `2026-01-01T00:00:00Z`, one second on."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (moment + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_replayed_approval_comment_never_approves_a_newer_task(
    hooks: Hooks, services: Services, user: SlackUser
) -> None:
    """The comment that approved T-1, replayed with a new delivery id once T-2 has a
    plan on the same issue, approves nothing."""
    hooks.github(load("github_issues_labeled.json"), "issues")
    user.work("default", "plan")
    approval = load("github_issue_comment_created.json")
    assert hooks.github(approval, "issue_comment", delivery="d-approve").body == {
        "status": "approved",
        "task": "T-1",
    }
    services.lifecycle.cancel(1, APPROVER)
    relabelled = load("github_issues_labeled.json")
    # A new labelling is a new body (GitHub dates it anew), even within the same second.
    relabelled["issue"]["updated_at"] = later(relabelled["issue"]["updated_at"])
    assert hooks.github(relabelled, "issues").status == 201
    user.work("default", "plan")
    assert [t.state for t in tasks(services)] == ["cancelled", "awaiting_approval"]

    replay = hooks.github(approval, "issue_comment", delivery="d-someone-elses")

    assert replay.status == 200 and replay.body == {"status": "duplicate"}
    assert [t.state for t in tasks(services)] == ["cancelled", "awaiting_approval"]


def test_an_approval_written_before_the_plan_was_posted_is_refused(
    hooks: Hooks, services: Services, user: SlackUser
) -> None:
    """A comment dated before the current plan was posted cannot be about that plan."""
    hooks.github(load("github_issues_labeled.json"), "issues")
    user.work("default", "plan")
    earlier = load("github_issue_comment_created.json")
    earlier["comment"]["id"] += 1
    earlier["comment"]["created_at"] = iso(datetime.now(UTC) - timedelta(hours=1))

    reply = hooks.github(earlier, "issue_comment")

    assert reply.status == 202 and reply.body["status"] == "refused"
    assert "written before the current plan of T-1" in reply.body["reason"]
    assert [t.state for t in tasks(services)] == ["awaiting_approval"]
    # Written after the plan, the same words approve it.
    assert hooks.github(load("github_issue_comment_created.json"), "issue_comment").body == {
        "status": "approved",
        "task": "T-1",
    }


def test_a_sentry_body_replayed_without_its_request_id_creates_no_task(
    hooks: Hooks, services: Services
) -> None:
    """The same signed alert, sent again bare or with another id after its task ended."""
    alert = load("sentry_event_alert.json")
    assert hooks.sentry(alert, request_id="r-1").status == 201
    services.lifecycle.cancel(1, APPROVER)
    replies = [hooks.sentry(alert, request_id=""), hooks.sentry(alert, request_id="r-2")]
    assert [(r.status, r.body) for r in replies] == [(200, {"status": "duplicate"})] * 2
    assert [t.state for t in tasks(services)] == ["cancelled"]


def test_a_jira_body_replayed_with_a_new_identifier_creates_no_task(
    hooks: Hooks, services: Services
) -> None:
    """Jira's signed body, replayed with a fresh webhook identifier after its task ended."""
    created = load("jira_issue_created.json")
    assert hooks.jira(created, identifier="j-1").status == 201
    services.lifecycle.cancel(1, APPROVER)
    replay = hooks.jira(created, identifier="j-2")
    assert (replay.status, replay.body) == (200, {"status": "duplicate"})
    assert len(tasks(services)) == 1


def test_bodies_older_than_the_delivery_window_are_refused(
    hooks: Hooks, services: Services
) -> None:
    """Past the window a body's record may be pruned; its own date refuses it instead."""
    stale = datetime.now(UTC) - KEEP - timedelta(hours=1)
    alert = load("sentry_event_alert.json")
    alert["data"]["event"]["timestamp"] = stale.timestamp()
    jira = load("jira_issue_created.json")
    jira["timestamp"] = int(stale.timestamp() * 1000)
    issue = load("github_issues_labeled.json")
    issue["issue"]["updated_at"] = iso(stale)
    comment = load("github_issue_comment_created.json")
    comment["comment"]["created_at"] = iso(stale)

    replies = [
        hooks.sentry(alert),
        hooks.jira(jira),
        hooks.github(issue, "issues"),
        hooks.github(comment, "issue_comment"),
    ]

    assert [r.status for r in replies] == [400] * 4
    assert all("older than the 72-hour delivery window" in r.body["error"] for r in replies)
    assert tasks(services) == [] and deliveries(services) == 0
