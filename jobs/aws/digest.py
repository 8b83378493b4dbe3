"""The daily cost digest: which day it covers, whether it posts, and posting it once.

**Which day the digest covers.** Cost Explorer's days are UTC days, so the digest
reports one whole UTC day: the most recent one that had ended at the configured
posting time of that local date (`digest_day`). Posting at 09:00 in Paris (UTC+1)
covers the UTC day before; posting at 08:00 in Tokyo (UTC+9, 23:00 UTC the evening
before) covers the UTC day before that, because the later one has not ended yet. The
covered day depends only on the local date and the configured time, never on when
the check happens to run, and the digest's title names it.

**The digest, exactly once per day and channel.** `agentbot cron` runs
`post_digest` every few minutes (RQ's cron reads cron strings in the scheduler
host's own time zone, so the configured zone is handled here instead). The job
posts when the configured local time has passed and `cost_digests` has no row for
(covered day, channel). The decision and the post share one database transaction:
the (date, channel) row is inserted first - a unique key - and committed only after
Slack accepted the message. A second scheduler or a racing retry blocks on that key
until the first commits, then finds it taken and does nothing; if posting fails the
insert rolls back, so the next run (or RQ's retry) posts instead. The one window
left is Slack accepting the message and the commit then failing (the database lost
at that very moment): the digest would be posted again on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from redis import Redis
from rq.cron import CronScheduler
from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from agents.aws.cost_config import WEEKDAYS, CostConfig
from agents.aws.cost_report import BudgetState, CostReport, as_of_day
from jobs.aws.cost_reports import chart_for, make_report
from jobs.aws.savings import savings_listing
from jobs.config import AgentbotConfig
from jobs.context import current
from jobs.db import Database
from jobs.models import Base, utcnow
from jobs.notify import Notifier, PostedReport
from jobs.queues import DEFAULT

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

DIGEST_CHECK_SECONDS = 300
DIGEST_JOB_TIMEOUT = 600


class CostDigest(Base):
    """The digest of one UTC day in one channel: posted or deliberately skipped."""

    __tablename__ = "cost_digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("cost_reports.id", ondelete="SET NULL"), default=None
    )
    message_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    chart_file_id: Mapped[str | None] = mapped_column(String(32), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("day", "channel", name="uq_cost_digests_day_channel"),)


def should_post(report: CostReport, config: CostConfig) -> tuple[bool, str]:
    """Whether the digest's notify rule lets it post, and why.

    Anomalies and a budget not on track always post, whatever the rule.
    """
    digest = config.digest
    if report.anomalies:
        return True, "anomalies found"
    if report.budget is not None and report.budget.state != BudgetState.ON_TRACK:
        return True, f"budget {report.budget.state.value}"
    if digest.notify == "above_threshold":
        threshold = digest.threshold_usd or 0.0
        if report.total.amount > threshold:
            return True, f"total above ${threshold:,.2f}"
        return False, f"total ${report.total.amount:,.2f} not above ${threshold:,.2f}"
    if digest.notify == "on_increase":
        delta = report.total.delta
        if delta is not None and delta > 0:
            return True, "cost rose"
        return False, "cost did not rise"
    return True, "always"


@dataclass(frozen=True)
class DigestOutcome:
    """What one digest check did."""

    status: str
    day: date | None = None
    posted: PostedReport | None = None
    report: CostReport | None = None

    def __str__(self) -> str:
        return self.status if self.day is None else f"{self.status} for {self.day.isoformat()}"


def _claim_insert(db: Database, values: dict[str, Any]) -> Any:
    # ON CONFLICT DO NOTHING makes a second claimant wait for the first and then lose.
    dialect = postgresql if db.is_postgres else sqlite
    return (
        dialect.insert(CostDigest)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["day", "channel"])
        .returning(CostDigest.id)
    )


def digest_day(config: CostConfig, local_date: date) -> date:
    """The UTC day the digest of a local date covers (see the module notes).

    It is the last UTC day that had ended at the configured posting time of that
    date: the UTC date of that moment, minus one.
    """
    digest = config.digest
    scheduled = datetime.combine(local_date, digest.time, tzinfo=digest.zone)
    return as_of_day(scheduled.astimezone(UTC).date())


def digest_due(config: CostConfig, now: datetime) -> date | None:
    """The UTC day whose digest is due at `now`, or None before the configured local time."""
    digest = config.digest
    local = now.astimezone(digest.zone)
    if local.time().replace(tzinfo=None) < digest.time:
        return None
    return digest_day(config, local.date())


def run_digest(
    db: Database,
    redis: Redis,
    notifier: Notifier,
    config: AgentbotConfig,
    session_factory: Callable[[], boto3.Session] | None,
    *,
    now: datetime | None = None,
) -> DigestOutcome:
    """Post today's digest if it is due and not posted yet (see the module notes).

    Args:
        db: Costs and the digests posted.
        redis: Refresh lock and call counter.
        notifier: Posts the digest to Slack.
        config: The whole configuration.
        session_factory: Makes the bot's base AWS session.
        now: The current moment.

    Returns:
        What happened: not configured, not yet, already posted, skipped, or posted.
    """
    now = now or datetime.now(UTC)
    cost = config.cost
    channel = cost.digest.channel
    if channel is None:
        return DigestOutcome("no digest channel configured")
    if config.aws is None or session_factory is None:
        return DigestOutcome("AWS is not configured")
    day = digest_due(cost, now)
    if day is None:
        return DigestOutcome("not yet")
    with db.session() as session:
        done = session.execute(
            select(CostDigest.status).where(CostDigest.day == day, CostDigest.channel == channel)
        ).scalar_one_or_none()
    if done is not None:
        return DigestOutcome(f"already {done}", day)

    report = make_report(
        db, redis, config, session_factory, "yesterday", kind="digest", now=now, as_of=day
    )
    post, reason = should_post(report, cost)
    if not post:
        with db.session() as session:
            session.execute(
                _claim_insert(
                    db,
                    {
                        "day": day,
                        "channel": channel,
                        "status": "skipped",
                        "report_id": report.report_id,
                        "reason": reason,
                        "created_at": utcnow(),
                    },
                )
            )
        return DigestOutcome("skipped", day, report=report)
    savings = None
    weekly = cost.digest.weekly_savings_day
    if weekly is not None and WEEKDAYS[now.astimezone(cost.digest.zone).weekday()] == weekly:
        try:
            savings = savings_listing(db, config, session_factory, now=now)
        except Exception:  # the digest goes out even if the savings scan cannot run
            log.warning("weekly savings section failed", exc_info=True)
    chart = chart_for(report)
    with db.session() as session:
        claimed = session.execute(
            _claim_insert(
                db,
                {
                    "day": day,
                    "channel": channel,
                    "status": "posting",
                    "report_id": report.report_id,
                    "reason": reason,
                    "created_at": utcnow(),
                },
            )
        ).scalar_one_or_none()
        if claimed is None:
            return DigestOutcome("already posted", day, report=report)
        posted = notifier.cost_report(
            channel,
            report,
            title=f"AWS cost digest · {day:%a %d %b %Y} (UTC)",
            chart=chart,
            savings=savings,
        )
        session.execute(
            update(CostDigest)
            .where(CostDigest.id == claimed)
            .values(status="posted", message_ts=posted.ts, chart_file_id=posted.file_id)
        )
    return DigestOutcome("posted", day, posted=posted, report=report)


def post_digest(now: datetime | None = None) -> str:
    """RQ cron job: post the daily cost digest when it is due (see `run_digest`).

    Args:
        now: The moment to decide for; the clock when None (as the cron runs it).
    """
    ctx = current()
    outcome = run_digest(ctx.db, ctx.redis, ctx.notifier, ctx.config, ctx.aws_session, now=now)
    if outcome.posted is not None or outcome.status == "skipped":
        log.info("cost digest %s", outcome)
    return str(outcome)


def register_digest(scheduler: CronScheduler, config: AgentbotConfig) -> None:
    """Run the digest check every few minutes when a digest channel is configured."""
    if config.cost.digest.channel is None:
        return
    scheduler.register(
        post_digest,
        DEFAULT,
        interval=DIGEST_CHECK_SECONDS,
        job_timeout=DIGEST_JOB_TIMEOUT,
        result_ttl=3600,
    )
