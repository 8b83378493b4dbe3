"""Forget deliveries old enough that nobody will send them again.

The web process records each delivery it takes in `slack_deliveries`, so a re-delivery
is dropped: Slack's commands and clicks, and the GitHub, Sentry and Jira webhooks'
delivery ids too. Rows older than `KEEP` serve no purpose; without pruning the table
would grow by one row per command, click and webhook forever.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete

from jobs.db import Database
from jobs.models import SlackDelivery, utcnow

log = logging.getLogger(__name__)

# Slack retries within minutes, but GitHub lets anyone with access to a webhook redeliver
# one by hand for three days; a redelivery after its record was pruned would start a
# second task, so the records outlive that window.
KEEP = timedelta(hours=72)


def prune_deliveries(db: Database, keep: timedelta = KEEP, now: datetime | None = None) -> int:
    """Delete delivery records older than `keep`.

    Args:
        db: The database holding `slack_deliveries`.
        keep: How long a record is kept.
        now: The moment ages are judged from (the current time by default).

    Returns:
        How many records were deleted.
    """
    cutoff = (now or utcnow()) - keep
    with db.session() as session:
        result = session.execute(delete(SlackDelivery).where(SlackDelivery.received_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


def prune_deliveries_job() -> int:
    """RQ entry point for the scheduled prune."""
    from jobs.context import current

    deleted = prune_deliveries(current().db)
    log.info("pruned %s old delivery records", deleted)
    return deleted
