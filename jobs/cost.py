"""AWS cost reports and the daily digest: stored history, Cost Explorer calls, posting.

**Storage.** Daily costs (day x linked account x service, per metric and record-type
basis) live in `cost_daily`; `cost_days` says which days were fetched and whether
Cost Explorer still marked them `Estimated`. A report fetches only days that are
missing, or estimated and older than `provisional_refresh_hours`, so a second report
on the same day makes no Cost Explorer call for days already complete. One refresh
at a time runs per metric (a Redis lock), so two reports asked at once never pay
twice for the same days. Each report's calls are kept in `cost_reports` and added to
the Redis counter `agentbot:metrics:ce_calls` that `/metrics` exposes.

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

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from redis import Redis
from redis.exceptions import LockError, RedisError
from rq import get_current_job
from rq.cron import CronScheduler
from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from agents.aws.config import AwsAccount, AwsConfig
from agents.aws.cost import (
    CostExplorerError,
    CostFetch,
    cost_explorer_client,
    days_to_fetch,
    fetch_daily_costs,
    fetch_ranges,
)
from agents.aws.cost_config import WEEKDAYS, ActionKind, CostConfig
from agents.aws.cost_report import (
    BudgetState,
    CostReport,
    Period,
    Window,
    as_of_day,
    build_report,
    history_window,
)
from agents.aws.optimize import Recommendation, find_savings
from agents.aws.sessions import AccountSessions, AssumeRoleError, client_config
from jobs.config import AgentbotConfig
from jobs.context import current
from jobs.db import Database
from jobs.exceptions import BadRequest
from jobs.models import Base, utcnow
from jobs.notify import Notifier, PostedReport, SavingsListing
from jobs.queues import DEFAULT, Queues

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

CE_CALLS_KEY = "agentbot:metrics:ce_calls"
DIGEST_CHECK_SECONDS = 300
DIGEST_JOB_TIMEOUT = 600
REPORT_JOB_TIMEOUT = 600
REFRESH_LOCK = "agentbot:cost-refresh:"
REFRESH_LOCK_SECONDS = 300
AWS_NOT_CONFIGURED = (
    "AWS is not configured for this Agentbot yet: add accounts and regions to the config file."
)


class CostNotConfigured(BadRequest):
    """Costs cannot be read: no `[aws]` section, or `[cost]` names an unknown account."""


# -- tables ------------------------------------------------------------------------------


class CostDay(Base):
    """One UTC day fetched from Cost Explorer, for one metric and record-type basis."""

    __tablename__ = "cost_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    basis: Mapped[str] = mapped_column(String(32), primary_key=True)
    estimated: Mapped[bool] = mapped_column(Boolean)
    fetched_at: Mapped[datetime]


class DailyCost(Base):
    """One service's cost in one linked account on one day."""

    __tablename__ = "cost_daily"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    account_id: Mapped[str] = mapped_column(String(32))
    service: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(32))
    basis: Mapped[str] = mapped_column(String(32))
    amount: Mapped[float] = mapped_column(Float)
    estimated: Mapped[bool] = mapped_column(Boolean)
    fetched_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("day", "account_id", "service", "metric", "basis"),
        Index("ix_cost_daily_metric_basis_day", "metric", "basis", "day"),
    )


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


class AwsRecommendation(Base):
    """A savings recommendation as shown in Slack; a "Create action" button names its id."""

    __tablename__ = "aws_recommendations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finding: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- history -----------------------------------------------------------------------------


def known_days(session: Session, metric: str, basis: str, window: Window) -> dict[date, CostDay]:
    """Stored days of the window, for one metric and basis."""
    rows = session.execute(
        select(CostDay).where(
            CostDay.metric == metric,
            CostDay.basis == basis,
            CostDay.day >= window.start,
            CostDay.day <= window.end,
        )
    ).scalars()
    return {row.day: row for row in rows}


