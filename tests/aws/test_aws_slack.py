"""`/agent aws status` through Slack: a real Bolt app, real workers, moto on loopback.

One fleet (two accounts by assume-role, two regions, every kind of trouble) is
seeded per module and only read. Tests that change resources do it in an account
of their own, so the shared fleet stays as seeded whatever order tests run in.
The job runs in a forked RQ worker, which gets the test's AWS session factory
through the installed job context: that is how failures moto cannot produce are
injected (botocore event hooks on the session, see `tests.aws.fleet`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import func, select, update

import jobs.aws.status_scan
from agents.aws.collectors import Health, ResourceRecord
from agents.aws.config import AwsAccount, AwsConfig, ResourceType, Service
from agents.aws.scanner import ALL_REGIONS, ErrorKind, ScanError, ScanReport
from bot.aws import status_blocks
from bot.services import Services
from jobs.aws.snapshots import AwsScan, AwsScanResource
from jobs.config import AgentbotConfig
from jobs.context import current, install
from jobs.notify import AwsStatus
from jobs.queues import DEFAULT
from sandbox.fakeslack import FakeSlack, Message, block_errors
from tests.aws.fleet import (
    EAST,
    PROD,
    STAGING,
    WEST,
    Fleet,
    Seeder,
    deny_region,
    impair_instance,
    make_config,
    run_instance,
)
from tests.conftest import CHANNEL, REQUESTER
from tests.slackclient import SlackUser, texts

DEV = AwsAccount(name="dev", role_arn="arn:aws:iam::444444444444:role/agentbot-aws-status")
BULK = AwsAccount(name="bulk", role_arn="arn:aws:iam::333333333333:role/agentbot-aws-status")
# Stopped instances are "degraded", so each one is a line the card has to find room for.
BULK_INSTANCES, BULK_STOPPED = 60, 36
X = "\N{MULTIPLICATION SIGN}"


@dataclass
class Estate:
    """The module's seeded moto server."""

    endpoint: str
    fleet: Fleet
    bulk_ids: list[str]


@pytest.fixture(scope="module")
def estate(aws_env: str, fleet: Fleet) -> Estate:
    """The shared fleet, plus a bulk account of many instances; seeded once per module."""
    ec2 = Seeder(boto3.Session(), BULK)("ec2", EAST)
    launched = ec2.run_instances(
        ImageId="ami-12c6146b",
        InstanceType="t3.micro",
        MinCount=BULK_INSTANCES,
        MaxCount=BULK_INSTANCES,
    )
    bulk_ids = [i["InstanceId"] for i in launched["Instances"]]
    ec2.stop_instances(InstanceIds=bulk_ids[:BULK_STOPPED])
    return Estate(aws_env, fleet, bulk_ids)


@pytest.fixture
def config(config: AgentbotConfig, estate: Estate) -> AgentbotConfig:
    """The usual test configuration, with the two-account, two-region fleet configured."""
    return config.model_copy(update={"aws": make_config()})


# Every test starts with no stored scans.
pytestmark = pytest.mark.usefixtures("no_snapshots")


SessionHook = Callable[[boto3.Session], None]


def use_aws(
    user: SlackUser, aws: AwsConfig | None = None, *hooks: SessionHook
) -> Callable[[], boto3.Session]:
    """Reconfigure AWS for the web side and the workers; hooks break each new session."""
    services = user.services
    if aws is not None:
        services.config = services.config.model_copy(update={"aws": aws})
    settings = services.settings

    def make_session() -> boto3.Session:
        session = settings.aws_session()
        for hook in hooks:
            hook(session)
        return session

    install(replace(current(), config=services.config, aws_session=make_session))
    return make_session


def ask(user: SlackUser, words: str = "") -> str:
    """Type `/agent aws status …`, run the default queue, and return the acknowledgement."""
    response = user.command(f"aws status {words}".strip())
    assert response.status == 200
    reply = user.reply_text(response)
    user.work(DEFAULT)
    return reply


def lines_of(message: Message) -> list[str]:
    """Every line of text the card shows."""
    return texts(message).splitlines()


