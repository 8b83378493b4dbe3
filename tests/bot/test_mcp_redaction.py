"""What an MCP server's secret reference resolves to is masked wherever the bot posts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.scripted import ScriptedPlanner
from jobs.config import AgentbotConfig
from jobs.exceptions import AgentbotError
from sandbox.fakeslack import FakeSlack
from tests.slackclient import SlackUser, texts

# No pattern would recognise it: only its exact value can mask it.
TOKEN = "plain-words-sentry-mcp-token"


@pytest.fixture(autouse=True)
def token_in_the_bot_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_MCP_TOKEN", TOKEN)


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The test configuration plus an MCP server whose token is given by reference."""
    server: dict[str, Any] = {
        "command": "npx",
        "env": {"SENTRY_ACCESS_TOKEN": "env:SENTRY_MCP_TOKEN"},
        "tools": ["get_issue_details"],
    }
    agent = config.agent.model_validate({**config.agent.model_dump(), "mcp": {"sentry": server}})
    return config.model_copy(update={"agent": agent})


def test_a_resolved_mcp_secret_quoted_in_an_error_reaches_slack_masked(
    user: SlackUser, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's token, quoted verbatim by a failing step, is masked in the thread."""

    def fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AgentbotError(f"the server answered with {TOKEN} in its body")

    monkeypatch.setattr(ScriptedPlanner, "plan", fail)
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.work("default")

    assert "the server answered with [REDACTED] in its body" in texts(user.thread()[-1])
    assert TOKEN not in "\n".join(json.dumps(call.params, default=str) for call in slack.calls)