def save_fetch(session: Session, fetch: CostFetch, metric: str, basis: str, now: datetime) -> None:
    """Replace the stored costs of every day the fetch covered."""
    days = sorted(fetch.days)
    if not days:
        return
    session.execute(
        delete(DailyCost).where(
            DailyCost.metric == metric, DailyCost.basis == basis, DailyCost.day.in_(days)
        )
    )
    session.execute(
        delete(CostDay).where(
            CostDay.metric == metric, CostDay.basis == basis, CostDay.day.in_(days)
        )
    )
    if fetch.lines:
        session.execute(
            insert(DailyCost),
            [
                {
                    "day": line.day,
                    "account_id": line.account_id,
                    "service": line.service,
                    "metric": metric,
                    "basis": basis,
                    "amount": line.amount,
                    "estimated": fetch.days.get(line.day, False),
                    "fetched_at": now,
                }
                for line in fetch.lines
            ],
        )
    session.execute(
        insert(CostDay),
        [
            {
                "day": day,
                "metric": metric,
                "basis": basis,
                "estimated": estimated,
                "fetched_at": now,
            }
            for day, estimated in fetch.days.items()
        ],
    )


@dataclass(frozen=True)
class History:
    """Stored costs of a window."""

    lines: list[DailyCost]
    known: set[date]
    estimated: set[date]


def load_history(session: Session, metric: str, basis: str, window: Window) -> History:
    """The stored costs, known days and estimated days of a window."""
    days = known_days(session, metric, basis, window)
    lines = list(
        session.execute(
            select(DailyCost).where(
                DailyCost.metric == metric,
                DailyCost.basis == basis,
                DailyCost.day >= window.start,
                DailyCost.day <= window.end,
            )
        ).scalars()
    )
    return History(
        lines=lines,
        known=set(days),
        estimated={day for day, row in days.items() if row.estimated},
    )


@dataclass(frozen=True)
class Refresh:
    """What filling the history cost."""

    calls: int
    fetched: list[date]
    error: str | None = None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def refresh_history(
    db: Database,
    redis: Redis,
    config: CostConfig,
    window: Window,
    ce_factory: Callable[[], Any],
    *,
    now: datetime,
) -> Refresh:
    """Fetch the window's missing and stale estimated days from Cost Explorer.

    Args:
        db: Where costs are stored.
        redis: Holds the refresh lock and the call counter.
        config: Metric, basis and how long an estimate stays fresh.
        window: The days the report needs.
        ce_factory: Makes the Cost Explorer client, only if a call is needed.
        now: The moment estimates are aged against.

    Returns:
        The calls made (also on failure), the days fetched, and an error sentence
        when Cost Explorer could not be read (stored data is then used as it is).
    """
    lock = redis.lock(
        REFRESH_LOCK + f"{config.metric}:{config.basis}", timeout=REFRESH_LOCK_SECONDS
    )
    # Waiting is better than paying twice; after the wait, the days are usually stored.
    held = lock.acquire(blocking_timeout=REFRESH_LOCK_SECONDS)
    calls = 0
    fetched: list[date] = []
    error: str | None = None
    try:
        with db.session() as session:
            known = known_days(session, config.metric, config.basis, window)
        fresh_for = timedelta(hours=config.provisional_refresh_hours)
        stale = [
            day
            for day, row in known.items()
            if row.estimated and now - _aware(row.fetched_at) >= fresh_for
        ]
        needed = days_to_fetch(window.days, {d: r.estimated for d, r in known.items()}, stale)
        if needed:
            try:
                ce = ce_factory()
                for start, end in fetch_ranges(needed):
                    try:
                        fetch = fetch_daily_costs(
                            ce,
                            start,
                            end,
                            metric=config.metric,
                            include_credits_refunds=config.include_credits_refunds,
                        )
                    except CostExplorerError as exc:
                        calls += exc.calls
                        raise
                    calls += fetch.calls
                    with db.session() as session:
                        save_fetch(session, fetch, config.metric, config.basis, now)
                    fetched.extend(sorted(fetch.days))
            except (CostExplorerError, AssumeRoleError) as exc:
                error = str(exc)
                log.warning("cost explorer: %s", error)
    finally:
        if held:
            with contextlib.suppress(LockError):
                lock.release()
        if calls:
            try:
                redis.incrby(CE_CALLS_KEY, calls)
            except RedisError:  # a metric must never fail a report
                log.warning("could not count Cost Explorer calls", exc_info=True)
    return Refresh(calls=calls, fetched=fetched, error=error)


# -- reports -----------------------------------------------------------------------------


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


# -- savings -----------------------------------------------------------------------------


