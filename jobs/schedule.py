"""`agentbot cron`: periodic jobs on RQ's cron scheduler."""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from rq.cron import CronScheduler

from jobs.aws.digest import register_digest
from jobs.config import AgentbotConfig
from jobs.deliveries import prune_deliveries_job
from jobs.queues import DEFAULT
from jobs.reconcile import STALE_AFTER, reconcile_job

# How soon a task whose worker was killed is failed, at worst: its last heartbeat may
# have been written just before the kill, so its job looks dead STALE_AFTER (60 s)
# later; the next pass starts at most RECONCILE_EVERY_SECONDS (30 s) after that. The
# pass and the Slack update it queues then run on the default queue within seconds:
# about 90 s in all, inside the two minutes a user should wait to be told.
RECONCILE_EVERY_SECONDS = 30
LOST_WORKER_NOTICED_WITHIN = STALE_AFTER + timedelta(seconds=RECONCILE_EVERY_SECONDS)
PRUNE_DELIVERIES_EVERY_SECONDS = 3600


def build_scheduler(redis: Redis, config: AgentbotConfig) -> CronScheduler:
    """The scheduler with every periodic job registered."""
    scheduler = CronScheduler(connection=redis)
    scheduler.register(
        reconcile_job,
        DEFAULT,
        interval=RECONCILE_EVERY_SECONDS,
        job_timeout=120,
        result_ttl=60,
    )
    scheduler.register(
        prune_deliveries_job,
        DEFAULT,
        interval=PRUNE_DELIVERIES_EVERY_SECONDS,
        job_timeout=300,
        result_ttl=3600,
    )
    register_digest(scheduler, config)
    return scheduler


def run_cron(redis: Redis, config: AgentbotConfig) -> None:
    """Run the scheduler in the foreground."""
    build_scheduler(redis, config).start()  # type: ignore[no-untyped-call]
