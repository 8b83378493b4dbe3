"""`agentbot cron`: periodic jobs on RQ's cron scheduler."""

from __future__ import annotations

from redis import Redis
from rq.cron import CronScheduler

from jobs.config import AgentbotConfig
from jobs.cost import register_digest
from jobs.queues import DEFAULT
from jobs.reconcile import reconcile_job

RECONCILE_EVERY_SECONDS = 60


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
    register_digest(scheduler, config)
    return scheduler


def run_cron(redis: Redis, config: AgentbotConfig) -> None:
    """Run the scheduler in the foreground."""
    build_scheduler(redis, config).start()  # type: ignore[no-untyped-call]