def store_recommendations(db: Database, recommendations: Sequence[Recommendation]) -> list[int]:
    """Keep recommendations so that their "Create action" buttons can name them by id."""
    if not recommendations:
        return []
    with db.session() as session:
        rows = [
            AwsRecommendation(
                finding=rec.finding.value,
                account=rec.account,
                region=rec.region,
                resource_id=rec.resource_id,
                data=rec.model_dump(mode="json"),
            )
            for rec in recommendations
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def load_recommendation(session: Session, recommendation_id: int) -> Recommendation | None:
    """A stored recommendation, or None."""
    row = session.get(AwsRecommendation, recommendation_id)
    return None if row is None else Recommendation.model_validate(row.data)


def savings_listing(
    db: Database,
    config: AgentbotConfig,
    session_factory: Callable[[], boto3.Session] | None,
    *,
    now: datetime | None = None,
) -> SavingsListing:
    """Scan for savings, store the recommendations, and say which may become actions.

    Raises:
        CostNotConfigured: AWS is not configured.
    """
    aws = config.aws
    if aws is None or session_factory is None:
        raise CostNotConfigured(AWS_NOT_CONFIGURED)
    report = find_savings(session_factory(), aws, config.cost.optimize, now=now)
    ids = store_recommendations(db, report.recommendations)
    return SavingsListing(report=report, ids=ids, actions=actionable(config))


def actionable(config: AgentbotConfig) -> tuple[ActionKind, ...]:
    """The kinds of action a "Create action" button may be offered for (none when off)."""
    actions = config.cost.actions
    return tuple(actions.allowed) if actions.enabled else ()


# -- the digest --------------------------------------------------------------------------


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


# -- on demand -----------------------------------------------------------------------------

REPORT_FAILED = (
    "The cost report could not be made; the worker log has the details. Try again in a minute."
)


def enqueue_cost_report(
    queues: Queues, *, channel: str, thread_ts: str, period: Period, user: str
) -> None:
    """Queue `/agent aws cost` for the thread of its acknowledgement."""
    queues.queue(DEFAULT).enqueue(
        "jobs.cost.cost_report_job",
        channel,
        thread_ts,
        period,
        user,
        job_timeout=REPORT_JOB_TIMEOUT,
        result_ttl=60,
        description=f"aws cost {period} for {user}",
    )


def enqueue_savings(queues: Queues, *, channel: str, thread_ts: str, user: str) -> None:
    """Queue `/agent aws optimize` for the thread of its acknowledgement."""
    queues.queue(DEFAULT).enqueue(
        "jobs.cost.savings_job",
        channel,
        thread_ts,
        user,
        job_timeout=REPORT_JOB_TIMEOUT,
        result_ttl=60,
        description=f"aws optimize for {user}",
    )


def _bind(user: str) -> None:
    job = get_current_job()
    structlog.contextvars.bind_contextvars(user=user, job_id=job.id if job else None)


def cost_report_job(channel: str, thread_ts: str, period: Period, user: str) -> None:
    """RQ job: post a cost report, with its chart, in a thread."""
    _bind(user)
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


def savings_job(channel: str, thread_ts: str, user: str) -> None:
    """RQ job: post savings recommendations, with "Create action" buttons, in a thread."""
    _bind(user)
    ctx = current()
    try:
        listing = savings_listing(ctx.db, ctx.config, ctx.aws_session)
        ctx.notifier.savings_report(channel, listing, thread_ts=thread_ts)
        ctx.notifier.replace_text(channel, thread_ts, savings_done(listing, user))
    except CostNotConfigured as exc:
        ctx.notifier.replace_text(channel, thread_ts, f":warning: {exc}")
    except Exception:
        failed = REPORT_FAILED.replace("cost report", "savings scan")
        ctx.notifier.replace_text(channel, thread_ts, f":warning: {failed}")
        raise


def savings_done(listing: SavingsListing, user: str) -> str:
    """What the "savings recommendations … follow in the thread" note becomes once done."""
    report = listing.report
    count = len(report.recommendations)
    found = (
        f"{count} recommendation{'' if count == 1 else 's'}, about "
        f"${report.total_savings:,.2f}/month"
        if count
        else "nothing to save"
    )
    return f":mag: AWS savings for <@{user}>: {found}. The details are in the thread."


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
