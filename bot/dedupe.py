"""Process each Slack delivery once, keyed by Slack's own ids.

A delivery is claimed (a row in `slack_deliveries`) before its listener runs. A
re-delivery of a claimed request — Slack's retries, or the same event twice — is
acknowledged and dropped. If the first attempt fails, the error handler releases the
claim, so Slack's retry is processed rather than lost. Old claims are pruned by the
scheduled job in `jobs.deliveries`.

`/agent run`, the request a burst is made of, is claimed inside the transaction that
creates its task instead (`claim_in`): one transaction, one commit, and no claim to
release when it fails, since the claim and the task are written together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bot.services import Services
from jobs.exceptions import AgentbotError, Unavailable
from jobs.models import SlackDelivery

# Where the middleware leaves the key of a delivery its listener claims itself.
CLAIMED_BY_LISTENER = "agentbot_delivery_key"
# `/agent` subcommands whose listener claims the delivery in its own transaction.
CLAIMED_WITH_TASK = frozenset({"run"})

log = logging.getLogger(__name__)


class NotClaimed(Unavailable):
    """The database did not answer the claim, so there is no claim to release.

    Releasing would ask the unanswering database again and keep the user waiting a
    second connection timeout, past Slack's three seconds.
    """


class Duplicate(AgentbotError):
    """The delivery was claimed before: acknowledged and dropped, never released."""


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


def claim_in(session: Session, key: str) -> None:
    """Claim a delivery inside the caller's transaction (which then writes the task).

    Raises:
        Duplicate: It was claimed before; the caller's transaction must be abandoned.
    """
    session.add(SlackDelivery(key=key))
    try:
        session.flush()
    except IntegrityError:
        raise Duplicate() from None


def claimed_with_task(body: dict[str, Any]) -> bool:
    """Whether this delivery is claimed by its listener, with the task it creates."""
    if body.get("command") != "/agent":
        return False
    words = str(body.get("text") or "").split(None, 1)
    return bool(words) and words[0].lower() in CLAIMED_WITH_TASK


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
        context: BoltContext,
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        key = delivery_key(body)
        if key is not None and claimed_with_task(body):
            context[CLAIMED_BY_LISTENER] = key
            return next()
        if key is not None and not claim(services, key):
            log.info("duplicate delivery %s acknowledged and dropped", key)
            return BoltResponse(status=200, body="")
        return next()
