"""The Slack and terminal sides of `aws cost` and `aws optimize`.

In Slack, both reports are acknowledged at once and posted by a worker in the thread
of a short parent message, because Cost Explorer and a savings scan can take longer
than Slack's three seconds. In the terminal (`agentbot aws cost|optimize`) the same
reports are made in the foreground and printed, with the Cost Explorer calls made.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from redis.exceptions import RedisError
from slack_bolt import Ack
from sqlalchemy.exc import SQLAlchemyError

from agents.aws.config import AwsConfig
from agents.aws.cost_report import Period, render_text
from agents.aws.optimize import render_text as render_savings_text
from bot.aws import cost_blocks
from bot.services import Services, build_services
from bot.settings import ConfigError, Settings
from jobs.aws.cost_reports import CostNotConfigured, enqueue_cost_report, make_report
from jobs.aws.savings import enqueue_savings, savings_listing
from jobs.exceptions import BadRequest, NotAllowed, Unavailable, first_line

OPTIMIZE_USAGE = "Usage: `/agent aws optimize`."
_PERIODS: dict[str, Period] = {"yesterday": "yesterday", "week": "week", "month": "month"}


def parse_period(words: Iterable[str]) -> Period:
    """The period of `/agent aws cost [yesterday|week|month]` (default yesterday).

    Raises:
        BadRequest: Anything else was typed.
    """
    given = [w.lower() for w in words]
    if not given:
        return "yesterday"
    if len(given) == 1 and given[0] in _PERIODS:
        return _PERIODS[given[0]]
    raise BadRequest("Usage: `/agent aws cost [yesterday|week|month]`.")


def _check(services: Services, user: str) -> None:
    if not services.access.may_request(user):
        raise NotAllowed("You are not on the list of people who can ask for AWS reports.")
    try:
        services.settings.aws_session()
    except ConfigError as error:
        raise Unavailable(f"Agentbot's AWS settings need fixing: {error}") from None


def _parent(services: Services, channel: str, what: str, user: str) -> str:
    response = services.slack.chat_postMessage(
        channel=channel, text=cost_blocks.render_request_ack(what, user)
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
