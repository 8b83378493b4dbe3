"""The daily digest: posted once per day and channel, at the configured local time."""

from __future__ import annotations

import struct
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from rq.cron import CronScheduler
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from agents.aws.cost_config import DigestConfig
from bot.services import Services
from jobs.context import current
from jobs.cost import CostDigest, DigestOutcome, post_digest, run_digest
from jobs.notify import Notifier, PostedReport
from jobs.schedule import build_scheduler
from sandbox.fakeslack import FakeSlack, Message
from tests.cost.conftest import DIGEST_CHANNEL, history, queue_ce_results, reconfigure
from tests.slackclient import texts

AS_OF = date(2025, 3, 14)
# 09:05 in Paris on Saturday 15 March 2025 (UTC+1): just after the configured 09:00.
DUE = datetime(2025, 3, 15, 8, 5, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"


def digest(
    services: Services, now: datetime = DUE, notifier: Notifier | None = None
) -> DigestOutcome:
    """One run of the digest check, as `agentbot cron` triggers it."""
    return run_digest(
        services.db,
        services.redis,
        notifier or current().notifier,
        services.config,
        services.settings.aws_session,
        now=now,
    )


def digests(slack: FakeSlack) -> list[Message]:
    """Digest messages in the digest channel."""
    return [m for m in slack.channel_messages(DIGEST_CHANNEL) if "AWS cost digest" in m.text]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data.startswith(PNG)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def costs(aws_endpoint: str) -> None:
    """Cost Explorer knows Feb 1 to Mar 14 (the last day still estimated)."""
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(AS_OF, 42)})


def test_digest_posts_once_at_the_local_time_with_its_chart(
    services: Services, slack: FakeSlack, costs: None
) -> None:
    """Not before 09:00 Paris time; then once, with the figures and a PNG chart."""
    assert digest(services, DUE - timedelta(minutes=10)).status == "not yet"
    assert digests(slack) == []

    posted = digest(services)
    again = digest(services, DUE + timedelta(hours=3))

    assert posted.status == "posted" and posted.day == date(2025, 3, 15)
    assert again.status == "already posted"
    [message] = digests(slack)
    body = texts(message)
    assert "AWS cost digest · Sat 15 Mar 2025" in body
    assert "Yesterday (2025-03-14): $448.00" in body
    assert "+$250.00 (+126.3%) vs the day before" in body
    assert "+$250.00 (+126.3%) (was $198.00)" in body  # the same weekday last week
    assert "$2,962.00 · +$259.00 (+9.6%) vs same point last month" in body
    assert "Forecast for March" in body and "$6,862.29" in body
    assert "at risk" in body and "Budget $6,000.00" in body
    assert "AWS Lambda — *$250.00* (:arrow_up_small: +$240.00" in body
    assert "AWS Lambda*: $250.00, *+$240.00* vs a usual $10.00" in body  # the anomaly
    assert "Provisional: Mar 14" in body
    assert "UnblendedCost · credits and refunds excluded" in body
    assert "1 Cost Explorer request for this report" in body

    [chart] = slack.thread(DIGEST_CHANNEL, message.ts)
    [file] = chart.files
    stored = slack.files[file["id"]]
    assert stored["name"] == "aws-cost-2025-03-14.png"
    assert png_size(stored["data"]) == (1000, 450)

    with services.db.session() as session:
        row = session.execute(select(CostDigest)).scalar_one()
    assert (row.status, row.message_ts, row.chart_file_id) == ("posted", message.ts, file["id"])


