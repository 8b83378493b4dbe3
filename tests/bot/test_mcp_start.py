"""`agentbot worker` will not start while a secret its MCP servers refer to is unset."""

from __future__ import annotations

from pathlib import Path

from tests.bot.test_settings import assert_one_line_naming, start, write

CONFIG = """
[[repos]]
name = "acme/web"
git_url = "https://github.com/acme/web.git"

[agent]
kind = "claude-code"

[agent.mcp.sentry]
command = "npx"
args = ["-y", "@sentry/mcp-server@latest"]
env = { SENTRY_ACCESS_TOKEN = "env:SENTRY_MCP_TOKEN" }
tools = ["get_issue_details"]
"""


def test_worker_without_an_mcp_servers_secret_fails_at_start(tmp_path: Path) -> None:
    """The worker names the server and the variable in one line, before it takes any job."""
    completed = start(tmp_path, ["worker", "--burst"], AGENTBOT_CONFIG=str(write(tmp_path, CONFIG)))
    assert_one_line_naming(completed, "agent.mcp.sentry: SENTRY_MCP_TOKEN is not set")
