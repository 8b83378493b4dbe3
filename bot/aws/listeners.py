"""The wing's listeners: `/agent aws status|cost|optimize` and the Create-action button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond

from bot.aws import cost, cost_blocks, status
from bot.commands import Command
from bot.listeners.fields import button_value, channel_of, row_id, user_of
from bot.services import Services
from jobs.aws.actions import create_action
from jobs.exceptions import BadRequest

AWS_NOT_CONFIGURED = (
    "AWS is not configured for this Agentbot yet: add accounts and regions to the config file."
)
AWS_USAGE = (
    "`/agent aws status [account] [region] [service]` · `/agent aws cost [yesterday|week|month]`"
    " · `/agent aws optimize`"
)


def register(app: App, services: Services) -> None:
    """Register the "Create action" button of savings recommendations."""

    @app.action(cost_blocks.CREATE_ACTION)
    def create(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        recommendation_id = row_id(button_value(body))
        if recommendation_id is None:
            raise BadRequest("That button no longer names a recommendation.")
        user = user_of(body)
        task = create_action(
            services.db,
            services.queues,
            services.config,
            services.access,
            recommendation_id,
            user=user,
            channel=channel_of(body) or user,
        )
        ack()
        respond(
            text=f":inbox_tray: {task.key} proposes this change; its plan will appear in this "
            "channel for approval.",
            response_type="ephemeral",
            replace_original=False,
        )


def perform(services: Services, ack: Ack, cmd: Command, user: str, channel: str) -> None:
    """`/agent aws <report> …`: hand the words after the report's name to its handler."""
    if services.config.aws is None:
        ack(text=AWS_NOT_CONFIGURED, response_type="ephemeral")
        return
    pending = services.aws_pending()
    if pending is not None:
        # Nothing is queued, so nothing is read (or stored) from an estate not ready.
        ack(text=pending, response_type="ephemeral")
        return
    report, *words = cmd.args or ("",)
    handler = AWS_HANDLERS.get(report.lower())
    if handler is None:
        raise BadRequest(f"Which AWS report? {AWS_USAGE}")
    handler(services, ack, tuple(words), user, channel)


def _aws_status(
    services: Services, ack: Ack, words: tuple[str, ...], user: str, channel: str
) -> None:
    text = status.request_status(services, words, user=user, channel=channel)
    ack(text=text, response_type="ephemeral")


AwsHandler = Callable[[Services, Ack, tuple[str, ...], str, str], None]
# `/agent aws <report> …`: one handler per report, given the words after its name.
AWS_HANDLERS: dict[str, AwsHandler] = {
    "status": _aws_status,
    "cost": cost.aws_cost,
    "optimize": cost.aws_optimize,
}
