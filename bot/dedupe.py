"""Process each Slack delivery once, keyed by Slack's own ids.

A delivery is claimed (a row in `slack_deliveries`) before its listener runs. A
re-delivery of a claimed request — Slack's retries, or the same event twice — is
acknowledged and dropped. If the first attempt fails, the error handler releases the
claim, so Slack's retry is processed rather than lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_bolt import App, BoltResponse
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.services import Services
from jobs.exceptions import Unavailable
from jobs.models import SlackDelivery, utcnow

log = logging.getLogger(__name__)

KEEP = timedelta(hours=24)


def delivery_key(body: dict[str, Any]) -> str | None:
    """Slack's id for this delivery, or None when it has none worth keeping."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        return f"action:{body.get('trigger_id')}:{actions[0].get('action_ts')}"
    if kind == "view_submission" and body.get("trigger_id"):
        return f"view:{body['trigger_id']}"
    return None


def claim(services: Services, key: str) -> bool:
    """Record the delivery; False when it was already recorded.

    Raises:
        Unavailable: The database did not answer.
    """
    try:
        with services.db.session() as session:
            session.add(SlackDelivery(key=key))
    except IntegrityError:
        return False
    except OperationalError as exc:
        raise Unavailable() from exc
    return True


def release(services: Services, body: dict[str, Any]) -> None:
    """Forget a delivery whose processing failed, so a retry is processed."""
    key = delivery_key(body)
    if key is None:
        return
    try:
        with services.db.session() as session:
            session.execute(delete(SlackDelivery).where(SlackDelivery.key == key))
    except OperationalError:
        log.warning("could not release delivery %s", key)


def prune(services: Services) -> int:
    """Drop delivery records older than a day; returns how many."""
    with services.db.session() as session:
        result = session.execute(
            delete(SlackDelivery).where(SlackDelivery.received_at < utcnow() - KEEP)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


def register(app: App, services: Services) -> None:
    """Install the de-duplicating middleware."""

    @app.middleware
    def once_per_delivery(
        body: dict[str, Any],
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        key = delivery_key(body)
        if key is not None and not claim(services, key):
            log.info("duplicate delivery %s acknowledged and dropped", key)
            return BoltResponse(status=200, body="")
        return next()
