"""`agentbot cron`: what the scheduler runs, how often, and what the prune job removes."""

from __future__ import annotations

from datetime import timedelta

from rq.cron import CronScheduler
from sqlalchemy import select

from bot.services import Services
from jobs.deliveries import KEEP, prune_deliveries, prune_deliveries_job
from jobs.models import SlackDelivery, utcnow
from jobs.schedule import RECONCILE_EVERY_SECONDS, build_scheduler
from tests.slackclient import SlackUser


def registered(services: Services) -> dict[str, int | None]:
    scheduler: CronScheduler = build_scheduler(services.redis, services.config)
    return {job.func_name: job.interval for job in scheduler.get_jobs()}


def test_scheduler_runs_the_reconciler_every_thirty_seconds(services: Services) -> None:
    """The reconciler is registered at the interval the lost-worker bound is computed from."""
    jobs = registered(services)
    assert jobs["jobs.reconcile.reconcile_job"] == RECONCILE_EVERY_SECONDS == 30


def test_scheduler_prunes_deliveries_hourly(services: Services) -> None:
    """Old Slack delivery records are pruned once an hour."""
    assert registered(services)["jobs.deliveries.prune_deliveries_job"] == 3600


def keys(services: Services) -> set[str]:
    with services.db.session() as session:
        return set(session.execute(select(SlackDelivery.key)).scalars())


def test_prune_drops_deliveries_older_than_the_window_and_keeps_recent_ones(
    services: Services,
) -> None:
    """Records past the window go; those inside it, even just inside, stay."""
    now = utcnow()
    with services.db.session() as session:
        session.add_all(
            [
                SlackDelivery(key="command:ancient", received_at=now - timedelta(days=30)),
                SlackDelivery(
                    key="command:just-old", received_at=now - KEEP - timedelta(minutes=1)
                ),
                SlackDelivery(
                    key="command:just-new", received_at=now - KEEP + timedelta(minutes=10)
                ),
                SlackDelivery(key="command:fresh", received_at=now - timedelta(minutes=10)),
            ]
        )
    assert prune_deliveries(services.db, now=now) == 2
    assert keys(services) == {"command:just-new", "command:fresh"}
    assert prune_deliveries(services.db, now=now) == 0


def test_pruned_delivery_job_runs_in_the_worker_context_and_dedupe_still_holds(
    user: SlackUser,
) -> None:
    """The scheduled job prunes through the worker context; a recent command stays deduplicated."""
    body = user.command_body("run fix the discount calculation", trigger_id="trig-kept")
    assert "T-1 queued" in user.reply_text(user.deliver(body))
    with user.services.db.session() as session:
        session.add(SlackDelivery(key="command:old", received_at=utcnow() - 2 * KEEP))
    assert prune_deliveries_job() == 1
    assert keys(user.services) == {"command:trig-kept"}
    # Slack retrying the recent command is still dropped: no second task.
    user.deliver(body, headers={"X-Slack-Retry-Num": "1"})
    assert user.services.queues.lengths()["plan"] == 1
