"""`agentbot worker` masks, in its log lines, what its MCP servers' secrets resolve to."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from redis import Redis
from rq import Queue

from sandbox.sample import make_sample_repo

ROOT = Path(__file__).resolve().parents[2]
# No pattern would recognise it: only its exact value can mask it.
TOKEN = "plain-words-mcp-token-in-a-log"


def log_the_token() -> None:
    """Job: a log line quoting the token, as a step quoting a server's answer might."""
    logging.getLogger("agentbot.jobs").warning("the server answered %s", TOKEN)


def test_worker_logs_mask_the_mcp_servers_secrets(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    """The worker's log line shows [REDACTED] where the token was."""
    remote = make_sample_repo(tmp_path / "remote")
    config = tmp_path / "agentbot.toml"
    config.write_text(
        f"""
[[repos]]
name = "acme/calc"
git_url = "{remote}"

[agent]
workspace_dir = "{tmp_path / "ws"}"

[agent.mcp.sentry]
command = "npx"
env = {{ SENTRY_ACCESS_TOKEN = "env:SENTRY_MCP_TOKEN" }}
tools = ["get_issue_details"]
"""
    )
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    Queue("default", connection=redis).enqueue(f"{__name__}.log_the_token")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "AGENTBOT_CONFIG": str(config),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SENTRY_MCP_TOKEN": TOKEN,
    }
    agentbot = Path(sys.executable).parent / "agentbot"
    run = subprocess.run(
        [str(agentbot), "worker", "default", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    redis.flushdb()
    redis.close()

    assert run.returncode == 0, run.stderr
    assert "the server answered [REDACTED]" in run.stderr, run.stderr
    assert TOKEN not in run.stderr + run.stdout
