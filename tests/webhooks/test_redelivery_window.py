"""A webhook delivery is remembered for as long as its sender may redeliver it by hand."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from bot.services import Services
from jobs.deliveries import KEEP, prune_deliveries
from jobs.models import SlackDelivery, utcnow
from tests.conftest import APPROVER
from tests.webhooks.conftest import Hooks, load, tasks


def test_github_redelivery_two_days_later_starts_no_second_task(
    hooks: Hooks, services: Services
) -> None:
    """GitHub's manual redelivery, within its three days, is a duplicate even after a prune."""
    labelled = load("github_issues_labeled.json")
    assert hooks.github(labelled, "issues", delivery="d-redelivered").status == 201
    # The task ends, so only the delivery record stands between a redelivery and a new task.
    services.lifecycle.cancel(1, APPROVER)
    with services.db.session() as session:
        session.execute(
            update(SlackDelivery)
            .where(SlackDelivery.key == "github:d-redelivered")
            .values(received_at=utcnow() - timedelta(days=2, hours=23))
        )
    prune_deliveries(services.db)

    again = hooks.github(labelled, "issues", delivery="d-redelivered")

    assert again.status == 200 and again.body == {"status": "duplicate"}
    assert [task.state for task in tasks(services)] == ["cancelled"]
    assert timedelta(days=3) <= KEEP


def test_delivery_records_past_the_window_are_pruned(services: Services) -> None:
    """Records older than three days go: the table does not grow forever."""
    now = utcnow()
    with services.db.session() as session:
        session.add_all(
            [
                SlackDelivery(key="github:ancient", received_at=now - KEEP - timedelta(hours=1)),
                SlackDelivery(key="github:recent", received_at=now - timedelta(days=2)),
            ]
        )
    assert prune_deliveries(services.db, now=now) == 1
    with services.db.session() as session:
        assert [row.key for row in session.query(SlackDelivery)] == ["github:recent"]
