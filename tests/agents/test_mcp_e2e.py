"""End to end: the planner reads a Sentry issue through an MCP server; the executor cannot.

The real Claude Code CLI, driven by the scripted model, starts a small stdio MCP server
(`tests/fakes/mcp_server.py`, built on the official SDK) from the configuration the bot
writes for the planning run. The server's token is given by reference to the bot's
environment; the server records what it saw, so the test can tell where it went.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.config import AgentConfig
from bot import blocks
from bot.settings import Settings
from jobs import work
from jobs.config import AccessConfig, AgentbotConfig, JobConfig, RepoConfig
from sandbox.fakeslack import FakeSlack
from tests.agents.test_claude_e2e import (
    MODEL,
    ScriptedBrain,
    green_script,
    plan_message,
    plan_script,
    red_script,
    task_row,
    worktree,
)
from tests.conftest import APPROVER, BOT_TOKEN, REQUESTER, SIGNING_SECRET
from tests.fakes.anthropic_server import FakeAnthropicServer, Reply, tool_result_text
from tests.fakes.claude_cli import ensure_claude_cli
from tests.fakes.github_server import FakeGitHub
from tests.fakes.mcp_server import STACK_TRACE, TOOL
from tests.slackclient import SlackUser

SECRET = "sntrys_e2e-secret-sentry-token-4f1c"
SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py"
LOOKUP = Reply.tool(f"mcp__sentry__{TOOL}", {"issue_id": "4211"}, tool_id="toolu_sentry_plan")
TRY_LOOKUP = Reply.tool(f"mcp__sentry__{TOOL}", {"issue_id": "4211"}, tool_id="toolu_sentry_red")


@pytest.fixture(scope="module")
def claude() -> Path:
    import shutil

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the Claude Code CLI cannot be fetched")
    return ensure_claude_cli()


@pytest.fixture
def brain() -> ScriptedBrain:
    return ScriptedBrain()


@pytest.fixture
def model(brain: ScriptedBrain) -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(brain) as server:
        yield server


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def record(tmp_path: Path) -> Path:
    """Where the MCP server writes what it saw on each call."""
    (tmp_path / "mcp-record").mkdir()
    return tmp_path / "mcp-record" / "calls.json"


@pytest.fixture
def config(
    sample_repo: Path, tmp_path: Path, claude: Path, model: FakeAnthropicServer, record: Path
) -> AgentbotConfig:
    """Claude Code as the agent; a Sentry MCP server for the planner only."""
    return AgentbotConfig.model_validate(
        {
            "repos": [
                RepoConfig(
                    name="acme/calc",
                    git_url=str(sample_repo),
                    test_command="python -m pytest -q",
                    github_repo="acme/calc",
                ).model_dump()
            ],
            "access": AccessConfig(requesters=(REQUESTER, APPROVER), approvers=(APPROVER,)),
            "agent": AgentConfig.model_validate(
                {
                    "kind": "claude-code",
                    "command": str(claude),
                    "model": MODEL,
                    "max_turns": 12,
                    "timeout_seconds": 90,
                    "workspace_dir": str(tmp_path / "workspaces"),
                    "home": str(tmp_path / "agent-home"),
                    "env": {
                        "ANTHROPIC_BASE_URL": model.base_url,
                        "ANTHROPIC_API_KEY": "sk-ant-e2e-fake-key",
                        "CLAUDE_CODE_MAX_RETRIES": "1",
                        "NO_PROXY": "127.0.0.1,localhost",
                    },
                    # The server runs inside the agent's sandbox: its program is shown
                    # read-only and its record is the one place it may write, as an
                    # operator would allow a server's own files.
                    "sandbox_read_only": [str(SERVER_SCRIPT.parent)],
                    "sandbox_writable": [str(record.parent)],
                    "mcp": {
                        "sentry": {
                            "command": sys.executable,
                            # The bare remote is on the host, never bound in.
                            "args": [str(SERVER_SCRIPT), str(record), str(sample_repo)],
                            "env": {"SENTRY_ACCESS_TOKEN": "env:SENTRY_AUTH_TOKEN"},
                            "roles": ["planner"],
                            "tools": [TOOL],
                        }
                    },
                }
            ),
            "jobs": JobConfig(max_retries=0),
        }
    )


@pytest.fixture
def settings(database_url: str, redis_url: str, slack: FakeSlack, github: FakeGitHub) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        GITHUB_TOKEN=github.token,
        GITHUB_API_URL=github.url,
    )


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's token in the bot's environment; every progress line shown."""
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", SECRET)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    monkeypatch.setenv("PATH", path)
    monkeypatch.setattr(work, "PROGRESS_INTERVAL_SECONDS", 0.0)


def files_holding(root: Path, text: str) -> list[Path]:
    """Files under `root` whose bytes contain `text`."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and text.encode() in path.read_bytes()
    ]


def test_planner_reads_sentry_through_mcp_and_the_executor_cannot(
    user: SlackUser,
    slack: FakeSlack,
    model: FakeAnthropicServer,
    brain: ScriptedBrain,
    config: AgentbotConfig,
    record: Path,
    tmp_path: Path,
    sample_repo: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The planner's MCP tool answers the model; the executor has no such tool; the token
    is in the server's environment and nowhere else."""
    wt = worktree(config)
    brain.scripts = {
        "plan": [LOOKUP, *plan_script(wt)],
        "red": [TRY_LOOKUP, *red_script(wt)],
        "green": green_script(wt),
    }
    user.command("run the 10% discount gives 190 instead of 180 --repo acme/calc")
    user.work("default", "plan")
    assert task_row(user).state == "awaiting_approval", task_row(user).error

    # The tool's answer reached the model's next request.
    answer = model.tool_result_for("toolu_sentry_plan")
    assert answer is not None and not answer.get("is_error")
    assert STACK_TRACE.splitlines()[0] in tool_result_text(answer)
    # The thread names the call as it names other tools.
    shown = [c.params.get("text", "") for c in slack.calls_to("chat.update")]
    assert any("Sentry: get_issue_events 4211" in text for text in shown), shown

    user.click(plan_message(user), blocks.APPROVE, APPROVER)
    user.work("default", "execute")
    assert task_row(user).state == "succeeded", task_row(user).error

    # The executor was not given the server: the tool does not exist in its runs.
    refused = model.tool_result_for("toolu_sentry_red")
    assert refused is not None and refused.get("is_error")
    assert "No such tool available" in tool_result_text(refused)
    calls = json.loads(record.read_text())
    assert [call["issue_id"] for call in calls] == ["4211"]

    # The token: in the server's environment, not in the agent's (the CLI that started it).
    (call,) = calls
    # The server ran inside the agent's sandbox, as the CLI's child.
    assert call["probe_visible"] is False and sample_repo.exists()
    assert call["env"]["SENTRY_ACCESS_TOKEN"] == SECRET
    assert call["parent_argv"][0] == config.agent.command
    assert SECRET not in json.dumps(call["parent_env"])
    # The run's MCP file was outside the worktree and is gone.
    mcp_file = Path(call["parent_argv"][call["parent_argv"].index("--mcp-config") + 1])
    assert not mcp_file.exists() and not mcp_file.is_relative_to(wt)
    # Nor in what the model was sent, what Slack got, any file the agent could leave it
    # in (worktree, its home, the remote), or any log line.
    assert SECRET not in json.dumps([r.body for r in model.requests])
    assert SECRET not in json.dumps([c.params for c in slack.calls])
    assert files_holding(tmp_path, SECRET) == [record]
    out, err = capfd.readouterr()
    assert SECRET not in out and SECRET not in err
