"""`[limits]`: no one person, and no alert storm, floods the queue.

Each task is a paid agent run and a card in a channel. In the creating transaction,
the unfinished tasks of its requester and in all, and the tasks its webhook source
started in the last hour, are counted against the configured limits: first before the
task is written, so a flood is turned away without writing anything; on PostgreSQL
again after it is written (not counting it), under a transaction-scoped advisory lock
held to the commit, so a burst of concurrent requests cannot all pass on the same
count. Taking the lock last keeps it for one count and the commit, not for every
insert of the task: every request that creates a task waits its turn for that lock.

Refusals are counted in Redis (`REFUSALS_KEY`, a hash of limit name -> count) for
`/metrics`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import Session

from jobs.config import LimitsConfig
from jobs.exceptions import LimitReached
from jobs.models import Task, utcnow
from jobs.states import TERMINAL

log = logging.getLogger(__name__)

REFUSALS_KEY = "agentbot:metrics:limit_refusals"
# Namespaces this module's advisory lock (the first key of the two-key form).
LOCK_NAMESPACE = 6_202
WEBHOOK_SOURCES = {"github": "GitHub", "sentry": "Sentry", "jira": "Jira"}
UNFINISHED = Task.state.notin_([state.value for state in TERMINAL])


def _count(session: Session, *conditions: ColumnElement[bool]) -> int:
    return int(session.execute(select(func.count(Task.id)).where(*conditions)).scalar_one())


def check_limits(
    session: Session,
    limits: LimitsConfig,
    *,
    requester: str,
    source: str,
    locking: bool,
    excluding: int | None = None,
) -> None:
    """Refuse a new task that would pass a limit.

    Args:
        session: The transaction that creates the task.
        limits: The configured limits.
        requester: Who asks (a Slack user, or a webhook's stand-in).
        source: Where the request came from (`slack`, `github`, …).
        locking: Whether to take the advisory lock (PostgreSQL), held to the commit.
        excluding: The new task's id, when it is already written in this transaction.

    Raises:
        LimitReached: With a short sentence naming the limit.
    """
    if locking:
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, 0)"), {"namespace": LOCK_NAMESPACE}
        )
    others = [] if excluding is None else [Task.id != excluding]
    # Both counts in one statement: one round trip fewer while the lock is held.
    mine, total = session.execute(
        select(func.count(Task.id).filter(Task.requester == requester), func.count(Task.id)).where(
            UNFINISHED, *others
        )
    ).one()
    if mine >= limits.open_tasks_per_requester:
        raise LimitReached(
            "open_tasks_per_requester",
            f"You already have {mine} unfinished tasks, the most one requester may have "
            "(`limits.open_tasks_per_requester`). Cancel one or wait for one to finish.",
        )
    if total >= limits.open_tasks_total:
        raise LimitReached(
            "open_tasks_total",
            f"Agentbot has {total} unfinished tasks, its limit (`limits.open_tasks_total`). "
            "Try again when some have finished.",
        )
    if source in WEBHOOK_SOURCES:
        since = utcnow() - timedelta(hours=1)
        started = _count(session, Task.source == source, Task.created_at >= since, *others)
        if started >= limits.webhook_tasks_per_hour:
            raise LimitReached(
                "webhook_tasks_per_hour",
                f"{WEBHOOK_SOURCES[source]} webhooks started {started} tasks in the last hour, "
                "the limit (`limits.webhook_tasks_per_hour`). Deliver again later.",
            )


def count_refusal(redis: Redis, limit: str) -> None:
    """Add one to the refusals of `limit` (a lost count never blocks the refusal)."""
    try:
        redis.hincrby(REFUSALS_KEY, limit, 1)
    except RedisError:
        log.warning("could not count a refusal by %s", limit)
