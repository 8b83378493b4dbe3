"""`agentbot aws status`, run as users run it: the console script, in its own process.

The seeded fleet is read over AWS_ENDPOINT_URL from moto on loopback. Lambda's
endpoint is pointed at a closed port with `AWS_ENDPOINT_URL_LAMBDA`, boto3's own
per-service setting, so every Lambda check fails the way an unreachable endpoint
does, and the report has to show that as a partial failure.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.aws.fleet import (
    EAST,
    STAGING,
    WEST,
    Fleet,
    point_aws_at,
    reset_moto,
    seed_fleet,
)

AGENTBOT = Path(sys.executable).with_name("agentbot")
X = "\N{MULTIPLICATION SIGN}"
CONFIG = f"""
[aws]
regions = ["{EAST}", "{WEST}"]
call_timeout_seconds = 5
max_attempts = 1

[[aws.accounts]]
name = "prod"

[[aws.accounts]]
name = "staging"
role_arn = "{STAGING.role_arn}"
external_id = "{STAGING.external_id}"

[aws.stewards.rds_instance]
name = "Grace Hopper"
autonomy = 3
"""


@dataclass
class Cli:
    """How to run the console script against the module's seeded moto."""

    env: dict[str, str]
    cwd: Path
    fleet: Fleet


@dataclass
class Run:
    """What one run printed."""

    returncode: int
    stdout: str
    stderr: str


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cli(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """The fleet seeded once, a config file, and an environment naming only what the CLI needs."""
    with pytest.MonkeyPatch.context() as env:
        reset_moto(moto_endpoint)
        point_aws_at(env, moto_endpoint)
        fleet = seed_fleet(boto3.Session())
    home = tmp_path_factory.mktemp("cli")
    (home / "agentbot.toml").write_text(CONFIG)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    child_env.update(
        {
            "AGENTBOT_CONFIG": str(home / "agentbot.toml"),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            # The bot's own setting: boto3 alone reads only AWS_DEFAULT_REGION.
            "AWS_REGION": EAST,
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{closed_port()}",
            "COLUMNS": "200",
        }
    )
    yield Cli(env=child_env, cwd=home, fleet=fleet)


def run(cli: Cli, *args: str, tty_stderr: bool = False) -> Run:
    """Run `agentbot aws status …`; stderr on a pseudo-terminal shows the progress bar."""
    command = [str(AGENTBOT), "aws", "status", *args]
    if not tty_stderr:
        done = subprocess.run(
            command, env=cli.env, cwd=cli.cwd, capture_output=True, text=True, timeout=120
        )
        return Run(done.returncode, done.stdout, done.stderr)
    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    process = subprocess.Popen(
        command, env=cli.env, cwd=cli.cwd, stdout=subprocess.PIPE, stderr=terminal, text=True
    )
    os.close(terminal)
    stdout, _ = process.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(controller)
    return Run(process.returncode, stdout, b"".join(chunks).decode(errors="replace"))


def rows(output: str) -> list[list[str]]:
    """The cells of every table row printed."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def cells(output: str, needle: str) -> list[str]:
    """The cells of the one table row containing `needle`."""
    found = [row for row in rows(output) if any(needle in cell for cell in row)]
    assert len(found) == 1, f"{needle}: {found}"
    return found[0]


def test_status_prints_the_report_tables(cli: Cli) -> None:
    """The terminal report: totals, stewards, problems with reasons, and the failed checks."""
    result = run(cli, tty_stderr=True)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("AWS status: 23 resources in 2 accounts x 2 regions: ")
    assert "2 unhealthy, 4 degraded, 0 unknown; PARTIAL: 4 scan units failed" in out.splitlines()[0]
    # The progress bar ran on the terminal, and took none of stdout.
    assert f"Scanning 2 accounts {X} 2 regions" in result.stderr
    assert "34/34" in result.stderr
    assert "Scanning" not in out

    totals = [row for row in rows(out) if len(row) == 2]
    assert totals == [
        ["unhealthy", "2"],
        ["degraded", "4"],
        ["unknown", "0"],
        ["healthy", "17"],
        ["total", "23"],
    ]
    assert ["Grace Hopper", "2", "0", "1", "0"] in rows(out)
    assert cells(out, "api-5xx")[:6] == [
        "unhealthy",
        "cloudwatch_alarm",
        "api-5xx",
        "prod",
        EAST,
        "Drucker (5)",
    ]
    assert cells(out, "apps/api")[-1] == "0/2 tasks running, 2 pending"
    assert cells(out, "billing-db") == [
        "degraded",
        "rds_instance",
        "billing-db",
        "prod",
        EAST,
        "Grace Hopper (3)",
        "status stopped",
    ]
    stopped = cells(out, f"web-2 ({cli.fleet.web_stopped})")
    assert stopped[:6] == [
        "degraded",
        "ec2_instance",
        f"web-2 ({cli.fleet.web_stopped})",
        "prod",
        EAST,
        "Bill Gates (6)",
    ]
    assert stopped[6].startswith("stopped: ")

    failures = out[out.index("Partial failures (these were not scanned)") :]
    assert sorted(row[:4] for row in rows(failures)) == sorted(
        [account, region, "lambda", "endpoint"]
        for account in ("prod", "staging")
        for region in (EAST, WEST)
    )
    assert "resize-images" not in out


def test_status_narrows_to_an_account_region_and_service(cli: Cli) -> None:
    """Flags pick the scope; the report covers exactly that."""
    result = run(cli, "--account", "staging", "--region", WEST, "--service", "ec2")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(
        "AWS status: 1 resource in 1 account x 1 region: 0 unhealthy, 0 degraded, 0 unknown"
    )
    assert "All scanned resources are healthy." in result.stdout
    assert "Partial failures" not in result.stdout


def test_status_takes_the_words_slack_takes_in_any_order(cli: Cli) -> None:
    """`agentbot aws status staging ec2 eu-west-1`, as the README and `/agent aws status`
    write it, checks the same scope as the flags; a word that is none of them is refused."""
    result = run(cli, "ec2", "staging", WEST)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(
        "AWS status: 1 resource in 1 account x 1 region: 0 unhealthy"
    )

    result = run(cli, "staging", "lunch")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("agentbot: `lunch` is not a configured account, a region")
    assert len(result.stderr.splitlines()) == 1


def test_bad_scope_is_one_line_and_a_non_zero_exit(cli: Cli) -> None:
    """An unconfigured region or unknown account is refused before any AWS call."""
    result = run(cli, "--region", "ap-south-1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"agentbot: region ap-south-1 is not configured; configured: {EAST}, {WEST}\n"
    )

    result = run(cli, "--account", "nope")
    assert (result.returncode, result.stderr) == (
        2,
        "agentbot: unknown account nope; configured: prod, staging\n",
    )
