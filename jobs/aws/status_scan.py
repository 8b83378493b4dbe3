"""`/agent aws status` on the worker: answer from a recent scan or scan now, then report.

A scan of the same scope (accounts x regions x services) that finished less than
`aws.cache_seconds` ago answers at once, from its database snapshot, so every web
and worker process shares it. Otherwise the job posts a stand-in message, scans
(one scan per scope at a time, across all workers), stores the snapshot, and edits
the stand-in into the report, with what changed since the scope's previous scan.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from redis import Redis
from redis.exceptions import LockError
from rq import get_current_job

from agents.aws.config import AwsConfig
from agents.aws.report import diff
from agents.aws.scanner import (
    ProgressCallback,
    ScanScope,
    ScopeError,
    resolve_scope,
    scan,
)
from jobs.aws.snapshots import (
    AwsScan,
    finished_at,
    load_records,
    load_report,
    recent_scans,
    scan_before,
    scope_key,
    store_scan,
)
from jobs.context import current
from jobs.db import Database
from jobs.notify import AwsStatus, AwsStatusReporter, ChatMessage
from jobs.queues import DEFAULT, Queues

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

JOB_TIMEOUT_SECONDS = 900
# Slack allows about one edit per second per channel; a scan's progress needs far fewer.
PROGRESS_INTERVAL_SECONDS = 3.0
LOCK_PREFIX = "agentbot:aws-scan:"
# How long a second ask waits for a scan of the same scope already running elsewhere;
# after that (the other worker may have died holding the lock) it scans by itself.
LOCK_WAIT_SECONDS = 120
FAILED = (
    "AWS status failed before the report was ready; the worker log has the details. "
    "Try again in a minute."
)


def _now() -> datetime:
    return datetime.now(UTC)


def _status_of(
    db: Database, scan_row: AwsScan, *, cached: bool, as_of: datetime, user: str | None
) -> AwsStatus:
    with db.session() as session:
        report = load_report(session, scan_row)
        previous = scan_before(session, scan_row)
        before = load_records(session, previous) if previous is not None else None
    return AwsStatus(
        report=report,
        scan_id=scan_row.id,
        cached=cached,
        as_of=as_of,
        previous_at=finished_at(previous) if previous is not None else None,
        changes=None
        if before is None
        else diff(before, report.records, current_errors=report.errors),
        requested_by=user,
    )


def stored_status(
    db: Database, config: AwsConfig, scope: ScanScope, *, user: str | None = None
) -> AwsStatus | None:
    """The scope's latest stored scan, if it is younger than `config.cache_seconds`.

    Args:
        db: Where snapshots are stored.
        config: The AWS configuration (for `cache_seconds`).
        scope: The scope asked for.
        user: Who asked (shown on the card).

    Returns:
        The stored answer, or None when there is none recent enough.
    """
    if config.cache_seconds <= 0:
        return None
    with db.session() as session:
        latest = recent_scans(session, scope, limit=1)
    now = _now()
    if not latest or now - finished_at(latest[0]) >= timedelta(seconds=config.cache_seconds):
        return None
    return _status_of(db, latest[0], cached=True, as_of=now, user=user)


def scan_and_store(
    db: Database,
    redis: Redis,
    config: AwsConfig,
    base_session: boto3.Session,
    scope: ScanScope,
    *,
    user: str | None = None,
    progress: ProgressCallback | None = None,
) -> AwsStatus:
    """Scan a scope, store the snapshot, and compare it with the scope's previous one.

    Only one scan of a scope runs at a time across all workers: a second ask waits
    for the first and is then answered from its snapshot.

    Args:
        db: Where snapshots are stored.
        redis: Holds the per-scope lock.
        config: The AWS configuration.
        base_session: The bot's own AWS session.
        scope: What to scan.
        user: Who asked (shown on the card).
        progress: Called as `progress(done, total)` while scanning.

    Returns:
        The new (or just stored by another worker) answer.
    """
    lock = redis.lock(LOCK_PREFIX + scope_key(scope), timeout=JOB_TIMEOUT_SECONDS)
    # If the lock cannot be had in time, scanning twice is better than no answer.
    held = lock.acquire(blocking_timeout=LOCK_WAIT_SECONDS)
    try:
        if held:
            ready = stored_status(db, config, scope, user=user)
            if ready is not None:
                return ready
        report = scan(
            config,
            base_session,
            accounts=[a.name for a in scope.accounts],
            regions=list(scope.regions),
            services=list(scope.services),
            progress=progress,
        )
        with db.session() as session:
            stored = store_scan(session, scope, report)
    finally:
        if held:
            with contextlib.suppress(LockError):
                lock.release()
    return AwsStatus(
        report=report,
        scan_id=stored.scan_id,
        cached=False,
        as_of=_now(),
        previous_at=stored.previous_at,
        changes=stored.changes,
        requested_by=user,
    )


class _ThrottledProgress:
    """Passes scan progress on to the reporter, at most every few seconds."""

    def __init__(self, reporter: AwsStatusReporter, message: ChatMessage, scope: ScanScope) -> None:
        self.reporter = reporter
        self.message = message
        self.scope = scope
        self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        # The final count is never shown: the report replaces the message right after.
        if done < total and now - self.last >= PROGRESS_INTERVAL_SECONDS:
            self.last = now
            self.reporter.progress(self.message, self.scope, done, total)


def enqueue_status(
    queues: Queues,
    *,
    channel: str,
    user: str,
    thread_ts: str | None = None,
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    services: Sequence[str] | None = None,
) -> None:
    """Queue an `aws status` report for a channel.

    Args:
        queues: The RQ queues.
        channel: Where the report goes.
        user: Who asked.
        thread_ts: A thread to report in, if any.
        accounts: Account names or ids; None means every configured account.
        regions: Regions; None means every configured region.
        services: Service names; None means every configured service.
    """
    queues.queue(DEFAULT).enqueue(
        "jobs.aws.status_scan.aws_status_job",
        channel,
        user,
        thread_ts,
        list(accounts) if accounts is not None else None,
        list(regions) if regions is not None else None,
        list(services) if services is not None else None,
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=60,
        description=f"aws status for {user}",
    )


def aws_status_job(
    channel: str,
    user: str,
    thread_ts: str | None,
    accounts: list[str] | None,
    regions: list[str] | None,
    services: list[str] | None,
) -> None:
    """RQ job: report AWS status in a channel, from a recent snapshot or a new scan.

    Args:
        channel: Where the report goes.
        user: Who asked.
        thread_ts: A thread to report in, if any.
        accounts: Account names or ids; None means every configured account.
        regions: Regions; None means every configured region.
        services: Service names; None means every configured service.
    """
    job = get_current_job()
    # Every line logged while the job runs names who asked and the job.
    with structlog.contextvars.bound_contextvars(user=user, job_id=job.id if job else None):
        _report_status(channel, user, thread_ts, accounts, regions, services)


def _report_status(
    channel: str,
    user: str,
    thread_ts: str | None,
    accounts: list[str] | None,
    regions: list[str] | None,
    services: list[str] | None,
) -> None:
    ctx = current()
    config, reporter, make_session = ctx.config.aws, ctx.aws_reporter, ctx.aws_session
    if config is None or reporter is None or make_session is None:
        log.warning("aws status asked for, but AWS is not configured in this worker")
        return
    started = time.monotonic()
    message: ChatMessage | None = None
    try:
        base_session = make_session()
        scope = resolve_scope(
            config, base_session, accounts=accounts, regions=regions, services=services
        )
        status = stored_status(ctx.db, config, scope, user=user)
        if status is None:
            message = reporter.scanning(channel, thread_ts, scope)
            status = scan_and_store(
                ctx.db,
                ctx.redis,
                config,
                base_session,
                scope,
                user=user,
                progress=_ThrottledProgress(reporter, message, scope),
            )
        reporter.report(channel, thread_ts, status, replace=message)
    except ScopeError as error:
        # The configuration changed between the ask and now.
        reporter.failed(channel, thread_ts, f"AWS status cannot run: {error}.", replace=message)
        return
    except Exception:
        reporter.failed(channel, thread_ts, FAILED, replace=message)
        raise
    log.info(
        "aws status: %d resources, %d failed units, %s in %.1f s",
        len(status.report.records),
        len(status.report.errors),
        "from a stored scan" if status.cached else "scanned",
        time.monotonic() - started,
    )
