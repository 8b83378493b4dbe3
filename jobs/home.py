"""What a person's Home tab shows, read from the database, and its debounced republish.

The Slack side (`bot.home`) renders these figures; nothing here knows Slack. Every
list and every team figure is limited to the tasks the person may see, by the rule
the commands use (`jobs.tasks.Viewer`): approvers see every task; anyone else sees
their own tasks and those of the channels they are in.

A state change asks for the Home of the people it concerns to be published again
(`request_publish`). Each person has at most one publish waiting: the first change
queues it, and any change before it runs rides along, because the job reads the
database only after it took its mark off. A burst of changes is one publish.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Retry, Worker
from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.orm import Session

from agents.aws.cost_config import CostConfig
from jobs.aws.cost_history import DailyCost
from jobs.aws.snapshots import AwsScan
from jobs.context import current
from jobs.models import Approval, Task
from jobs.queues import DEFAULT, Queues
from jobs.states import TaskState

log = logging.getLogger(__name__)

# One mark per person with a publish queued; it outlives a lost job by little.
PENDING_KEY = "agentbot:home:pending:{user}"
PENDING_SECONDS = 300
# Everyone who ever opened their Home (so "everyone may approve" has names to reach).
VIEWERS_KEY = "agentbot:home:viewers"
# Tasks the approvers' Homes show as waiting for them.
WAITING_KEY = "agentbot:home:waiting"
PUBLISH_TIMEOUT_SECONDS = 60
# views.publish is a Tier 4 method (100+ a minute per workspace): stay under it, and
# leave what is over for the next minute rather than collect 429s.
PUBLISHES_PER_MINUTE = 90
PACE_KEY = "agentbot:home:publishes:{minute}"
# A line for the top of someone's next Home (why a click on it was refused, say).
NOTICE_KEY = "agentbot:home:notice:{user}"
DAYS_SHOWN = 14
WAITING_SHOWN = 10
RUNNING_SHOWN = 8
FAILED_SHOWN = 5
SUCCEEDED_SHOWN = 5
LATEST_SHOWN = 5
RUNNING = (TaskState.QUEUED, TaskState.PLANNING, TaskState.APPROVED, TaskState.EXECUTING)


@dataclass(frozen=True)
class HomeViewer:
    """Who the Home is for, and what they may see.

    Args:
        user: The person's Slack id.
        approver: Whether they are an approver (approvers see every task).
        channels: The channels they are a member of.
        may_self_approve: Whether an approver may decide their own tasks.
    """

    user: str
    approver: bool = False
    channels: frozenset[str] = frozenset()
    may_self_approve: bool = False

    def visible(self) -> ColumnElement[bool]:
        """The SQL condition for the tasks this person may see."""
        if self.approver:
            return true()
        in_channels = Task.channel.in_(sorted(self.channels)) if self.channels else false()
        return or_(Task.requester == self.user, in_channels)


@dataclass(frozen=True)
class TeamFigures:
    """The team's throughput, over the tasks the viewer may see."""

    by_state: dict[TaskState, int]
    succeeded_per_day: list[tuple[date, int]]
    median_to_result_seconds: float | None
    results_measured: int
    agent_cost_week_usd: float
    latest: list[Task] = field(default_factory=list)


@dataclass(frozen=True)
class ScanSummary:
    """The last AWS status scan: when it ended and what it found."""

    finished_at: datetime
    counts: dict[str, int]
    errors: int
    accounts: list[str]
    regions: list[str]


@dataclass(frozen=True)
class CostSummary:
    """Yesterday's cost, the month to date, and the month against its budget."""

    metric: str
    yesterday: date
    yesterday_usd: float | None
    month_to_date_usd: float
    forecast_usd: float | None
    budget_usd: float | None
    budget_state: str | None


@dataclass(frozen=True)
class OpsFigures:
    """The queues, the workers and the AWS side."""

    queue_lengths: dict[str, int]
    workers: int
    aws_configured: bool
    scan: ScanSummary | None = None
    cost: CostSummary | None = None


@dataclass(frozen=True)
class HomeData:
    """Everything one person's Home shows."""

    viewer: HomeViewer
    waiting: list[Task]
    approved_by_you: set[int]
    running: list[Task]
    failed: list[Task]
    succeeded: list[Task]
    team: TeamFigures
    ops: OpsFigures
    now: datetime


# -- reading ----------------------------------------------------------------------------


def waiting_for(session: Session, viewer: HomeViewer) -> tuple[list[Task], set[int]]:
    """Plans this person may decide, oldest first, and those they approved already.

    Only an approver gets any; their own tasks are left out when self-approval is off,
    as the buttons would refuse them.
    """
    if not viewer.approver:
        return [], set()
    statement = (
        select(Task)
        .where(Task.state == TaskState.AWAITING_APPROVAL.value)
        .order_by(Task.id)
        .limit(WAITING_SHOWN)
    )
    if not viewer.may_self_approve:
        statement = statement.where(Task.requester != viewer.user)
    tasks = list(session.execute(statement).scalars())
    approved = set(
        session.execute(
            select(Approval.task_id).where(
                Approval.task_id.in_([t.id for t in tasks]),
                Approval.user_id == viewer.user,
                Approval.decision == "approve",
            )
        ).scalars()
    )
    return tasks, approved


