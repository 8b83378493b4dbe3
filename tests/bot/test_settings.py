"""Configuration: the environment, the TOML file, and one-line errors naming the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ConfigError, Settings, load_config_file
from tests.services import free_port


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agentbot.toml"
    path.write_text(text)
    return path


def test_full_config_file_is_read(tmp_path: Path) -> None:
    """Repos, access, channels and the agent are read from the TOML file."""
    config = load_config_file(
        write(
            tmp_path,
            """
[[repos]]
name = "acme/web"
git_url = "git@github.com:acme/web.git"
test_command = "npm test"
channel = "CWEB"

[access]
requesters = ["U1", "SENG"]
approvers = ["U2"]
allow_self_approval = true
approvals_required = 2

[slack]
channels = ["CWEB"]
notification_channel = "CNOTIFY"
""",
        )
    )
    assert config.repo("ACME/web") is not None
    assert config.default_repo("CWEB") == config.repos[0]
    assert config.access.approvals_required == 2
    assert config.slack.notification_channel == "CNOTIFY"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[repos]]\nname = 'no-slash'\ngit_url = 'x'\n", "repos.0.name"),
        ("[access]\napprovals_required = 0\n", "access.approvals_required"),
        ("[access]\napprovers = 'U1'\n", "access.approvers"),
        ("[slak]\nchannels = []\n", "slak"),
        ("not toml at all = = =", "cannot read"),
    ],
)
def test_invalid_config_names_the_key_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    """Each invalid file fails with a single line naming what is wrong."""
    with pytest.raises(ConfigError) as caught:
        load_config_file(write(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    """A path that does not exist is reported as such."""
    with pytest.raises(ConfigError, match="file not found"):
        load_config_file(tmp_path / "nope.toml")


def test_slack_api_url_gets_its_trailing_slash() -> None:
    """SLACK_API_URL works with or without the trailing slash."""
    settings = Settings(_env_file=None, SLACK_API_URL="http://127.0.0.1:9/api")  # type: ignore[call-arg]
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"


def test_serve_without_secrets_fails_at_start_with_one_line(tmp_path: Path) -> None:
    """`agentbot serve` with no signing secret exits 2 and names the setting."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-1"}
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert (
        completed.stderr.strip() == "agentbot: configuration error: SLACK_SIGNING_SECRET is not set"
    )


def test_bad_port_fails_with_one_line(tmp_path: Path) -> None:
    """An invalid PORT names PORT."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PORT": "seventy"}
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "PORT" in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["serve", "socket", "worker", "cron", "migrate"])
def test_every_subcommand_has_help(command: str) -> None:
    """`agentbot <command> --help` describes the command."""
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0
    assert "usage: agentbot " + command in completed.stdout


AGENTBOT = str(Path(sys.executable).with_name("agentbot"))
EVERY_START = [
    ["serve"],
    ["socket"],
    ["worker", "--burst"],
    ["cron"],
    ["migrate"],
    ["aws", "status"],
    ["aws", "cost"],
    ["aws", "optimize"],
]


def start(tmp_path: Path, args: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `agentbot` script with Slack credentials and `variables` only."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "signing",
        "SLACK_APP_TOKEN": "xapp-1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'agentbot.db'}",
        **variables,
    }
    return subprocess.run(
        [AGENTBOT, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def assert_one_line_naming(completed: subprocess.CompletedProcess[str], name: str) -> None:
    """The process failed with a single stderr line about `name` and no traceback."""
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr + completed.stdout
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("agentbot: configuration error: " + name), lines[0]


@pytest.mark.parametrize("args", EVERY_START, ids=" ".join)
def test_missing_config_file_fails_every_command_at_start(tmp_path: Path, args: list[str]) -> None:
    """A missing AGENTBOT_CONFIG file is named in one line, before anything starts or forks."""
    completed = start(tmp_path, args, AGENTBOT_CONFIG=str(tmp_path / "missing.toml"))
    assert_one_line_naming(completed, "AGENTBOT_CONFIG: file not found")


@pytest.mark.parametrize("args", [["serve"], ["worker", "--burst"], ["migrate"]], ids=" ".join)
def test_invalid_config_file_fails_at_start_naming_the_key(tmp_path: Path, args: list[str]) -> None:
    """An invalid key in the config file stops serve (before gunicorn forks) and the others."""
    path = write(tmp_path, "[access]\napprovals_required = 0\n")
    completed = start(tmp_path, args, AGENTBOT_CONFIG=str(path))
    assert_one_line_naming(completed, "AGENTBOT_CONFIG: access.approvals_required")
    assert not (tmp_path / "agentbot.db").exists()


@pytest.mark.parametrize("args", EVERY_START[:6], ids=" ".join)
@pytest.mark.parametrize(
    ("name", "value"), [("DATABASE_URL", "not a url"), ("REDIS_URL", "http://127.0.0.1:6379/0")]
)
def test_invalid_database_or_redis_url_fails_every_command_at_start(
    tmp_path: Path, args: list[str], name: str, value: str
) -> None:
    """A malformed DATABASE_URL or REDIS_URL is named in one line by every command."""
    completed = start(tmp_path, args, **{name: value})
    assert_one_line_naming(completed, name)


def test_dev_checks_only_the_variables_the_sandbox_reads(tmp_path: Path) -> None:
    """`agentbot dev` names a bad REDIS_URL, and not the DATABASE_URL its sandbox replaces."""
    completed = start(
        tmp_path, ["dev"], DATABASE_URL="not a url", REDIS_URL="http://127.0.0.1:6379/0"
    )
    assert_one_line_naming(completed, "REDIS_URL")


@pytest.mark.parametrize("value", ["nosuchdb://host/db", "mysql://user@host/db"])
def test_database_url_needs_a_known_kind_and_its_driver(tmp_path: Path, value: str) -> None:
    """An unknown database kind, or one whose driver is not installed, is named at start."""
    assert_one_line_naming(start(tmp_path, ["migrate"], DATABASE_URL=value), "DATABASE_URL")


def test_worker_without_bot_token_fails_at_start(tmp_path: Path) -> None:
    """Workers post to Slack, so `agentbot worker` refuses to start without SLACK_BOT_TOKEN."""
    completed = start(tmp_path, ["worker", "--burst"], SLACK_BOT_TOKEN="")
    assert_one_line_naming(completed, "SLACK_BOT_TOKEN is not set")


@pytest.mark.parametrize("args", [["worker", "--burst"], ["cron"]], ids=" ".join)
def test_unreachable_redis_is_named_at_start(tmp_path: Path, args: list[str]) -> None:
    """A worker or the scheduler whose Redis does not answer says so in one line."""
    completed = start(tmp_path, args, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert_one_line_naming(completed, "REDIS_URL: cannot reach Redis")


def test_unreachable_database_fails_migrate_without_a_traceback(tmp_path: Path) -> None:
    """`agentbot migrate` against a database that is down names DATABASE_URL, not a trace."""
    completed = start(
        tmp_path, ["migrate"], DATABASE_URL=f"postgresql://u:pw@127.0.0.1:{free_port()}/db"
    )
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("agentbot: configuration error: DATABASE_URL: cannot reach")
    assert ":pw@" not in completed.stderr
