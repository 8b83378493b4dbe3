"""The agent CLI runs with a private HOME of its own, never the bot's, and no bot secret."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.claude_code import ClaudeCodeRunner, claude_environment
from agents.codex import codex_environment
from agents.config import AgentConfig
from bot.runtime import cli_options
from tests.agents.fake_cli import FakeCli, init, result

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-secret-slack",
    "DATABASE_URL": "postgresql://agentbot:secret-db@db/agentbot",
    "GITHUB_TOKEN": "ghp_secret_github",
    "GITHUB_WEBHOOK_SECRET": "secret-github-webhook",
    "SENTRY_CLIENT_SECRET": "secret-sentry-client",
    "JIRA_WEBHOOK_SECRET": "secret-jira-webhook",
    "AWS_SECRET_ACCESS_KEY": "secret-aws",
}


@pytest.fixture
def bot_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bot's own HOME, holding credentials the agent must not read."""
    home = tmp_path / "bot-home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = x\n")
    (home / ".netrc").write_text("machine github.com password ghp_netrc\n")
    monkeypatch.setenv("HOME", str(home))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return home


def test_the_agent_runs_in_a_private_home_under_the_workspace_dir(
    tmp_path: Path, bot_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default the CLI's HOME is the task's own under `<workspace_dir>/home`, mode 0700,
    and no secret is set."""
    monkeypatch.chdir(tmp_path)
    fake = FakeCli(tmp_path / "cli")
    fake.script({"lines": [init(), result("ok")]})
    config = AgentConfig(
        kind="claude-code",
        command=str(fake.executable),
        workspace_dir="workspaces",
        env={"FAKE_CLI_SCRIPT": str(fake.directory / "script.json")},
        sandbox_writable=(str(fake.directory),),
    )
    workspace = tmp_path / "repo"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)

    ClaudeCodeRunner(cli_options(config)).run(
        "go",
        system="rules",
        workspace=workspace,
        role="executor",
        progress=lambda line: None,
        cancelled=lambda: False,
    )

    env = fake.calls()[0]["env"]
    root = tmp_path / "workspaces" / "home"
    home = root / workspace.name
    assert env["HOME"] == str(home.resolve()) != str(bot_home)
    assert stat.S_IMODE(home.stat().st_mode) == stat.S_IMODE(root.stat().st_mode) == 0o700
    dumped = json.dumps(env)
    for name, value in SECRETS.items():
        assert name not in env and value not in dumped, name
    assert not (home / ".aws").exists() and not (home / ".netrc").exists()


def test_an_explicit_home_and_claude_config_dir_are_honoured(
    tmp_path: Path, bot_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator may point the CLI at its own sign-in: a configured HOME or config dir."""
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(bot_home / ".claude"))
    chosen = tmp_path / "agent-home"
    options = cli_options(AgentConfig(kind="claude-code", home=str(chosen)))
    env = claude_environment(options)
    assert env["HOME"] == str(chosen) and env["CLAUDE_CONFIG_DIR"] == str(bot_home / ".claude")
    assert codex_environment(options)["HOME"] == str(chosen)
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "name", ["GITHUB_WEBHOOK_SECRET", "SENTRY_CLIENT_SECRET", "JIRA_WEBHOOK_SECRET"]
)
def test_webhook_secrets_cannot_be_handed_to_the_agent(name: str) -> None:
    """A webhook secret named in `[agent] env` or `env_allow` is refused at load time."""
    with pytest.raises(ValidationError, match="never reaches the agent"):
        AgentConfig(env={name: "x"})
    with pytest.raises(ValidationError, match="never reaches the agent"):
        AgentConfig(env_allow=(name,))