def own_tasks(session: Session, user: str) -> tuple[list[Task], list[Task], list[Task]]:
    """The person's running, failed and succeeded tasks, newest first."""

    def of(states: Collection[TaskState], limit: int) -> list[Task]:
        statement = (
            select(Task)
            .where(Task.requester == user, Task.state.in_([s.value for s in states]))
            .order_by(Task.id.desc())
            .limit(limit)
        )
        return list(session.execute(statement).scalars())

    running = of((*RUNNING, TaskState.AWAITING_APPROVAL), RUNNING_SHOWN)
    return (
        running,
        of((TaskState.FAILED,), FAILED_SHOWN),
        of((TaskState.SUCCEEDED,), SUCCEEDED_SHOWN),
    )


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of `now`'s week."""
    day = now.astimezone(UTC).date()
    return datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def team_figures(session: Session, viewer: HomeViewer, now: datetime) -> TeamFigures:
    """Tasks by state, successes per day for 14 days, the median time to a result, and
    the agent's cost this week, over the tasks the viewer may see."""
    visible = viewer.visible()
    rows = session.execute(select(Task.state, func.count()).where(visible).group_by(Task.state))
    by_state = {TaskState(state): int(count) for state, count in rows}
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=DAYS_SHOWN - 1)
    since = datetime.combine(first, datetime.min.time(), UTC)
    finished = session.execute(
        select(Task.created_at, Task.finished_at).where(
            visible,
            Task.state == TaskState.SUCCEEDED.value,
            Task.finished_at.is_not(None),
            Task.finished_at >= since,
        )
    ).all()
    per_day = dict.fromkeys((first + timedelta(days=n) for n in range(DAYS_SHOWN)), 0)
    durations = []
    for created, finished_at in finished:
        if finished_at is None:
            continue
        ended = _aware(finished_at)
        per_day[ended.date()] = per_day.get(ended.date(), 0) + 1
        durations.append((ended - _aware(created)).total_seconds())
    cost = session.execute(
        select(func.coalesce(func.sum(Task.agent_cost_usd), 0.0)).where(
            visible, Task.created_at >= week_start(now)
        )
    ).scalar_one()
    latest = list(
        session.execute(
            select(Task).where(visible).order_by(Task.id.desc()).limit(LATEST_SHOWN)
        ).scalars()
    )
    return TeamFigures(
        by_state=by_state,
        succeeded_per_day=sorted(per_day.items()),
        median_to_result_seconds=statistics.median(durations) if durations else None,
        results_measured=len(durations),
        agent_cost_week_usd=float(cost),
        latest=latest,
    )


def last_scan(session: Session) -> ScanSummary | None:
    """The AWS status scan that ended last, whatever its scope; None before the first."""
    scan = session.execute(
        select(AwsScan).order_by(AwsScan.finished_at.desc()).limit(1)
    ).scalar_one_or_none()
    if scan is None:
        return None
    scope: dict[str, Any] = scan.scope or {}
    return ScanSummary(
        finished_at=_aware(scan.finished_at),
        counts={str(k): int(v) for k, v in (scan.counts or {}).items()},
        errors=len(scan.errors or []),
        accounts=[str(a) for a in scope.get("accounts") or []],
        regions=[str(r) for r in scope.get("regions") or []],
    )


def cost_summary(session: Session, cost: CostConfig, now: datetime) -> CostSummary | None:
    """Yesterday, the month to date and the budget, from the costs already fetched.

    Nothing is asked of Cost Explorer here (it charges per call): the figures are the
    ones the digest and the reports stored. None when no day of this month is stored.
    """
    today = now.astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    month_start = yesterday.replace(day=1)
    rows = session.execute(
        select(DailyCost.day, func.sum(DailyCost.amount))
        .where(
            DailyCost.metric == cost.metric,
            DailyCost.basis == cost.basis,
            DailyCost.day >= month_start,
            DailyCost.day <= yesterday,
        )
        .group_by(DailyCost.day)
    ).all()
    if not rows:
        return None
    days = {day: float(amount) for day, amount in rows}
    month_to_date = sum(days.values())
    # A straight line through the days so far; the digest's forecast is the careful one.
    elapsed = (yesterday - month_start).days + 1
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    forecast = month_to_date / elapsed * (next_month - month_start).days
    budget = cost.monthly_budget_usd
    state = None
    if budget is not None:
        state = "over" if month_to_date > budget else "at risk" if forecast > budget else "on track"
    return CostSummary(
        metric=cost.metric,
        yesterday=yesterday,
        yesterday_usd=days.get(yesterday),
        month_to_date_usd=month_to_date,
        forecast_usd=forecast,
        budget_usd=budget,
        budget_state=state,
    )