def line_with(message: Message, *needles: str) -> str:
    """The one line of the card that contains every needle."""
    found = [line for line in lines_of(message) if all(n in line for n in needles)]
    assert len(found) == 1, f"{needles} in {found or lines_of(message)}"
    return found[0]


def scan_count(services: Services) -> int:
    """How many scans are stored."""
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AwsScan)) or 0)


def age_snapshots(services: Services, seconds: int) -> None:
    """Make every stored scan look `seconds` older than it is."""
    with services.db.session() as session:
        session.execute(
            update(AwsScan).values(
                started_at=AwsScan.started_at - timedelta(seconds=seconds),
                finished_at=AwsScan.finished_at - timedelta(seconds=seconds),
            )
        )


def deny_everything(session: boto3.Session) -> None:
    """Refuse every AWS call made through the session (so a cached answer is provably cached)."""

    def deny(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, model.name)

    session.events.register("before-call", deny)


# --- the card ----------------------------------------------------------------


def test_status_card_replaces_the_scanning_message(
    user: SlackUser, slack: FakeSlack, services: Services, estate: Estate
) -> None:
    """The scanning message becomes the card: problems with reasons, the failed region, stewards."""
    fleet = estate.fleet
    use_aws(
        user,
        None,
        lambda s: impair_instance(s, fleet.web_impaired),
        lambda s: deny_region(s, WEST),
    )
    reply = ask(user)

    assert (
        reply == f":mag: Checking 2 accounts {X} 2 regions; the report will appear in this channel."
    )
    posted = slack.calls_to("chat.postMessage")
    assert [c.params.get("text") for c in posted] == [
        f":hourglass_flowing_sand: Scanning 2 accounts {X} 2 regions…"
    ]
    [card] = slack.channel_messages(CHANNEL)
    assert card.edited >= 1
    assert slack.calls_to("chat.update")[-1].params["ts"] == card.ts
    assert card.blocks[0]["text"]["text"] == "AWS status"
    assert card.text == (
        f"AWS status: 4 unhealthy, 5 degraded of 22 resources in 2 accounts {X} 2 regions "
        "(partial: 16 checks failed)"
    )

    about = lines_of(card)[2]
    assert about.startswith(f"2 accounts {X} 2 regions · 22 resources · data from 0m 0")
    assert "(cached)" not in about
    assert about.endswith(f"asked by <@{REQUESTER}>")
    assert "*Unhealthy*\n:red_circle: 4" in texts(card)
    assert "*Degraded*\n:large_orange_circle: 5" in texts(card)
    assert "*Healthy*\n:large_green_circle: 13" in texts(card)
    assert (
        ":warning: *Partial result:* 16 of 34 checks failed. Resources they would have found "
        "are missing from the counts below; see *Not scanned*." in texts(card)
    )

    # Problems, worst first, each with where it is, why, and who stewards it.
    body = texts(card)
    assert "*Needs attention* (9, worst first)" in body
    impaired = line_with(card, fleet.web_impaired)
    assert impaired == (
        f":red_circle: *web-3 ({fleet.web_impaired})* · EC2 instance · prod/{EAST} — "
        "instance status check impaired (reachability failed) · _Bill Gates_"
    )
    assert line_with(card, "apps/api").endswith("0/2 tasks running, 2 pending · _Bill Gates_")
    assert line_with(card, "api-5xx").startswith(
        f":red_circle: *api-5xx* · CloudWatch alarm · prod/{EAST} — Threshold Crossed"
    )
    assert line_with(card, "billing-db") == (
        f":large_orange_circle: *billing-db* · RDS instance · prod/{EAST} — "
        "status stopped · _Noguchi_"
    )
    stopped = line_with(card, fleet.web_stopped, "EC2 instance")
    assert stopped.startswith(f":large_orange_circle: *web-2 ({fleet.web_stopped})*")
    assert " — stopped: " in stopped
    needs = body.index("*Needs attention*")
    assert body.index(impaired) < body.index(stopped)
    assert needs < body.index(stopped) < body.index("*Not scanned* (partial failure)")

    # The failed region is reported as such, per account, never as healthy.
    regional = ", ".join(sorted(s.value for s in Service if s is not Service.S3))
    for account in ("prod", "staging"):
        assert line_with(card, f"*{account} / {WEST}* — {regional}") == (
            f":warning: *{account} / {WEST}* — {regional}: access denied "
            f"(`AccessDenied: explicit deny in {WEST}`)"
        )
    assert line_with(card, f"*prod / {EAST}*") == (
        f"*prod / {EAST}* — 17 resources: 4 unhealthy · 5 degraded"
    )
    assert (
        line_with(card, f"*staging / {EAST}*") == f"*staging / {EAST}* — 3 resources: all healthy"
    )
    # Its buckets are still listed (S3 is account-wide), but the region says what is missing.
    assert line_with(card, f"*staging / {WEST}* — 8 services") == (
        f":warning: *staging / {WEST}* — 8 services not scanned; found 1 resource: all healthy"
    )

    assert line_with(card, "*Noguchi*") == (
        "*Noguchi* (DynamoDB table, RDS instance) — 4 resources: 1 degraded"
    )
    assert line_with(card, "*Drucker*") == (
        "*Drucker* (CloudWatch alarm) — 1 resource: 1 unhealthy"
    )
    assert "This is the first scan of this scope" in body
    assert "attached" not in body
    assert slack.files == {}

    with services.db.session() as session:
        stored = session.scalars(select(AwsScan)).one()
        rows = session.scalars(select(AwsScanResource)).all()
    assert len(rows) == 22
    assert stored.counts == {"unhealthy": 4, "degraded": 5, "unknown": 0, "healthy": 13}
    assert {(e["account"], e["region"]) for e in stored.errors} == {
        ("prod", WEST),
        ("staging", WEST),
    }
    impaired_row = next(r for r in rows if r.resource_id == fleet.web_impaired)
    assert (impaired_row.health, impaired_row.steward, impaired_row.autonomy) == (
        "unhealthy",
        "Bill Gates",
        6,
    )


