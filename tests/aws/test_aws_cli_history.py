"""`agentbot aws status` keeps history: each run is a snapshot, compared with the previous one.

The console script runs in its own process against moto on loopback and the test
PostgreSQL, and the Slack report runs through the real Bolt app and a forked RQ
worker against the same database, so both sides of the history are the shipped code.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import create_engine, func, select, text

from jobs.aws.snapshots import AwsScan
from jobs.config import AgentbotConfig
from jobs.db import normalize_url
from jobs.queues import DEFAULT
from sandbox.fakeslack import FakeSlack
from tests.aws.fleet import EAST, PROD, Seeder, point_aws_at, reset_moto, run_instance
from tests.aws.test_aws_cli import AGENTBOT
from tests.conftest import CHANNEL
from tests.slackclient import SlackUser, texts

# One account and region keeps each scan small; every service is scanned, as by default.
CONFIG = f"""
[aws]
regions = ["{EAST}"]
call_timeout_seconds = 5
max_attempts = 1
# Every Slack ask scans, so a Slack report right after a terminal one is a new snapshot.
cache_seconds = 0

[[aws.accounts]]
name = "prod"
"""
FIRST = "this is the first scan of this scope; the next one will say what changed."
NOT_STORED = "Scan not stored:"


@dataclass
class Terminal:
    """The console script's environment, and the EC2 client that changes the estate."""

    env: dict[str, str]
    cwd: Path
    config: Path
    ec2: Any

    def status(self, **env: str) -> subprocess.CompletedProcess[str]:
        """Run `agentbot aws status` and return what it printed."""
        done = subprocess.run(
            [str(AGENTBOT), "aws", "status"],
            env={**self.env, **env},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run another `agentbot` subcommand."""
        return subprocess.run(
            [str(AGENTBOT), *args],
            env={**self.env, **env},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def terminal(
    moto_endpoint: str,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Terminal]:
    """An empty moto, no stored scans, and an environment naming the test database."""
    reset_moto(moto_endpoint)
    # This process reaches moto too: it seeds, and Slack's forked workers scan.
    point_aws_at(monkeypatch, moto_endpoint)
    engine = create_engine(normalize_url(database_url))
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE aws_scans, aws_scan_resources RESTART IDENTITY CASCADE"))
    engine.dispose()
    config = tmp_path / "agentbot.toml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AGENTBOT_CONFIG": str(config),
            "DATABASE_URL": database_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": EAST,
            "AWS_ENDPOINT_URL": moto_endpoint,
            "COLUMNS": "200",
        }
    )
    yield Terminal(env, tmp_path, config, Seeder(boto3.Session(), PROD)("ec2", EAST))


def changes(stdout: str) -> list[str]:
    """The lines under "Since the previous scan", without their bullets."""
    tail = stdout[stdout.index("Since the previous scan") :].splitlines()
    return [line.strip().removeprefix("• ") for line in tail[1:] if line.strip()]


def stored_scans(database_url: str) -> int:
    """How many scans the database holds."""
    engine = create_engine(normalize_url(database_url))
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(AwsScan.__table__))
    engine.dispose()
    return int(count or 0)


def test_each_run_prints_what_changed_since_the_previous_one(
    terminal: Terminal, database_url: str
) -> None:
    """Stopping, terminating and launching instances shows up in the next run's changes."""
    kept = run_instance(terminal.ec2, "web-a")
    doomed = run_instance(terminal.ec2, "web-b")

    first = terminal.status()
    assert f"Since the previous scan: {FIRST}" in " ".join(first.stdout.split())
    assert NOT_STORED not in first.stderr
    assert stored_scans(database_url) == 1

    terminal.ec2.stop_instances(InstanceIds=[kept])
    terminal.ec2.terminate_instances(InstanceIds=[doomed])
    added = run_instance(terminal.ec2, "web-c")
    second = terminal.status()

    heading = second.stdout[second.stdout.index("Since the previous scan") :].splitlines()[0]
    assert re.fullmatch(
        r"Since the previous scan \(at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\):", heading
    )
    lines = changes(second.stdout)
    assert len(lines) == 3, lines
    assert lines[0].startswith(
        f"NEW DEGRADED: ec2_instance web-a ({kept}) (prod/{EAST}) - stopped: "
    )
    assert lines[0].endswith("(was healthy)")
    assert lines[1] == f"ADDED: ec2_instance web-c ({added}) (prod/{EAST}) [healthy]"
    assert lines[2] == f"REMOVED: ec2_instance web-b ({doomed}) (prod/{EAST})"
    # The change comes after the report's own tables.
    assert second.stdout.index("Needs attention") < second.stdout.index("Since the previous")

    terminal.ec2.start_instances(InstanceIds=[kept])
    third = terminal.status()
    assert changes(third.stdout) == [
        f"RECOVERED: ec2_instance web-a ({kept}) (prod/{EAST}) (was degraded)"
    ]

    fourth = terminal.status()
    assert changes(fourth.stdout) == ["No changes since the previous scan."]
    assert stored_scans(database_url) == 4


@pytest.fixture
def config(config: AgentbotConfig, terminal: Terminal) -> AgentbotConfig:
    """The test configuration with the terminal's own `[aws]` table, so both scan one scope."""
    from bot.settings import load_config_file

    return config.model_copy(update={"aws": load_config_file(terminal.config).aws})


def ask_slack(user: SlackUser, slack: FakeSlack) -> str:
    """Type `/agent aws status`, run the worker, and return the card's text."""
    response = user.command("aws status")
    assert response.status == 200
    user.work(DEFAULT)
    return texts(slack.channel_messages(CHANNEL)[-1])


def test_slack_and_terminal_reports_share_history(
    terminal: Terminal, user: SlackUser, slack: FakeSlack
) -> None:
    """A terminal run compares with the Slack report before it, and the next Slack card with it."""
    web = run_instance(terminal.ec2, "web-a")

    card = ask_slack(user, slack)
    assert "This is the first scan of this scope" in card

    terminal.ec2.stop_instances(InstanceIds=[web])
    lines = changes(terminal.status().stdout)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"NEW DEGRADED: ec2_instance web-a ({web}) (prod/{EAST})")

    terminal.ec2.start_instances(InstanceIds=[web])
    card = ask_slack(user, slack)
    assert "*Since the previous scan* (at " in card
    assert f"• RECOVERED: ec2_instance web-a ({web}) (prod/{EAST}) (was degraded)" in card