def ops_figures(
    session: Session, queues: Queues, *, cost: CostConfig | None, aws: bool, now: datetime
) -> OpsFigures:
    """Queue depth, workers online and, when AWS is configured, the last scan and costs."""
    return OpsFigures(
        queue_lengths=queues.lengths(),
        workers=int(Worker.count(connection=queues.redis)),
        aws_configured=aws,
        scan=last_scan(session) if aws else None,
        cost=cost_summary(session, cost, now) if aws and cost is not None else None,
    )


def home_data(
    session: Session,
    queues: Queues,
    viewer: HomeViewer,
    *,
    cost: CostConfig | None,
    aws: bool,
    now: datetime | None = None,
) -> HomeData:
    """Everything `viewer`'s Home shows, read in one session."""
    now = now or datetime.now(UTC)
    waiting, approved = waiting_for(session, viewer)
    running, failed, succeeded = own_tasks(session, viewer.user)
    return HomeData(
        viewer=viewer,
        waiting=waiting,
        approved_by_you=approved,
        running=running,
        failed=failed,
        succeeded=succeeded,
        team=team_figures(session, viewer, now),
        ops=ops_figures(session, queues, cost=cost, aws=aws, now=now),
        now=now,
    )


def waiting_shown(redis: Redis, task_id: int, *, waiting: bool) -> bool:
    """Record whether the task now waits for approval; True when approvers' Homes showed
    it waiting until now (so they must be published again without it).

    Kept in Redis, not read from the audit trail: by the time a decision is shown, the
    task may have moved on again (approved, then executing).
    """
    if waiting:
        redis.sadd(WAITING_KEY, task_id)
        return True
    return bool(redis.srem(WAITING_KEY, task_id))


# -- republishing -----------------------------------------------------------------------


def request_publish(redis: Redis, queues: Queues, users: Iterable[str]) -> list[str]:
    """Queue a publish of each person's Home unless one is queued already.

    Returns:
        The people a publish was queued for now (the others had one waiting).
    """
    queued = []
    for user in sorted(set(users)):
        if not redis.set(PENDING_KEY.format(user=user), 1, nx=True, ex=PENDING_SECONDS):
            continue
        _enqueue_publish(queues, user)
        queued.append(user)
    return queued


def tell(redis: Redis, queues: Queues, user: str, notice: str) -> None:
    """Show `notice` at the top of `user`'s Home, in its next publish (queued now)."""
    redis.set(NOTICE_KEY.format(user=user), notice, ex=PENDING_SECONDS)
    request_publish(redis, queues, [user])


def remember_viewer(redis: Redis, user: str) -> None:
    """Note that this person has a Home, so later changes may reach it."""
    redis.sadd(VIEWERS_KEY, user)


def viewers(redis: Redis) -> set[str]:
    """Everyone who opened their Home."""
    return {m.decode() if isinstance(m, bytes) else str(m) for m in redis.smembers(VIEWERS_KEY)}


def _enqueue_publish(queues: Queues, user: str, *, after: float | None = None) -> None:
    options: dict[str, Any] = {
        "job_timeout": PUBLISH_TIMEOUT_SECONDS,
        "retry": Retry(max=2, interval=[5, 30]),
        "result_ttl": 60,
        "description": f"home {user}",
    }
    queue = queues.queue(DEFAULT)
    if after is None:
        queue.enqueue("jobs.home.publish_home", user, **options)
    else:
        queue.enqueue_in(timedelta(seconds=after), "jobs.home.publish_home", user, **options)


def seconds_to_wait(redis: Redis, now: float) -> float | None:
    """Count one publish in this minute; how long to wait when the minute is full."""
    minute = int(now // 60)
    key = PACE_KEY.format(minute=minute)
    with redis.pipeline() as pipeline:
        pipeline.incr(key)
        pipeline.expire(key, 120)
        count = int(pipeline.execute()[0])
    if count <= PUBLISHES_PER_MINUTE:
        return None
    return (minute + 1) * 60 - now + 0.5


def publish_home(user: str) -> None:
    """RQ job: publish one person's Home as the database has it now.

    Past the minute's share of publishes it comes back in the next minute, with the
    person's mark kept, so the changes meanwhile still make one publish.
    """
    ctx = current()
    wait = seconds_to_wait(ctx.redis, time.time())
    if wait is not None:
        ctx.redis.set(PENDING_KEY.format(user=user), 1, ex=PENDING_SECONDS)
        _enqueue_publish(ctx.queues, user, after=wait)
        log.info("Home of %s deferred %.0f s: the minute's publishes are spent", user, wait)
        return
    # Off first: a change committed from here on queues another publish, and one
    # committed before is in what is read below.
    ctx.redis.delete(PENDING_KEY.format(user=user))
    notice = ctx.redis.getdel(NOTICE_KEY.format(user=user))
    text = notice.decode() if isinstance(notice, bytes) else None
    ctx.notifier.publish_home(user, notice=text)
