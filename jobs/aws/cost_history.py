"""Cost history: the days fetched from Cost Explorer, stored, and refreshed under a lock.

Daily costs (day x linked account x service, per metric and record-type basis) live
in `cost_daily`; `cost_days` says which days were fetched and whether Cost Explorer
still marked them `Estimated`. A report fetches only days that are missing, or
estimated and older than `provisional_refresh_hours`, so a second report on the same
day makes no Cost Explorer call for days already complete. One refresh at a time runs
per metric (a Redis lock), so two reports asked at once never pay twice for the same
days. Every call made is added to the Redis counter `agentbot:metrics:ce_calls` that
`/metrics` exposes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import (
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    String,
    UniqueConstraint,
    delete,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from agents.aws.cost import (
    CostExplorerError,
    CostFetch,
    days_to_fetch,
    fetch_daily_costs,
    fetch_ranges,
)
from agents.aws.cost_config import CostConfig
from agents.aws.cost_report import Window
from agents.aws.sessions import AssumeRoleError
from jobs.db import Database
from jobs.models import Base

log = logging.getLogger(__name__)

CE_CALLS_KEY = "agentbot:metrics:ce_calls"
REFRESH_LOCK = "agentbot:cost-refresh:"
REFRESH_LOCK_SECONDS = 300


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
