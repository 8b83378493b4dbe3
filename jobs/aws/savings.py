"""Savings: find them, keep the recommendations for their buttons, and `/agent aws optimize`.

A recommendation is stored so that its "Create action" button can name it by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from agents.aws.cost_config import ActionKind
from agents.aws.optimize import Recommendation, find_savings
from jobs.aws.cost_reports import (
    AWS_NOT_CONFIGURED,
    REPORT_FAILED,
    REPORT_JOB_TIMEOUT,
    CostNotConfigured,
    bind_requester,
)
from jobs.config import AgentbotConfig
from jobs.context import current
from jobs.db import Database
from jobs.models import Base, utcnow
from jobs.notify import SavingsListing
from jobs.queues import DEFAULT, Queues

if TYPE_CHECKING:
    import boto3


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


def enqueue_savings(queues: Queues, *, channel: str, thread_ts: str, user: str) -> None:
    """Queue `/agent aws optimize` for the thread of its acknowledgement."""
    queues.queue(DEFAULT).enqueue(
        "jobs.aws.savings.savings_job",
        channel,
        thread_ts,
        user,
        job_timeout=REPORT_JOB_TIMEOUT,
        result_ttl=60,
        description=f"aws optimize for {user}",
    )


def savings_job(channel: str, thread_ts: str, user: str) -> None:
    """RQ job: post savings recommendations, with "Create action" buttons, in a thread."""
    bind_requester(user)
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
