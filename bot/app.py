"""Builds the Bolt app and registers each kind of listener."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot import dedupe, errors
from bot.aws import listeners as aws_listeners
from bot.home import listener as home
from bot.listeners import actions, commands, events, run_questions, views
from bot.logging import ContextCopyingExecutor, slack_log_context
from bot.services import Services


def build_app(services: Services) -> App:
    """A Bolt app whose every Web API call goes to SLACK_API_URL.

    Start-up does not call Slack (no `auth.test`), so the bot starts, and reports
    ready, even while Slack is unreachable.
    """
    settings = services.settings
    app = App(
        client=services.slack,
        signing_secret=settings.slack_signing_secret.get_secret_value() or None,
        token_verification_enabled=False,
        request_verification_enabled=bool(settings.slack_signing_secret.get_secret_value()),
        logger=logging.getLogger("agentbot.slack"),
        listener_executor=ContextCopyingExecutor(max_workers=10),
        # Listeners acknowledge after their work (a transaction and an enqueue, well
        # inside Slack's three seconds), so they run on the request's own thread and
        # the answer leaves the moment they return. Otherwise Bolt hands each one to
        # the pool and polls for its ack every 10 ms, which rounds every answer up to
        # the next tick and, under a burst, queues listeners behind the pool's ten.
        process_before_response=True,
    )
    # First: whatever runs after it passed Bolt's verification, which the error
    # handler asks before it acts on anything in the body.
    app.use(errors.mark_verified)
    # Next, so every line about a request (dedupe, errors, listeners) names its user.
    app.use(slack_log_context)
    dedupe.register(app, services)
    errors.register(app, services)
    commands.register(app, services)
    actions.register(app, services)
    aws_listeners.register(app, services)
    run_questions.register(app, services)
    views.register(app, services)
    events.register(app, services)
    home.register(app, services)
    return app
