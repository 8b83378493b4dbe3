"""Forget Slack deliveries old enough that Slack will never send them again.

The web process records each delivery it takes in `slack_deliveries`, so a re-delivery
is dropped. Slack retries a request within minutes, so rows older than `KEEP` serve no
purpose; without pruning the table would grow by one row per command and click forever.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete

from jobs.db import Database
from jobs.models import SlackDelivery, utcnow

log = logging.getLogger(__name__)

# Far longer than Slack's retries (three, within minutes); the same day-long window
# the web process's de-duplication assumes.
KEEP = timedelta(hours=24)


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
    log.info("pruned %s old Slack delivery records", deleted)
    return deleted