def test_second_ask_is_answered_from_the_stored_scan_with_its_age(
    user: SlackUser, slack: FakeSlack, services: Services, estate: Estate
) -> None:
    """Within cache_seconds, a second ask posts at once from the stored scan and says its age."""
    use_aws(user, None, lambda s: impair_instance(s, estate.fleet.web_impaired))
    ask(user)
    first = user.card()
    age_snapshots(services, 40)
    # From now on any AWS call would fail; a cached answer makes none.
    use_aws(user, None, deny_everything)
    slack.calls.clear()

    reply = ask(user)

    assert reply.startswith(f":mag: Checking 2 accounts {X} 2 regions")
    assert [c.method for c in slack.calls] == ["chat.postMessage"]
    second = user.card()
    assert second.ts != first.ts
    about = lines_of(second)[2]
    assert re.search(r"· data from 0m 4[0-3]s ago \(cached\) ·", about), about
    assert "Partial result" not in texts(second)
    assert line_with(second, estate.fleet.web_impaired).startswith(":red_circle: *web-3")
    assert second.text == first.text
    assert scan_count(services) == 1


def test_stale_data_is_scanned_again_and_the_card_says_what_changed(
    user: SlackUser, services: Services, estate: Estate
) -> None:
    """After cache_seconds, the next ask scans again and lists what changed since the last scan."""
    aws = make_config(accounts=[PROD, STAGING, DEV])
    make_session = use_aws(user, aws)
    dev = Seeder(make_session(), DEV)
    ec2 = dev("ec2", EAST)
    api = run_instance(ec2, "dev-api")
    web = run_instance(ec2, "dev-web")

    ask(user, f"dev {EAST} ec2")
    first = user.card()
    assert "This is the first scan of this scope" in texts(first)
    assert first.text.startswith("AWS status: 0 unhealthy, 0 degraded of 2 resources")

    ec2.stop_instances(InstanceIds=[api])
    ec2.terminate_instances(InstanceIds=[web])
    worker = run_instance(ec2, "dev-worker")
    age_snapshots(services, 61)
    ask(user, f"ec2 {EAST} dev")

    second = user.card()
    assert second.ts != first.ts
    body = texts(second)
    with services.db.session() as session:
        earlier = session.scalars(select(AwsScan).order_by(AwsScan.id)).first()
    assert earlier is not None
    at = earlier.finished_at.astimezone(UTC)
    assert f"*Since the previous scan* (at {at:%H:%M:%S} UTC)" in body
    changes = body[body.index("*Since the previous scan*") :].splitlines()[1:4]
    assert changes[0].startswith(
        f"• NEW DEGRADED: ec2_instance dev-api ({api}) (dev/{EAST}) - stopped: "
    )
    assert changes[0].endswith("(was healthy)")
    assert changes[1:] == [
        f"• ADDED: ec2_instance dev-worker ({worker}) (dev/{EAST}) [healthy]",
        f"• REMOVED: ec2_instance dev-web ({web}) (dev/{EAST})",
    ]
    assert "(cached)" not in body
    assert scan_count(services) == 2


