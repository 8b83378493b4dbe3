"""Jira issues labelled AI-Fix become tasks through the real app."""

from __future__ import annotations

from bot.services import Services
from tests.conftest import CHANNEL
from tests.slackclient import SlackUser, texts
from tests.webhooks.conftest import Hooks, deliveries, load, tasks


def test_created_issue_with_the_label_becomes_a_task_with_a_card(
    hooks: Hooks, services: Services, user: SlackUser
) -> None:
    """`jira:issue_created` carrying AI-Fix: a task from the summary and description."""
    reply = hooks.jira(load("jira_issue_created.json"))
    assert reply.status == 201, reply.body
    assert reply.body == {"status": "created", "task": "T-1", "channel": CHANNEL}

    [task] = tasks(services)
    assert task.source == "jira" and task.source_ref == "PAY-17"
    assert task.description.startswith(
        "Checkout discount wrong for percentage coupons\n\n"
        "Customers with a 10% coupon are charged 190.00"
    )
    assert "Jira PAY-17: https://acme.atlassian.net/browse/PAY-17" in task.description
    assert task.requester == "jira:Dana Reporter"
    assert (task.source_data or {})["priority"] == "High"

    user.work("default")
    card = texts(user.card())
    assert "T-1 · Checkout discount wrong for percentage coupons" in card
    assert "jira:Dana Reporter" in card


def test_update_that_adds_the_label_starts_a_task_once(hooks: Hooks, services: Services) -> None:
    """The label arriving by update starts work; later edits of the issue do not."""
    reply = hooks.jira(load("jira_issue_updated.json"))
    assert reply.status == 201, reply.body

    later_edit = load("jira_issue_updated.json")
    later_edit["changelog"]["items"] = [
        {
            "field": "summary",
            "fieldtype": "jira",
            "from": None,
            "fromString": "Checkout discount wrong",
            "to": None,
            "toString": "Checkout discount wrong for percentage coupons",
        }
    ]
    reply = hooks.jira(later_edit)
    assert reply.status == 202 and "already had the label" in reply.body["reason"]
    assert len(tasks(services)) == 1


def test_issues_without_the_label_or_in_unmapped_projects_start_nothing(
    hooks: Hooks, services: Services
) -> None:
    """No AI-Fix label, an unmapped project, another event: 202 and nothing written."""
    unlabelled = load("jira_issue_created.json")
    unlabelled["issue"]["fields"]["labels"] = ["checkout"]
    other_project = load("jira_issue_created.json")
    other_project["issue"]["key"] = "OPS-3"
    other_project["issue"]["fields"]["project"]["key"] = "OPS"
    deleted = load("jira_issue_created.json")
    deleted["webhookEvent"] = "jira:issue_deleted"
    for payload in (unlabelled, other_project, deleted):
        reply = hooks.jira(payload)
        assert reply.status == 202 and reply.body["status"] == "ignored", reply.body
    assert "OPS is not mapped" in hooks.jira(other_project).body["reason"]
    assert tasks(services) == []
    assert deliveries(services) == 0


def test_replayed_delivery_and_reopened_label_create_nothing_new(
    hooks: Hooks, services: Services
) -> None:
    """Jira's retry (same identifier) is a duplicate; a second trigger finds the open task."""
    first = hooks.jira(load("jira_issue_created.json"), identifier="wh-1")
    retry = hooks.jira(load("jira_issue_created.json"), identifier="wh-1")
    relabel = hooks.jira(load("jira_issue_updated.json"), identifier="wh-2")
    assert first.status == 201
    assert retry.status == 200 and retry.body == {"status": "duplicate"}
    assert relabel.status == 200 and relabel.body == {"status": "exists", "task": "T-1"}
    assert len(tasks(services)) == 1


def test_description_in_document_format_is_read_as_text(hooks: Hooks, services: Services) -> None:
    """A description sent as Atlassian Document Format becomes plain text."""
    payload = load("jira_issue_created.json")
    payload["issue"]["fields"]["description"] = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Coupons are off."}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "Seen on 2 carts."}]},
        ],
    }
    assert hooks.jira(payload).status == 201
    assert "Coupons are off.\nSeen on 2 carts." in tasks(services)[0].description
