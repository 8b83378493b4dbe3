"""The Slack and terminal sides of `aws cost` and `aws optimize`, and the Create-action button.

In Slack, both reports are acknowledged at once and posted by a worker in the thread
of a short parent message, because Cost Explorer and a savings scan can take longer
than Slack's three seconds. In the terminal (`agentbot aws cost|optimize`) the same
reports are made in the foreground and printed, with the Cost Explorer calls made.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from redis.exceptions import RedisError
from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond
from sqlalchemy.exc import SQLAlchemyError

from agents.aws.config import AwsConfig
from agents.aws.cost_report import Period, render_text
from agents.aws.optimize import render_text as render_savings_text
from bot import blocks_cost
from bot.cli import first_line
from bot.listeners.fields import button_value, channel_of, row_id, user_of
from bot.services import Services, build_services
from bot.settings import ConfigError, Settings
from jobs.aws_actions import create_action
from jobs.cost import (
    CostNotConfigured,
    enqueue_cost_report,
    enqueue_savings,
    make_report,
    parse_period,
    savings_listing,
)
from jobs.exceptions import BadRequest, NotAllowed, Unavailable

OPTIMIZE_USAGE = "Usage: `/agent aws optimize`."


def _check(services: Services, user: str) -> None:
    if not services.access.may_request(user):
        raise NotAllowed("You are not on the list of people who can ask for AWS reports.")
    try:
        services.settings.aws_session()
    except ConfigError as error:
        raise Unavailable(f"Agentbot's AWS settings need fixing: {error}") from None


def _parent(services: Services, channel: str, what: str, user: str) -> str:
    response = services.slack.chat_postMessage(
        channel=channel, text=blocks_cost.render_request_ack(what, user)
    )
    return str(response["ts"])


def aws_cost(services: Services, ack: Ack, words: tuple[str, ...], user: str, channel: str) -> None:
    """`/agent aws cost [yesterday|week|month]`: acknowledge, then the report replaces its note."""
    period = parse_period(words)
    _check(services, user)
    ack(
        text=f":moneybag: Making the AWS cost report ({period}); it will appear here, "
        "with its details in a thread.",
        response_type="ephemeral",
    )
    thread_ts = _parent(services, channel, f"cost report ({period})", user)
    enqueue_cost_report(
        services.queues, channel=channel, thread_ts=thread_ts, period=period, user=user
    )


def aws_optimize(
    services: Services, ack: Ack, words: tuple[str, ...], user: str, channel: str
) -> None:
    """`/agent aws optimize`: acknowledge, then post recommendations in a thread."""
    if words:
        raise BadRequest(OPTIMIZE_USAGE)
    _check(services, user)
    ack(
        text=":mag: Looking for savings across the configured accounts and regions; the "
        "recommendations will appear in a thread here.",
        response_type="ephemeral",
    )
    thread_ts = _parent(services, channel, "savings recommendations", user)
    enqueue_savings(services.queues, channel=channel, thread_ts=thread_ts, user=user)


def register_actions(app: App, services: Services) -> None:
    """Register the "Create action" button of savings recommendations."""

    @app.action(blocks_cost.CREATE_ACTION)
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


# -- the terminal ---------------------------------------------------------------------------


def _terminal_services(settings: Settings) -> Services:
    config = settings.config
    if config.aws is None:
        # As `agentbot aws status` does: the default credentials' own account.
        settings = settings.with_config(config.model_copy(update={"aws": AwsConfig()}))
    return build_services(settings)


def print_cost(
    settings: Settings, period: Period, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Make the cost report and print it with the Cost Explorer calls it made.

    Returns:
        The exit status: 0 after a report, 2 when AWS is not usable.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    services = _terminal_services(settings)
    try:
        report = make_report(
            services.db,
            services.redis,
            services.config,
            settings.aws_session,
            period,
            kind="cli",
        )
    except CostNotConfigured as error:
        print(f"agentbot: {error}", file=err)
        return 2
    except RedisError as error:
        # The report takes a Redis lock so that two reports never pay twice for a day.
        print(f"agentbot: cannot reach Redis (REDIS_URL): {first_line(error)}", file=err)
        return 2
    except SQLAlchemyError as error:
        print(f"agentbot: cannot use the database (DATABASE_URL): {first_line(error)}", file=err)
        return 2
    finally:
        services.db.dispose()
    out.write(render_text(report))
    out.write(f"Cost Explorer calls made for this report: {report.ce_calls}\n")
    return 0


def print_savings(
    settings: Settings, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Scan for savings and print the recommendations.

    Returns:
        The exit status: 0 after a report, 2 when AWS is not usable.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    services = _terminal_services(settings)
    try:
        listing = savings_listing(services.db, services.config, settings.aws_session)
    except CostNotConfigured as error:
        print(f"agentbot: {error}", file=err)
        return 2
    finally:
        services.db.dispose()
    out.write(render_savings_text(listing.report))
    return 0