def test_racing_schedulers_post_one_digest(
    services: Services, slack: FakeSlack, costs: None
) -> None:
    """Two checks at the same moment: one posts, the other waits on the key and stands down."""
    digest(services, DUE - timedelta(hours=1))  # fills the history; "not yet"
    real = current().notifier
    start = threading.Barrier(2)
    outcomes: list[DigestOutcome] = []

    class SlowSlack:
        """Slack takes half a second, so the second check decides while the first posts."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def cost_report(self, *args: Any, **kwargs: Any) -> PostedReport:
            time.sleep(0.5)
            return real.cost_report(*args, **kwargs)

    def run() -> None:
        start.wait()
        outcomes.append(digest(services, notifier=SlowSlack()))  # type: ignore[arg-type]

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(o.status for o in outcomes) == ["already posted", "posted"]
    # The loser got as far as the key (it had made its report), not just a lookup.
    assert all(o.report is not None for o in outcomes)
    assert len(digests(slack)) == 1


def test_failed_post_is_posted_by_the_next_run(
    services: Services, slack: FakeSlack, costs: None
) -> None:
    """Slack failing keeps the day open: the retry posts it, once."""
    slack.fail_next("chat.postMessage", status=400)  # Slack answers fatal_error
    with pytest.raises(SlackApiError):
        digest(services)
    assert digests(slack) == []

    assert digest(services, DUE + timedelta(minutes=5)).status == "posted"
    assert digest(services, DUE + timedelta(minutes=10)).status == "already posted"
    assert len(digests(slack)) == 1


def test_quiet_days_are_skipped_when_only_increases_notify(
    services: Services, slack: FakeSlack, aws_endpoint: str
) -> None:
    """With notify = on_increase, a flat day posts nothing, and is not re-decided."""
    reconfigure(
        services,
        digest={"channel": DIGEST_CHANNEL, "timezone": "Europe/Paris", "notify": "on_increase"},
        monthly_budget_usd=None,
    )
    flat = [day for day in history(AS_OF, 42)]
    for day in flat:
        # Every day like a usual Thursday: no rise, no anomaly.
        day["Groups"] = history(AS_OF - timedelta(days=1), 1)[0]["Groups"]
        day["Estimated"] = False
    queue_ce_results(aws_endpoint, {"ResultsByTime": flat})

    assert digest(services).status == "skipped"
    assert digest(services, DUE + timedelta(hours=1)).status == "already skipped"
    assert digests(slack) == []


def test_weekly_savings_section_on_the_configured_day(
    services: Services, slack: FakeSlack, costs: None
) -> None:
    """On the savings weekday, the digest lists recommendations (here: an unused IP)."""
    ec2 = services.settings.aws_session().client("ec2")
    ec2.allocate_address(Domain="vpc")
    reconfigure(
        services,
        digest={
            "channel": DIGEST_CHANNEL,
            "timezone": "Europe/Paris",
            "weekly_savings_day": "saturday",
        },
    )
    digest(services)

    [message] = digests(slack)
    body = texts(message)
    assert "Weekly savings check: 1 recommendation, about $3.65/month" in body
    assert "Unused Elastic IP" in body


def test_cron_registers_the_digest_check(services: Services) -> None:
    """`agentbot cron` runs the digest check every five minutes when a channel is set."""
    scheduler: CronScheduler = build_scheduler(services.redis, services.config)
    names = [job.func_name for job in scheduler._cron_jobs]
    assert "jobs.cost.post_digest" in names
    job = next(j for j in scheduler._cron_jobs if j.func_name == "jobs.cost.post_digest")
    assert job.interval == 300

    cost = services.config.cost.model_copy(update={"digest": DigestConfig()})
    without = services.config.model_copy(update={"cost": cost})
    names = [job.func_name for job in build_scheduler(services.redis, without)._cron_jobs]
    assert "jobs.cost.post_digest" not in names


def test_digest_job_uses_the_worker_context(services: Services, slack: FakeSlack) -> None:
    """The cron job itself, on the real clock: before 09:00 Paris time it waits, after it
    posts for today's local date."""
    outcome = post_digest()
    if outcome == "not yet":
        assert digests(slack) == []
    else:
        assert outcome.startswith("posted for ")
        assert len(digests(slack)) == 1
