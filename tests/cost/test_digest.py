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
from jobs.aws.digest import CostDigest, DigestOutcome, post_digest, run_digest
from jobs.context import current
from jobs.notify import Notifier, PostedReport
from jobs.schedule import build_scheduler
from sandbox.fakeslack import FakeSlack, Message
from tests.cost.conftest import (
    DIGEST_CHANNEL,
    EC2,
    LAMBDA,
    S3,
    history,
    queue_ce_results,
    reconfigure,
)
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
    """Digest messages in the digest channel (not the charts posted with them)."""
    return [
        m
        for m in slack.channel_messages(DIGEST_CHANNEL)
        if "AWS cost digest" in m.text and not m.files
    ]


def charts(slack: FakeSlack) -> list[Message]:
    """Messages in the digest channel itself that carry a file."""
    return [m for m in slack.channel_messages(DIGEST_CHANNEL) if m.files]


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
    """Not before 09:00 Paris time; then once: a summary read at a glance, the PNG chart
    right below it, and every other figure in its thread."""
    assert digest(services, DUE - timedelta(minutes=10)).status == "not yet"
    assert digests(slack) == []

    posted = digest(services)
    again = digest(services, DUE + timedelta(hours=3))

    assert posted.status == "posted" and posted.day == AS_OF
    assert again.status == "already posted"
    [message] = digests(slack)
    body = texts(message)
    assert "AWS cost digest · Fri 14 Mar 2025 (UTC)" in body
    # The headline: the day, its change on the day before and on last Friday.
    assert "*$448.00* yesterday (Fri 14 Mar)" in body
    assert ":arrow_up_small: +$250.00 (+126.3%) on the day before" in body
    assert ":arrow_up_small: +$250.00 (+126.3%) on Fri 07 Mar" in body
    # The month against last month, the forecast, and the budget.
    assert "Month to date *$2,962.00* (+$259.00 (+9.6%) on the same point in February)" in body
    assert "forecast *$6,862.29* for March" in body
    assert "budget $6,000.00 :warning: *at risk*" in body
    assert "Mar 14 *AWS Lambda*: $250.00, *+$240.00* vs a usual $10.00" in body  # the anomaly
    assert "30-day chart below" in body
    # Five seconds' reading: the rest waits in the thread.
    lines = [line for line in body.splitlines() if line.strip()]
    assert len(lines) <= 12, body
    for detail in ("Top services", "By account", "Provisional", "Cost Explorer request"):
        assert detail not in body

    # The chart is in the channel, right after the digest, not hidden in a thread.
    channel = slack.channel_messages(DIGEST_CHANNEL)
    [chart] = charts(slack)
    assert channel.index(chart) == channel.index(message) + 1
    assert "AWS cost digest · Fri 14 Mar 2025 (UTC): daily UnblendedCost" in chart.text
    [file] = chart.files
    stored = slack.files[file["id"]]
    assert stored["name"] == "aws-cost-2025-03-14.png"
    assert png_size(stored["data"]) == (1000, 450)

    [thread] = slack.thread(DIGEST_CHANNEL, message.ts)
    more = texts(thread)
    assert "AWS Lambda — *$250.00* (:arrow_up_small: +$240.00" in more
    assert "*By account*" in more
    assert "Provisional: Mar 14" in more
    assert "UnblendedCost · credits and refunds excluded" in more
    assert "1 Cost Explorer request for this report" in more

    with services.db.session() as session:
        row = session.execute(select(CostDigest)).scalar_one()
    assert (row.day, row.status, row.message_ts, row.chart_file_id) == (
        AS_OF,
        "posted",
        message.ts,
        file["id"],
    )


def test_chart_upload_failure_keeps_the_digest_posted_once(
    services: Services, slack: FakeSlack, costs: None
) -> None:
    """Slack refusing the chart leaves the digest posted, recorded, and not posted again."""
    slack.fail_next("files.getUploadURLExternal", status=400)
    assert digest(services).status == "posted"
    assert digest(services, DUE + timedelta(minutes=5)).status == "already posted"

    assert len(digests(slack)) == 1 and charts(slack) == []
    with services.db.session() as session:
        row = session.execute(select(CostDigest)).scalar_one()
    assert (row.status, row.chart_file_id) == ("posted", None)


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
    assert len(charts(slack)) == 1


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
    assert len(charts(slack)) == 1


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
    [thread] = slack.thread(DIGEST_CHANNEL, message.ts)
    body = texts(thread)
    assert "Weekly savings check: 1 recommendation, about $3.65/month" in body
    assert "Unused Elastic IP" in body


def test_cron_registers_the_digest_check(services: Services) -> None:
    """`agentbot cron` runs the digest check every five minutes when a channel is set."""
    scheduler: CronScheduler = build_scheduler(services.redis, services.config)
    names = [job.func_name for job in scheduler._cron_jobs]
    assert "jobs.aws.digest.post_digest" in names
    job = next(j for j in scheduler._cron_jobs if j.func_name == "jobs.aws.digest.post_digest")
    assert job.interval == 300

    cost = services.config.cost.model_copy(update={"digest": DigestConfig()})
    without = services.config.model_copy(update={"cost": cost})
    names = [job.func_name for job in build_scheduler(services.redis, without)._cron_jobs]
    assert "jobs.aws.digest.post_digest" not in names


