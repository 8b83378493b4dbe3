"""`agentbot dev` with its demo AWS estate: status, cost and the digest, as a user reads them."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.aws.cost_report import money
from sandbox.demo_aws import PROD_ACCOUNT_ID, STAGING_ACCOUNT_ID, STAGING_SHARE, cost_history
from sandbox.dev import COSTS_CHANNEL, DEV_CHANNEL, REQUESTER, DevOptions, Sandbox
from tests.sandbox.pageclient import Page, find, visible_text

COMPUTE = "Amazon Elastic Compute Cloud - Compute"
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
        anomalies = text.split("*Anomalies*", 1)[1].split("*By account*", 1)[0]
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
                (r := find(s, "AWS cost report · yesterday", thread=True)) and chart_for(s, r)
            ),
            timeout=120,
        )
        report = report_in(state, COST_REPORT, thread=True)
        assert report is not None and report["channel"] == DEV_CHANNEL.id
        text = visible_text(report)
        assert total in text and COMPUTE in text.split("*Anomalies*", 1)[1], text
        # The digest stored the days: asking again the same day costs no Cost Explorer call.
        assert "0 Cost Explorer requests for this report" in text, text
