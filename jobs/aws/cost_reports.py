"""Cost reports: fill the history as needed, compute the report, and `/agent aws cost`'s job.

Each report's Cost Explorer calls are kept in `cost_reports`, beside what it covered
and who asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import structlog
from redis import Redis
from rq import get_current_job
from sqlalchemy import Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agents.aws.config import AwsAccount, AwsConfig
from agents.aws.cost import cost_explorer_client
from agents.aws.cost_config import CostConfig
from agents.aws.cost_report import CostReport, Period, as_of_day, build_report, history_window
from agents.aws.sessions import AccountSessions, client_config
from jobs.aws.cost_history import load_history, refresh_history
from jobs.config import AgentbotConfig
from jobs.context import current
from jobs.db import Database
from jobs.exceptions import BadRequest
from jobs.models import Base, utcnow
from jobs.queues import DEFAULT, Queues

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

REPORT_JOB_TIMEOUT = 600
AWS_NOT_CONFIGURED = (
    "AWS is not configured for this Agentbot yet: add accounts and regions to the config file."
)
REPORT_FAILED = (
    "The cost report could not be made; the worker log has the details. Try again in a minute."
)


class CostNotConfigured(BadRequest):
    """Costs cannot be read: no `[aws]` section, or `[cost]` names an unknown account."""


class CostReportRun(Base):
    """One report made: what it covered and how many Cost Explorer calls it cost."""

    __tablename__ = "cost_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    as_of: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(32))
    basis: Mapped[str] = mapped_column(String(32))
    ce_calls: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def payer_account(aws: AwsConfig, cost: CostConfig) -> AwsAccount:
    """The account whose credentials call Cost Explorer.

    Raises:
        CostNotConfigured: `cost.payer_account` names no configured account.
    """
    if cost.payer_account is None:
        return aws.accounts[0]
    for account in aws.accounts:
        if cost.payer_account in (account.name, account.effective_account_id):
            return account
    raise CostNotConfigured(
        f"cost.payer_account {cost.payer_account!r} is not one of the [aws] accounts."
    )


def account_names(aws: AwsConfig) -> dict[str, str]:
    """Linked account id -> configured account name, for the accounts whose id is known."""
    return {a.effective_account_id: a.name for a in aws.accounts if a.effective_account_id}


def make_report(
    db: Database,
    redis: Redis,
    config: AgentbotConfig,
    session_factory: Callable[[], boto3.Session] | None,
    period: Period,
    *,
    kind: str,
    requested_by: str | None = None,
    now: datetime | None = None,
    as_of: date | None = None,
) -> CostReport:
    """Fill the history as needed and compute a cost report.

    Args:
        db: Where costs are stored.
        redis: Refresh lock and call counter.
        config: The whole configuration (`aws` and `cost`).
        session_factory: Makes the bot's base AWS session.
        period: yesterday, week or month.
        kind: Who asked, for the record: digest, slack or cli.
        requested_by: The Slack user who asked, if any.
        now: The current moment; estimates are aged against it.
        as_of: The last day reported (UTC); default: the last UTC day ended by `now`.

    Returns:
        The report, with the number of Cost Explorer calls it made.

    Raises:
        CostNotConfigured: AWS is not configured.
    """
    aws = config.aws
    if aws is None or session_factory is None:
        raise CostNotConfigured(AWS_NOT_CONFIGURED)
    cost = config.cost
    now = now or datetime.now(UTC)
    as_of = as_of or as_of_day(now.astimezone(UTC).date())
    window = history_window(period, as_of, cost)
    payer = payer_account(aws, cost)

    def ce_factory() -> Any:
        base = session_factory()
        return cost_explorer_client(
            base, AccountSessions(base, aws), payer, client_config(aws, base)
        )

    refresh = refresh_history(db, redis, cost, window, ce_factory, now=now)
    with db.session() as session:
        history = load_history(session, cost.metric, cost.basis, window)
        run = CostReportRun(
            kind=kind,
            period=period,
            as_of=as_of,
            metric=cost.metric,
            basis=cost.basis,
            ce_calls=refresh.calls,
            requested_by=requested_by,
            error=refresh.error,
        )
        session.add(run)
        session.flush()
        report_id = run.id
    report = build_report(
        history.lines,
        known_days=history.known,
        estimated_days=history.estimated,
        as_of=as_of,
        period=period,
        config=cost,
        account_names=account_names(aws),
        ce_calls=refresh.calls,
    )
    report.report_id = report_id
    if refresh.error:
        report.notes.append(
            f"Cost Explorer could not be read ({refresh.error}); the figures come from "
            "the days stored before."
        )
    log.info(
        "cost report %s (%s, as of %s): %d Cost Explorer calls, %d days fetched",
        report_id,
        period,
        as_of,
        refresh.calls,
        len(refresh.fetched),
    )
    return report


def chart_for(report: CostReport) -> bytes:
    """The report's chart as PNG bytes."""
    # matplotlib takes seconds to import; only jobs that draw pay for it.
    from agents.aws.cost_chart import render_chart

    return render_chart(
        report.chart,
        title=f"AWS cost, last {len(report.chart.days)} days to {report.as_of:%Y-%m-%d} (UTC)",
        metric=report.metric,
    )


def enqueue_cost_report(
    queues: Queues, *, channel: str, thread_ts: str, period: Period, user: str
) -> None:
    """Queue `/agent aws cost` for the thread of its acknowledgement."""
    queues.queue(DEFAULT).enqueue(
        "jobs.aws.cost_reports.cost_report_job",
        channel,
        thread_ts,
        period,
        user,
        job_timeout=REPORT_JOB_TIMEOUT,
        result_ttl=60,
        description=f"aws cost {period} for {user}",
    )


def bind_requester(user: str) -> None:
    """Name the requester and the RQ job on every log line of this job."""
    job = get_current_job()
    structlog.contextvars.bind_contextvars(user=user, job_id=job.id if job else None)


def cost_report_job(channel: str, thread_ts: str, period: Period, user: str) -> None:
    """RQ job: post a cost report, with its chart, in a thread."""
    bind_requester(user)
    ctx = current()
    try:
        report = make_report(
            ctx.db, ctx.redis, ctx.config, ctx.aws_session, period, kind="slack", requested_by=user
        )
        ctx.notifier.cost_report(
            channel,
            report,
            title=f"AWS cost report · {period}",
            replace_ts=thread_ts,
            chart=chart_for(report),
        )
    except CostNotConfigured as exc:
        ctx.notifier.replace_text(channel, thread_ts, f":warning: {exc}")
    except Exception:
        ctx.notifier.replace_text(channel, thread_ts, f":warning: {REPORT_FAILED}")
        raise
