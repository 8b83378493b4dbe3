"""Configuring the coding agent and how repos map to GitHub."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.claude_code import ClaudeCodeRunner
from agents.codex import CodexRunner
from agents.config import AgentConfig
from agents.runner import CliExecutor, CliPlanner
from bot.runtime import agent_factory, cli_options
from jobs.config import RepoConfig


@pytest.mark.parametrize(
    ("git_url", "expected"),
    [
        ("https://github.com/acme/calc.git", "acme/calc"),
        ("https://github.com/acme/calc", "acme/calc"),
        ("git@github.com:acme/calc.git", "acme/calc"),
        ("ssh://git@github.com/acme/calc.git", "acme/calc"),
        ("https://gitlab.com/acme/calc.git", None),
        ("/srv/git/calc.git", None),
    ],
)
def test_github_repo_is_detected_from_a_github_url(git_url: str, expected: str | None) -> None:
    """A github.com remote gets pull requests without extra configuration."""
    assert RepoConfig(name="acme/calc", git_url=git_url).pull_request_repo == expected


def test_github_repo_can_be_set_for_enterprise() -> None:
    """An explicit github_repo wins (GitHub Enterprise remotes are not detected)."""
    repo = RepoConfig(
        name="acme/calc", git_url="https://git.acme.internal/acme/calc.git", github_repo="acme/c"
    )
    assert repo.pull_request_repo == "acme/c"
    with pytest.raises(ValidationError, match="owner/name"):
        RepoConfig(name="acme/calc", git_url="/x", github_repo="not a repo")


def test_role_overrides_keep_the_other_defaults() -> None:
    """`[agent.planner]` may change one key; the rest stay read-only defaults."""
    config = AgentConfig.model_validate(
        {"kind": "claude-code", "planner": {"allowed_tools": ["Read"]}}
    )
    assert config.planner.allowed_tools == ("Read",)
    assert config.planner.permission_mode == "dontAsk"
    assert "Write" in config.planner.disallowed_tools
    assert config.executor.permission_mode == "acceptEdits"


@pytest.mark.parametrize("name", ["SLACK_BOT_TOKEN", "GITHUB_TOKEN", "DATABASE_URL", "AWS_PROFILE"])
def test_bot_secrets_cannot_be_configured_into_the_agent(name: str) -> None:
    """Naming a bot secret in [agent] env or env_allow is a configuration error."""
    with pytest.raises(ValidationError, match="never reaches the agent"):
        AgentConfig(env={name: "x"})
    with pytest.raises(ValidationError, match="never reaches the agent"):
        AgentConfig(env_allow=(name,))


def test_factory_builds_the_configured_cli_agents() -> None:
    """claude-code and codex build real CLI agents with the configured limits."""
    claude = agent_factory(AgentConfig(kind="claude-code", model="claude-sonnet-4-5"))
    assert isinstance(claude.planner, CliPlanner) and isinstance(claude.executor, CliExecutor)
    assert isinstance(claude.planner.runner, ClaudeCodeRunner) and not claude.scripted
    assert claude.planner.name == "Claude Code"
    codex = agent_factory(AgentConfig(kind="codex"))
    assert isinstance(codex.executor, CliExecutor)
    assert isinstance(codex.executor.runner, CodexRunner)
    options = cli_options(AgentConfig(kind="codex", timeout_seconds=60, max_turns=5))
    assert (options.command, options.agent.timeout_seconds, options.agent.max_turns) == (
        "codex",
        60,
        5,
    )
    assert options.permissions("planner").sandbox == "danger-full-access"
    assert options.permissions("executor").sandbox == "danger-full-access"