def test_without_a_schema_the_report_says_to_migrate(terminal: Terminal, tmp_path: Path) -> None:
    """No database, or one not migrated: the report still prints, and says how to keep history."""
    path = tmp_path / "data" / "agentbot.db"
    path.parent.mkdir()
    sqlite = {"DATABASE_URL": f"sqlite:///{path}"}
    run_instance(terminal.ec2, "web-a")

    missing = terminal.status(**sqlite)
    assert "AWS status: 1 resource in 1 account x 1 region" in missing.stdout
    assert "Since the previous scan" not in missing.stdout
    assert missing.stderr.strip() == (
        f"Scan not stored: there is no database at {path} yet. "
        "Run `agentbot migrate` to keep scans and see what changed between them."
    )
    assert not path.exists(), "a report must not leave an empty database behind"

    path.touch()  # a database without the schema
    bare = terminal.status(**sqlite)
    assert "AWS status: 1 resource in 1 account" in bare.stdout
    assert bare.stderr.strip() == (
        "Scan not stored: the database (DATABASE_URL) lacks aws_scans, aws_scan_resources. "
        "Run `agentbot migrate` to keep scans and see what changed between them."
    )

    assert terminal.run("migrate", **sqlite).returncode == 0
    assert FIRST in " ".join(terminal.status(**sqlite).stdout.split())
    assert changes(terminal.status(**sqlite).stdout) == ["No changes since the previous scan."]


def test_an_unreachable_database_still_prints_the_report(terminal: Terminal) -> None:
    """A database that is down is named on stderr, without its password, after the report."""
    down = {"DATABASE_URL": "postgresql://agentbot:s3cret@127.0.0.1:1/agentbot"}
    run_instance(terminal.ec2, "web-a")

    result = terminal.status(**down)
    assert "AWS status: 1 resource in 1 account" in result.stdout
    assert result.stderr.strip().startswith(
        "Scan not stored: cannot reach the database (DATABASE_URL): "
    )
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