def test_digest_job_uses_the_worker_context(
    services: Services, slack: FakeSlack, costs: None
) -> None:
    """The cron job itself: before 09:00 Paris time it waits; after it, it posts the
    digest of the last UTC day, once."""
    assert post_digest(now=DUE - timedelta(minutes=10)) == "not yet"
    assert digests(slack) == []

    assert post_digest(now=DUE) == "posted for 2025-03-14"
    assert post_digest(now=DUE + timedelta(hours=2)) == "already posted for 2025-03-14"
    assert len(digests(slack)) == 1


def flat_history() -> list[Any]:
    """42 days of the same $448.00 day: no rise, no anomaly."""
    flat = history(AS_OF, 42)
    for day in flat:
        day["Groups"] = history(AS_OF, 1)[0]["Groups"]
        day["Estimated"] = False
    return flat


@pytest.mark.parametrize(("threshold", "status"), [(400, "posted"), (448, "skipped")])
def test_above_threshold_posts_only_a_total_above_it(
    services: Services, slack: FakeSlack, aws_endpoint: str, threshold: float, status: str
) -> None:
    """With notify = above_threshold, a $448.00 day posts above $400 and not at $448."""
    reconfigure(
        services,
        digest={
            "channel": DIGEST_CHANNEL,
            "timezone": "Europe/Paris",
            "notify": "above_threshold",
            "threshold_usd": threshold,
        },
        monthly_budget_usd=None,
    )
    queue_ce_results(aws_endpoint, {"ResultsByTime": flat_history()})

    outcome = digest(services)

    assert outcome.status == status
    assert len(digests(slack)) == (1 if status == "posted" else 0)
    with services.db.session() as session:
        row = session.execute(select(CostDigest)).scalar_one()
    expected = "total above $400.00" if status == "posted" else "total $448.00 not above $448.00"
    assert (row.status, row.reason) == (status, expected)


@pytest.mark.parametrize(
    ("budget", "line"),
    [
        (2000, ":red_circle: *over* (148% used, forecast 343%)"),
        (10_000, ":large_green_circle: *on track* (30% used, forecast 69%)"),
    ],
)
def test_budget_state_in_the_digest(
    services: Services, slack: FakeSlack, costs: None, budget: float, line: str
) -> None:
    """Month to date $2,962.00 and forecast $6,862.29: over $2,000, on track for $10,000."""
    reconfigure(
        services,
        monthly_budget_usd=budget,
        digest={"channel": DIGEST_CHANNEL, "timezone": "Europe/Paris"},
    )
    digest(services)

    [message] = digests(slack)
    body = texts(message)
    assert f"budget ${budget:,.2f} {line}" in body


def test_biggest_movers_in_the_digest(services: Services, slack: FakeSlack, costs: None) -> None:
    """The three services that moved most against the day before, largest change first."""
    digest(services)

    [message] = digests(slack)
    [movers] = [
        block["text"]["text"]
        for block in message.blocks
        if block.get("text", {}).get("text", "").startswith("*Top movers")
    ]
    assert movers.splitlines() == [
        "*Top movers on the day before*",
        f"• {LAMBDA}: :arrow_up_small: +$240.00 (+2400.0%)",
        f"• {EC2}: :arrow_up_small: +$15.00 (+13.3%)",
        f"• {S3}: :arrow_down_small: -$5.00 (-25.0%)",
    ]


def test_digest_in_a_zone_ahead_of_utc_covers_the_last_ended_utc_day(
    services: Services, slack: FakeSlack, aws_endpoint: str
) -> None:
    """At 08:00 in Tokyo (23:00 UTC the evening before) the UTC day just begun has not
    ended: Tuesday's digest covers Sunday; a later check that Tuesday posts nothing
    more; Wednesday's covers Monday."""
    reconfigure(
        services, digest={"channel": DIGEST_CHANNEL, "timezone": "Asia/Tokyo", "time": "08:00"}
    )
    monday = date(2025, 3, 17)
    # February 1 to Monday: all that Sunday's report and Monday's need.
    queue_ce_results(
        aws_endpoint,
        {"ResultsByTime": history(monday, 45)},
        {"ResultsByTime": history(monday, 45)},
    )
    tuesday_0805 = datetime(2025, 3, 17, 23, 5, tzinfo=UTC)

    assert digest(services, tuesday_0805 - timedelta(minutes=10)).status == "not yet"
    tuesday = digest(services, tuesday_0805)
    # 10:00 in Tokyo: Monday (UTC) has ended now, but Tuesday's digest is out already.
    later = digest(services, tuesday_0805 + timedelta(hours=2))
    wednesday = digest(services, tuesday_0805 + timedelta(days=1))

    assert (tuesday.status, tuesday.day) == ("posted", date(2025, 3, 16))
    assert (later.status, later.day) == ("already posted", date(2025, 3, 16))
    assert (wednesday.status, wednesday.day) == ("posted", monday)
    first, second = digests(slack)
    assert "AWS cost digest · Sun 16 Mar 2025 (UTC)" in texts(first)
    assert "*$198.00* yesterday (Sun 16 Mar)" in texts(first)
    assert "AWS cost digest · Mon 17 Mar 2025 (UTC)" in texts(second)
    assert "*$448.00* yesterday (Mon 17 Mar)" in texts(second)
