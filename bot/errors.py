"""The one error handler: domain errors become short ephemeral messages."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError
from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.context.respond import Respond
from sqlalchemy.exc import OperationalError

from bot import dedupe
from bot.dedupe import delivery_key
from bot.frames import frame_problem
from bot.home.listener import from_home, tell_on_home
from bot.listeners.events import reply_to_mention
from bot.services import Services
from jobs.exceptions import UNAVAILABLE, AgentbotError

log = logging.getLogger(__name__)

GENERIC = "Something went wrong on Agentbot's side; it has been logged. Please try again."
# Set on a request's context once Bolt's own checks (the signature over HTTP; the
# app-level token in Socket Mode) have passed: the first middleware of ours runs only
# after them.
VERIFIED = "agentbot_verified"


def mark_verified(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
    """Record that this request passed verification (the first middleware of the app)."""
    context[VERIFIED] = True
    return next()


def user_message(error: Exception) -> str:
    """What the user reads for an error: never a stack trace."""
    if isinstance(error, AgentbotError):
        return str(error)
    if isinstance(error, OperationalError | RedisError | ConnectionError):
        return UNAVAILABLE
    return GENERIC


def register(app: App, services: Services) -> None:
    """Install the app-wide error handler."""

    @app.error
    def handle_error(
        error: Exception,
        body: dict[str, Any],
        context: BoltContext,
        response: BoltResponse | None,
        respond: Respond | None,
    ) -> BoltResponse | None:
        if not context.get(VERIFIED):
            # Failed before verification passed (a header the verifier chokes on): the
            # body is anyone's, so nothing it names is answered, released or called.
            log.warning("refused an unverified Slack request: %s", type(error).__name__)
            return BoltResponse(status=401, body={"error": "invalid request"})
        if isinstance(error, dedupe.Duplicate):
            log.info("duplicate delivery %s acknowledged and dropped", delivery_key(body))
            return BoltResponse(status=200, body="")
        if not isinstance(error, AgentbotError):
            # The web app refuses misshapen bodies before Bolt sees them; Socket Mode
            # does not, so they can still arrive here.
            problem = frame_problem(body)
            if problem is None:
                log.error("listener failed: %s", error, exc_info=error)
            else:
                # Not Slack's payload (Slack never breaks its own shapes): not our bug.
                log.warning("refused a misshapen Slack payload: %s", problem)
        # A listener that claims its delivery with its task leaves nothing to release.
        if not isinstance(error, dedupe.NotClaimed) and dedupe.CLAIMED_BY_LISTENER not in context:
            dedupe.release(services, body)
        message = user_message(error)
        if body.get("type") == "view_submission":
            return BoltResponse(
                status=200,
                headers={"content-type": "application/json"},
                body=json.dumps({"response_action": "errors", "errors": {"reason": message}}),
            )
        if body.get("command") and response is not None:
            # Not acknowledged yet: the message travels in the acknowledgement itself.
            return BoltResponse(
                status=200,
                headers={"content-type": "application/json"},
                body=json.dumps({"response_type": "ephemeral", "text": message}),
            )
        if body.get("type") == "event_callback":
            _reply_to_event(services, body, message)
            # A failure before the acknowledgement (the claim, say) would otherwise be
            # Bolt's 500, and each of Slack's retries would queue another answer, or
            # run the command the user was just told to try again.
            return BoltResponse(status=200, body="") if response is not None else None
        if respond is not None and body.get("response_url"):
            try:
                respond(text=message, response_type="ephemeral", replace_original=False)
            except Exception:
                log.warning("could not tell the user about an error", exc_info=True)
        elif from_home(body):
            try:
                tell_on_home(services, body, f":warning: {message}")
            except Exception:
                log.warning("could not tell the user about an error", exc_info=True)
        # Slack shows nothing for a button's acknowledgement; the message went by
        # response_url. A 200 keeps Slack from showing its own error too.
        return BoltResponse(status=200, body="") if response is not None else None


def _reply_to_event(services: Services, body: dict[str, Any], message: str) -> None:
    """Tell the author of a mention that could not be carried out, in its thread."""
    event = body.get("event") or {}
    if event.get("type") != "app_mention" or not all(
        event.get(key) for key in ("channel", "ts", "user")
    ):
        return
    try:
        reply_to_mention(services, event, message)
    except Exception:
        log.warning("could not answer a mention about an error", exc_info=True)
