"""Benchmark: Cost Explorer calls per daily digest, first day, same day again, and after.

Cost Explorer bills every request, so the digest keeps daily costs in PostgreSQL and
asks only for days it does not have, or still-estimated days gone stale. This runs
the real digest (`jobs.aws.digest.run_digest`) against a moto server on loopback whose
`GetCostAndUsage` answers are injected through moto's API (the demo estate's cost
history, `sandbox.demo_aws`), with the harness's Redis, PostgreSQL and fake Slack,
and counts the requests that reach Cost Explorer with a botocore hook:

- the first digest (empty history: everything the report needs is fetched);
- the same day again: a second digest check, and an on-demand report;
- each following day's digest (yesterday is new; the day before was still estimated).

Run: uv run python bench/cost_explorer.py [--days 7]
Writes bench/results/cost_explorer.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
from harness import BOT_TOKEN, Stack, write_results
from moto.server import ThreadedMotoServer
from slack_sdk import WebClient

from agents.aws.config import AwsAccount, AwsConfig
from agents.aws.cost_config import CostConfig, DigestConfig
from bot.notifier import SlackNotifier
from jobs.aws.cost_reports import make_report
from jobs.aws.digest import run_digest
from jobs.config import AgentbotConfig
from sandbox.demo_aws import PROD_ACCOUNT_ID, cost_history, queue_cost_results

CHANNEL = "CBENCHCOST"
ZONE = "Europe/Paris"
POST_AT = time(9, 0)
HISTORY_DAYS = 60


class CostExplorerMeter:
    """Counts GetCostAndUsage requests sent (retries included: each is billed)."""

    def __init__(self) -> None:
        self.sent = 0
        self._lock = threading.Lock()

    def before_send(self, **_: Any) -> None:
        """One request on its way to Cost Explorer."""
        with self._lock:
            self.sent += 1

    def take(self) -> int:
        """The requests sent since the last take."""
        with self._lock:
            sent, self.sent = self.sent, 0
            return sent


def posting_moment(day: datetime) -> datetime:
    """Five minutes after the configured local posting time on `day`'s date."""
    local = datetime.combine(day.date(), POST_AT, tzinfo=ZoneInfo(ZONE)) + timedelta(minutes=5)
    return local.astimezone(UTC)


def main() -> int:
    """Run the digest day after day and print the Cost Explorer calls each made."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days after the first to run")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # This process only: the standard AWS variables point boto3 at the local server.
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    os.environ.pop("AWS_PROFILE", None)

    first = posting_moment(datetime.now(UTC))
    # Enough history for the first report, and the days the later digests will ask for.
    history = cost_history(first.date(), {PROD_ACCOUNT_ID: 1.0}, HISTORY_DAYS, args.days + 1)
    # Each distinct request takes the next queued answer: one per digest, and spare.
    queue_cost_results(endpoint, PROD_ACCOUNT_ID, history, copies=args.days + 8)

    meter = CostExplorerMeter()

    def aws_session() -> boto3.Session:
        session = boto3.Session()
        session.events.register("before-send.ce", meter.before_send)
        return session

    config = AgentbotConfig(
        aws=AwsConfig(accounts=[AwsAccount(name="prod")], regions=["us-east-1"]),
        cost=CostConfig(
            monthly_budget_usd=20_000,
            digest=DigestConfig(channel=CHANNEL, timezone=ZONE, time=POST_AT),
        ),
    )
    rows: list[dict[str, Any]] = []
    try:
        with Stack() as stack:
            client = WebClient(token=BOT_TOKEN, base_url=stack.slack.api_url)
            notifier = SlackNotifier(stack.db, client, stack.redis, config)

            def digest(now: datetime) -> str:
                return str(
                    run_digest(stack.db, stack.redis, notifier, config, aws_session, now=now)
                )

            def step(label: str, now: datetime, run: Callable[[datetime], str]) -> None:
                outcome = run(now)
                rows.append(
                    {
                        "run": label,
                        "at": now.isoformat(),
                        "outcome": outcome,
                        "ce_calls": meter.take(),
                    }
                )

            step("first digest", first, digest)
            step("same day: digest check again", first + timedelta(hours=2), digest)
            step(
                "same day: /agent aws cost",
                first + timedelta(hours=3),
                lambda now: (
                    "report as of "
                    + make_report(
                        stack.db,
                        stack.redis,
                        config,
                        aws_session,
                        "yesterday",
                        kind="bench",
                        now=now,
                    ).as_of.isoformat()
                ),
            )
            for n in range(1, args.days + 1):
                step(f"next day +{n}: digest", posting_moment(first + timedelta(days=n)), digest)
            posted = [
                m
                for m in stack.slack.channel_messages(CHANNEL)
                if "AWS cost digest" in m.text and not m.files
            ]
            charts = [m for m in stack.slack.channel_messages(CHANNEL) if m.files]
    finally:
        server.stop()

    later = [r["ce_calls"] for r in rows[3:]]
    results = {
        "server": "moto ThreadedMotoServer (in process, loopback); Redis, PostgreSQL, fake Slack",
        "history_days_in_first_report": HISTORY_DAYS,
        "days_after_first": args.days,
        "runs": rows,
        "digests_posted": len(posted),
        "charts_posted": len(charts),
        "summary": {
            "CE calls, first digest": rows[0]["ce_calls"],
            "CE calls, same day again (digest check + report)": rows[1]["ce_calls"]
            + rows[2]["ce_calls"],
            "CE calls per later digest (max)": max(later, default=0),
            "digests / charts posted": f"{len(posted)} / {len(charts)}",
        },
    }
    path = write_results("cost_explorer", results)

    width = max(len(r["run"]) for r in rows)
    for row in rows:
        print(f"{row['run']:<{width}}  {row['ce_calls']:>3} CE calls  ({row['outcome']})")
    print(f"digests posted: {len(posted)}, charts posted: {len(charts)}")
    print(f"wrote {path.relative_to(path.parents[2])}")
    expected = args.days + 1
    return 0 if len(posted) == expected and len(charts) == expected else 1


if __name__ == "__main__":
    sys.exit(main())
