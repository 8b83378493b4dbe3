"""`agentbot dev` with its demo AWS estate: status, cost and the digest, as a user reads them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.request
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from agents.aws.cost_report import money
from jobs.aws.cost_history import CostDay
from jobs.aws.cost_reports import CostReportRun
from jobs.aws.digest import CostDigest, post_digest
from jobs.context import current
from sandbox.demo_aws import PROD_ACCOUNT_ID, STAGING_ACCOUNT_ID, STAGING_SHARE, cost_history
from sandbox.dev import COSTS_CHANNEL, DEV_CHANNEL, REQUESTER, DevOptions, Sandbox
from tests.sandbox.pageclient import Page, find, visible_text

COMPUTE = "Amazon Elastic Compute Cloud - Compute"
AGENTBOT = Path(sys.executable).with_name("agentbot")
COST_REPORT = "AWS cost report \u00b7 yesterday"
HEADLINE = "3 unhealthy, 4 degraded of 25 resources in 2 accounts \u00d7 2 regions"
# What the demo estate holds that a status report must name: (resource, health).
PROBLEMS = [
    ("api-5xx", "red_circle"),
    ("web-3-status-check-failed", "red_circle"),
    ("checkout (shop/checkout)", "red_circle"),
    ("legacy-reports", "large_orange_circle"),
    ("resize-images", "large_orange_circle"),
    ("billing-db", "large_orange_circle"),
    ("staging-load-test", "large_orange_circle"),
]


def yesterdays_total() -> float:
    """Yesterday's spend as the paying account's Cost Explorer reports it."""
    today = datetime.now(UTC).date()
    history = cost_history(today, {PROD_ACCOUNT_ID: 1.0, STAGING_ACCOUNT_ID: STAGING_SHARE})
    yesterday = (today - timedelta(days=1)).isoformat()
    day = next(d for d in history if d["TimePeriod"]["Start"] == yesterday)
    return float(day["Total"]["UnblendedCost"]["Amount"])


def report_in(state: dict[str, Any], title: str, *, thread: bool) -> dict[str, Any] | None:
    """The latest cost report titled `title` (not the chart's own message)."""
    for message in reversed(state["messages"]):
        if (message.get("thread_ts") is not None) != thread or message.get("files"):
            continue
        if title in visible_text(message) and "*Anomalies*" in visible_text(message):
            return message
    return None


def details_of(state: dict[str, Any], report: dict[str, Any]) -> dict[str, Any] | None:
    """The message in a report's thread with every figure behind its summary."""
    for message in state["messages"]:
        if message.get("thread_ts") == report["ts"] and "Cost Explorer request" in visible_text(
            message
        ):
            return dict(message)
    return None


def chart_for(state: dict[str, Any], report: dict[str, Any]) -> dict[str, Any] | None:
    """The cost chart (a PNG) posted with a report: beside it, or in its thread."""
    thread = report.get("thread_ts")
    for message in state["messages"]:
        if message["channel"] != report["channel"] or float(message["ts"]) < float(report["ts"]):
            continue
        if message.get("thread_ts") not in (thread, report["ts"]):
            continue
        for file in message.get("files") or []:
            name = str(file.get("name", ""))
            if name.startswith("aws-cost-") and name.endswith(".png"):
                return dict(file)
    return None


def test_aws_status_cost_and_the_digest_through_the_page(tmp_path: Path):
    """Ada reads the estate's problems and yesterday's cost; the digest and chart are posted."""
    options = DevOptions(port=0, data_dir=tmp_path / "dev", agent="scripted", aws=True)
    with Sandbox(options, say=print) as sandbox:
        page = Page(sandbox.url)
        total = money(yesterdays_total())

        # The digest arrives by itself once the estate is seeded, in #aws-costs.
        state = page.wait(
            REQUESTER.id,
            lambda s: (d := report_in(s, "AWS cost digest", thread=False)) and chart_for(s, d),
            timeout=120,
        )
        digest = report_in(state, "AWS cost digest", thread=False)
        assert digest is not None and digest["channel"] == COSTS_CHANNEL.id
        text = visible_text(digest)
        assert total in text, text
        anomalies = text.split("*Anomalies*", 1)[1].split("*Top movers", 1)[0]
        assert COMPUTE in anomalies, text
        chart = chart_for(state, digest)
        assert chart is not None
        with urllib.request.urlopen(f"{sandbox.url}/files/{chart['id']}", timeout=10) as answer:
            assert answer.read(8) == b"\x89PNG\r\n\x1a\n"

        status, answer = page.post(
            "/ui/command", user=REQUESTER.id, channel=DEV_CHANNEL.id, text="/agent aws status"
        )
        assert status == 200 and answer["status"] == 200, answer
        state = page.wait(REQUESTER.id, lambda s: find(s, "Needs attention"), timeout=120)
        card = find(state, "Needs attention")
        assert card is not None and card["channel"] == DEV_CHANNEL.id
        text = visible_text(card)
        assert "3 unhealthy, 4 degraded of 25 resources in 2 accounts \u00d7 2 regions" in text, (
            text
        )
        attention = text.split("*Needs attention*", 1)[1].split("*By account", 1)[0]
        for name, health in PROBLEMS:
            line = next((row for row in attention.splitlines() if f"*{name}" in row), "")
            assert line.startswith(f":{health}:"), f"{name} not shown as {health}:\n{attention}"

        status, answer = page.post(
            "/ui/command", user=REQUESTER.id, channel=DEV_CHANNEL.id, text="/agent aws cost"
        )
        assert status == 200 and answer["status"] == 200, answer
        state = page.wait(
            REQUESTER.id,
            lambda s: (
                (r := report_in(s, COST_REPORT, thread=False))
                and chart_for(s, r)
                and details_of(s, r)
            ),
            timeout=120,
        )
        report = report_in(state, COST_REPORT, thread=False)
        assert report is not None and report["channel"] == DEV_CHANNEL.id
        text = visible_text(report)
        assert total in text and COMPUTE in text.split("*Anomalies*", 1)[1], text
        details = details_of(state, report)
        assert details is not None
        # The digest stored the days: asking again the same day costs no Cost Explorer call.
        assert "0 Cost Explorer requests for this report" in visible_text(details)


def test_aws_commands_wait_for_the_estate_and_store_nothing_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Typed while the estate is being created, `aws cost` and `aws status` say so and
    read nothing; the digest that follows has the real costs."""
    import sandbox.demo_aws

    release = threading.Event()
    seed = sandbox.demo_aws.seed_demo_estate

    def held_seed(endpoint_url: str) -> sandbox.demo_aws.DemoEstate:
        release.wait(timeout=60)
        return seed(endpoint_url)

    monkeypatch.setattr(sandbox.demo_aws, "seed_demo_estate", held_seed)
    options = DevOptions(port=0, data_dir=tmp_path / "dev", agent="scripted", aws=True)
    with Sandbox(options, say=print) as dev:
        assert dev.workspace is not None and dev.slack is not None
        for words in ("aws cost", "aws status"):
            dev.workspace.command(REQUESTER.id, DEV_CHANNEL.id, words)
        answers = [e.text for e in dev.slack.ephemerals]
        assert len(answers) == 2, answers
        assert all("still being created" in text for text in answers), answers
        assert dev.slack.channel_messages(DEV_CHANNEL.id) == []
        db = current().db
        with db.session() as session:
            assert session.scalars(select(CostDay)).all() == []
            assert session.scalars(select(CostReportRun)).all() == []

        release.set()
        assert dev.digest_posted.wait(timeout=120), "the digest was not posted"
        digest = next(
            m
            for m in dev.slack.channel_messages(COSTS_CHANNEL.id)
            if "AWS cost digest" in m.text and not m.files
        )
        assert money(yesterdays_total()) in digest.text + str(digest.blocks), digest.text
        dev.workspace.command(REQUESTER.id, DEV_CHANNEL.id, "aws cost")
        assert "still being created" not in dev.slack.ephemerals[-1].text

        # The terminal twin, pointed at the estate by the file the banner names, finds
        # what the banner says it will.
        assert dev.aws_summary is not None and dev.terminal_env.name in dev.banner(1.0)
        ours = ("AWS_", "AGENTBOT_", "DATABASE_URL", "REDIS_URL", "BOT")
        shell = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        done = subprocess.run(
            [
                "bash",
                "-c",
                f'. "$1" && echo "$BOT" && {AGENTBOT} aws status',
                "-",
                dev.terminal_env,
            ],
            env={**shell, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        bot, status = done.stdout.split("\n", 1)
        assert bot == dev.bot_url
        assert "3 unhealthy, 4 degraded" in status.splitlines()[0], status
        assert "3 unhealthy and 4 degraded" in dev.aws_summary


def test_first_digest_counts_as_todays_in_a_zone_ahead_of_utc(tmp_path: Path):
    """With the digest at 09:00 Moscow time, the early digest is today's: no second one."""
    moscow = ZoneInfo("Europe/Moscow")  # UTC+3 all year
    before = datetime.now(moscow).date()
    options = DevOptions(
        port=0,
        data_dir=tmp_path / "dev",
        agent="scripted",
        aws=True,
        digest_timezone="Europe/Moscow",
    )
    with Sandbox(options, say=print) as sandbox:
        assert sandbox.digest_posted.wait(timeout=120), "the first digest was not posted"
        after = datetime.now(moscow).date()
        db = current().db
        with db.session() as session:
            [first] = session.scalars(select(CostDigest)).all()
        # 09:00 in Moscow is 06:00 UTC the same date: the digest covers the UTC day before.
        today = first.day + timedelta(days=1)
        assert today in (before, after) and first.status == "posted"

        # The daily check at today's 09:00 (and later today) finds it already posted.
        for hour in (9, 23):
            moment = datetime.combine(today, time(hour, 5), tzinfo=moscow)
            assert post_digest(now=moment) == f"already posted for {first.day.isoformat()}"
        with db.session() as session:
            assert len(session.scalars(select(CostDigest)).all()) == 1
        digests = [
            m
            for m in sandbox.slack.channel_messages(COSTS_CHANNEL.id)  # type: ignore[union-attr]
            if "AWS cost digest" in m.text and not m.files
        ]
        assert len(digests) == 1
