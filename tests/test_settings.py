"""Configuration: the environment, the TOML file, and one-line errors naming the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ConfigError, Settings, load_config_file


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
