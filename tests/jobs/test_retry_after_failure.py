"""A task whose execution failed half-way succeeds when retried from Slack.

The agent CLI (a stand-in executable speaking Claude Code's stream-json) writes the
failing test, then dies of an API error before fixing anything. The retry must start
from the branch as pushed, not from the half-done worktree: otherwise the bot's own
test run before any change is already red, and RED can never hold again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.config import AgentConfig
from jobs.config import AgentbotConfig
from sandbox.sample import PLAN, PRICING, TEST_DISCOUNT
from tests.agents.fake_cli import FakeCli, init, result, tool
from tests.conftest import APPROVER, git
from tests.slackclient import SlackUser, texts

BUGGY = "return round(price - percent, 2)"
FIXED = "return round(price * (1 - percent / 100), 2)"


def write_test_run() -> dict[str, object]:
    """The agent adds the failing test."""
    return {
        "write": {"tests/test_discount.py": TEST_DISCOUNT},
        "lines": [init(), tool("Write", {"file_path": "tests/test_discount.py"}), result("ok")],
    }


@pytest.fixture
def fake_agent(tmp_path: Path) -> FakeCli:
    """Plans, writes the test, dies of an API error; on retry writes the test and the fix."""
    fake = FakeCli(tmp_path / "agent-cli")
    fake.script(
        {"lines": [init(), result(json.dumps(PLAN))]},
        write_test_run(),
        {"lines": [init()], "stderr": "API Error: 529 Overloaded\n", "exit": 1},
        write_test_run(),
        {
            "write": {"pricing.py": PRICING.replace(BUGGY, FIXED)},
            "lines": [init(), tool("Edit", {"file_path": "pricing.py"}), result("fixed")],
        },
    )
    return fake


@pytest.fixture
def config(config: AgentbotConfig, fake_agent: FakeCli) -> AgentbotConfig:
    """The usual test configuration, with the stand-in CLI as Claude Code."""
    agent = AgentConfig(
        kind="claude-code",
        command=str(fake_agent.executable),
        timeout_seconds=60,
        workspace_dir=config.agent.workspace_dir,
        env={"FAKE_CLI_SCRIPT": str(fake_agent.directory / "script.json")},
        # It runs sandboxed as any agent does; it may also write its calls file.
        sandbox_writable=(str(fake_agent.directory),),
    )
    return config.model_copy(update={"agent": agent})


def test_retry_after_a_failed_execution_succeeds(
    user: SlackUser, sample_repo: Path, fake_agent: FakeCli
) -> None:
    """After the agent died mid-execution, /agent retry runs RED and GREEN afresh and succeeds."""
    user.command("run fix the discount calculation --repo acme/calc")
    user.work("default", "plan")
    user.command("approve T-1 go ahead", user=APPROVER)
    user.work("default", "execute")
    card = texts(user.card())
    assert "failed" in card and "529 Overloaded" in card

    response = user.command("retry T-1")
    assert response.status == 200
    user.work("default", "execute")

    outcome = texts(user.thread()[-1])
    assert "T-1 succeeded" in outcome, texts(user.card())
    assert "2 passed, 0 failed" in outcome  # the suite before any change, as pushed
    thread = "\n".join(texts(m) for m in user.thread())
    assert "RED as expected" in thread and "GREEN" in thread
    assert len(fake_agent.calls()) == 5
    assert FIXED in git("show", "agent/T-1:pricing.py", cwd=sample_repo)
    assert "def test_ten_percent_off_200_is_180" in git(
        "show", "agent/T-1:tests/test_discount.py", cwd=sample_repo
    )