def test_scanning_message_shows_progress_until_the_card_replaces_it(
    user: SlackUser, slack: FakeSlack, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the scan runs, the one scanning message counts checks done; then it is the card."""
    # Forked workers inherit this: every finished check may edit the message.
    monkeypatch.setattr(jobs.aws.status_scan, "PROGRESS_INTERVAL_SECONDS", 0.0)
    ask(user, "staging")

    [card] = slack.channel_messages(CHANNEL)
    edits = [c.params for c in slack.calls_to("chat.update")]
    assert {e["ts"] for e in edits} == {card.ts}
    progress = [e["text"] for e in edits[:-1]]
    assert progress, "no progress was shown"
    counts = []
    for line in progress:
        match = re.fullmatch(
            rf":hourglass_flowing_sand: Scanning 1 account {X} 2 regions… (\d+) of 17 checks done",
            line,
        )
        assert match, line
        counts.append(int(match[1]))
    assert counts == sorted(counts) and counts[-1] < 17
    assert card.text.startswith("AWS status: 0 unhealthy, 0 degraded of 7 resources")


def test_large_estate_fits_slack_and_attaches_the_full_list(
    user: SlackUser, slack: FakeSlack, estate: Estate
) -> None:
    """Too many problems for one card: the worst are shown, all are in a CSV in the thread."""
    use_aws(user, make_config(accounts=[BULK], regions=[EAST], services=["ec2"]))
    ask(user)

    card = user.card()
    body = texts(card)
    assert len(card.blocks) <= 50
    assert f"*Needs attention* ({BULK_STOPPED}, worst first)" in body
    shown = [line for line in lines_of(card) if " · EC2 instance · bulk/" in line]
    assert len(shown) == status_blocks.MAX_PROBLEMS
    assert (
        f"_…and {BULK_STOPPED - status_blocks.MAX_PROBLEMS} more resources in the attached file._"
        in body
    )
    assert (
        f":paperclip: Not everything fits here: the full list ({BULK_INSTANCES} resources) "
        "is attached in this message's thread." in body
    )

    [attachment] = user.thread()
    assert attachment.text == f"The full list: {BULK_INSTANCES} resources, worst first."
    [stored] = slack.files.values()
    assert attachment.files[0]["id"] == stored["id"]
    assert re.fullmatch(r"aws-status-\d{8}-\d{6}\.csv", stored["name"])
    rows = list(csv.DictReader(io.StringIO(stored["data"].decode())))
    assert sorted(r["id"] for r in rows) == sorted(estate.bulk_ids)
    assert [r["health"] for r in rows] == ["degraded"] * BULK_STOPPED + ["healthy"] * (
        BULK_INSTANCES - BULK_STOPPED
    )
    assert {r["steward"] for r in rows} == {"Bill Gates"}
    assert all(r["reason"].startswith("stopped") for r in rows[:BULK_STOPPED])


def test_huge_estate_card_stays_within_slack_limits() -> None:
    """Thousands of resources and failures across 40 accounts still give a card Slack accepts."""
    now = datetime.now(UTC)
    regions = [f"us-{d}-{n}" for d in ("east", "west") for n in range(1, 6)]
    accounts = [f"team-{n:02d}-{'x' * 40}" for n in range(40)]
    records = [
        ResourceRecord(
            id=f"i-{a}{n:05d}",
            arn=f"arn:aws:ec2:{regions[n % 10]}:111111111111:instance/i-{a}{n:05d}",
            type=ResourceType.EC2_INSTANCE,
            account=accounts[a],
            region=regions[n % 10],
            state="running",
            health=list(Health)[n % 4],
            reason="<!channel> " + "status check impaired " * 30,
            steward=f"Steward {n % 15}",
            autonomy=5,
            name=f"<@U123> web-{n}",
        )
        for a in range(40)
        for n in range(125)
    ]
    errors = [
        ScanError(
            account=account,
            region=ALL_REGIONS if i % 7 == 0 else regions[i % 10],
            service="ec2",
            message="AccessDenied: " + "explicit deny " * 40,
            kind=ErrorKind.ACCESS_DENIED,
        )
        for i, account in enumerate(accounts)
    ]
    report = ScanReport(
        records=tuple(records),
        errors=tuple(errors),
        accounts=tuple(accounts),
        regions=tuple(regions),
        services=tuple(Service),
        started_at=now - timedelta(seconds=30),
        finished_at=now,
        units_total=40 * 10 * 9,
    )
    card = status_blocks.render_status_card(
        AwsStatus(report=report, scan_id=1, cached=True, as_of=now + timedelta(seconds=5))
    )

    assert block_errors(card.blocks) == []
    assert len(card.blocks) < 40
    assert card.needs_full_list
    shown = "\n".join(str(b) for b in card.blocks)
    assert "<!channel>" not in shown and "<@U123>" not in shown
    assert "&lt;!channel&gt;" in shown
    # Cut to fit, the places with failed checks lead the list.
    places = shown[shown.index("*By account and region*") :]
    assert places.count(":warning:") == 20
    full = list(csv.reader(io.StringIO(status_blocks.render_full_list(report))))
    assert len(full) == 1 + len(records) + len(errors)


# --- bad input and failures ----------------------------------------------------


def test_bad_scope_gets_usage_and_queues_nothing(
    user: SlackUser, slack: FakeSlack, services: Services
) -> None:
    """Unknown accounts, unconfigured regions and unknown reports are refused with usage."""
    for words, expected in (
        (
            "aws status nowhere",
            "`nowhere` is not a configured account, a region or a service. "
            "Accounts: prod, staging. Services: autoscaling, cloudwatch, dynamodb, ec2, ecs, "
            "elbv2, lambda, rds, s3.\nUsage: `/agent aws status [account] [region] [service]`",
        ),
        (
            "aws status ap-south-1",
            f"region ap-south-1 is not configured; configured: {EAST}, {WEST}.\n"
            "Usage: `/agent aws status [account] [region] [service]`",
        ),
        (
            "aws frobnicate",
            "Which AWS report? `/agent aws status [account] [region] [service]` · "
            "`/agent aws cost [yesterday|week|month]` · `/agent aws optimize`",
        ),
        (
            "aws",
            "Which AWS report? `/agent aws status [account] [region] [service]` · "
            "`/agent aws cost [yesterday|week|month]` · `/agent aws optimize`",
        ),
    ):
        assert user.reply_text(user.command(words)) == expected
    assert services.queues.queue(DEFAULT).count == 0
    assert slack.channel_messages(CHANNEL) == []


def test_a_failing_job_says_so_without_a_stack_trace(
    user: SlackUser, slack: FakeSlack, services: Services, estate: Estate
) -> None:
    """If the report cannot be made, the channel gets one short sentence, no traceback."""

    def broken(session: boto3.Session) -> None:
        raise RuntimeError("secret internals /srv/agentbot/jobs/aws.py line 12")

    use_aws(user, None, broken)
    ask(user)

    [message] = slack.channel_messages(CHANNEL)
    assert message.text == (
        ":x: AWS status failed before the report was ready; the worker log has the details. "
        "Try again in a minute."
    )
    assert scan_count(services) == 0
