"""Process each Slack delivery once, keyed by Slack's own ids.

A delivery is claimed (a row in `slack_deliveries`) before its listener runs. A
re-delivery of a claimed request — Slack's retries, or the same event twice — is
acknowledged and dropped. If the first attempt fails, the error handler releases the
claim, so Slack's retry is processed rather than lost. Old claims are pruned by the
scheduled job in `jobs.deliveries`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.services import Services
from jobs.exceptions import Unavailable
from jobs.models import SlackDelivery

log = logging.getLogger(__name__)


class NotClaimed(Unavailable):
    """The database did not answer the claim, so there is no claim to release.

    Releasing would ask the unanswering database again and keep the user waiting a
    second connection timeout, past Slack's three seconds.
    """


def _text(value: Any) -> str | None:
    # Slack's ids are non-empty strings; anything else cannot key a delivery.
    return value if isinstance(value, str) and value else None


def delivery_key(body: Any) -> str | None:
    """Slack's id for this delivery, or None when it has none worth keeping.

    A body without a usable id (missing, or of the wrong type) is processed without a
    claim rather than refused here: its listener answers it as it answers any junk.
    """
    if not isinstance(body, dict):
        return None
    event_id = _text(body.get("event_id"))
    if event_id:
        return f"event:{event_id}"
    trigger_id = _text(body.get("trigger_id"))
    if body.get("command") and trigger_id:
        return f"command:{trigger_id}"
    kind = body.get("type")
    if kind == "block_actions" and trigger_id:
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else None
        action_ts = _text(first.get("action_ts")) if isinstance(first, dict) else None
        return f"action:{trigger_id}:{action_ts}" if action_ts else None
    if kind == "view_submission" and trigger_id:
        return f"view:{trigger_id}"
    return None


def claim(services: Services, key: str) -> bool:
    """Record the delivery; False when it was already recorded.

    Raises:
        NotClaimed: The database did not answer.
    """
    try:
        with services.db.session() as session:
            session.add(SlackDelivery(key=key))
    except IntegrityError:
        return False
    except OperationalError as exc:
        raise NotClaimed() from exc
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
