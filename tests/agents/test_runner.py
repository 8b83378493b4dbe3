"""The CLI runner around a real child process: environment, stopping, failing, retrying."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.base import AgentError, RepoSpec, TaskBrief
from agents.claude_code import ClaudeCodeRunner, claude_environment
from agents.runner import CliOptions, CliPlanner
from sandbox.sample import PLAN
from tests.agents.fake_cli import FakeCli, agent_options, init, result, tool, with_timeout
from tests.procs import sandboxed

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-secret-slack",
    "SLACK_SIGNING_SECRET": "secret-signing",
    "DATABASE_URL": "postgresql://agentbot:secret-db@db/agentbot",
    "REDIS_URL": "redis://:secret-redis@redis:6379/0",
    "GITHUB_TOKEN": "ghp_secret_github",
    "GH_TOKEN": "ghp_secret_gh",
    "AWS_ACCESS_KEY_ID": "AKIASECRET",
    "AWS_SECRET_ACCESS_KEY": "secret-aws",
    "AWS_SESSION_TOKEN": "secret-session",
    "AGENTBOT_GIT_TOKEN": "secret-git",
}


@pytest.fixture
def fake(tmp_path: Path) -> FakeCli:
    return FakeCli(tmp_path / "cli")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    return path


def run(
    options: CliOptions,
    workspace: Path,
    prompt: str = "go",
    seen: list[str] | None = None,
    cancelled: object = None,
) -> object:
    return ClaudeCodeRunner(options).run(
        prompt,
        system="rules",
        workspace=workspace,
        role="executor",
        progress=(seen if seen is not None else []).append,
        cancelled=cancelled or (lambda: False),  # type: ignore[arg-type]
    )


def wait_for_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_no_bot_secret_reaches_the_agent(
    fake: FakeCli, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child sees its own key, HOME and PATH, and none of the bot's secrets."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-agent-key")
    monkeypatch.setenv("CLAUDE_CODE_USE_BEDROCK", "0")
    monkeypatch.setenv("UNRELATED_SETTING", "not-for-the-agent")
    fake.script({"lines": [init(), result("ok")]})
    home = tmp_path / "agent-home"
    run(fake.options(home=str(home), env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}), workspace)

    env = fake.calls()[0]["env"]
    dumped = json.dumps(env)
    for name, value in SECRETS.items():
        assert name not in env and value not in dumped, name
    assert "UNRELATED_SETTING" not in env
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-agent-key"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert env["CLAUDE_CODE_USE_BEDROCK"] == "0"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["HOME"] == str(home / workspace.name) and env["PATH"] == os.environ["PATH"]
    assert fake.calls()[0]["cwd"] == str(workspace)


def test_allowlist_is_built_from_the_source_given(tmp_path: Path) -> None:
    """Only allowlisted names are copied, whatever else the bot's environment holds."""
    source = {**SECRETS, "PATH": "/bin", "HOME": "/root", "CLAUDE_CODE_MAX_RETRIES": "2"}
    options = agent_options(tmp_path, command="claude", env_allow=["SSH_AUTH_SOCK"])
    env = claude_environment(options, source)
    assert set(env) == {
        "PATH",
        "HOME",
        "CLAUDE_CODE_MAX_RETRIES",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        "DISABLE_AUTOUPDATER",
        "PYTHONDONTWRITEBYTECODE",
    }


def test_progress_arrives_while_the_cli_runs(fake: FakeCli, workspace: Path) -> None:
    """Tool calls become progress lines; the result gives session, turns and cost."""
    fake.script(
        {
            "lines": [
                init("sess-42"),
                tool("Edit", {"file_path": str(workspace / "src" / "auth.py")}, "sess-42"),
                tool("Bash", {"command": "python -m pytest -q"}, "sess-42"),
                result("Fixed.", session="sess-42", turns=6, cost=0.31),
            ]
        }
    )
    seen: list[str] = []
    outcome = run(fake.options(), workspace, seen=seen)
    assert seen == ["Claude Code started (claude-test)", "Editing src/auth.py", "Running pytest"]
    assert outcome.session_id == "sess-42"  # type: ignore[attr-defined]
    assert outcome.turns == 6 and outcome.cost_usd == 0.31  # type: ignore[attr-defined]


def test_timeout_kills_the_cli_and_what_it_started(fake: FakeCli, workspace: Path) -> None:
    """The hard timeout kills the group, including children in sessions of their own."""
    marker = workspace / "grandchild.pid"
    fake.script({"lines": [init()], "spawn": f"echo $$ > {marker}; exec sleep 60", "sleep": 60})
    started = time.monotonic()
    with pytest.raises(AgentError, match=r"did not finish within 1 s, so it was stopped"):
        run(with_timeout(fake.options(), 1), workspace)
    assert time.monotonic() - started < 10
    grandchild = int(wait_for_file(marker))
    assert not sandboxed(grandchild, workspace)


def test_cancel_stops_the_run(fake: FakeCli, workspace: Path) -> None:
    """Once `cancelled()` turns true the process group is killed and the step says so."""
    marker = workspace / "grandchild.pid"
    fake.script({"lines": [init()], "spawn": f"echo $$ > {marker}; exec sleep 60", "sleep": 60})
    deadline = time.monotonic() + 1.0
    with pytest.raises(AgentError, match=r"^Cancelled\.$"):
        run(fake.options(), workspace, cancelled=lambda: time.monotonic() > deadline)
    assert not sandboxed(int(wait_for_file(marker)), workspace)


def quiet_lingerer(tmp_path: Path) -> Path:
    """A CLI that prints its result, closes its output, and then keeps running."""
    program = tmp_path / "lingering-cli"
    line = json.dumps(result("done"))
    program.write_text(
        f"#!{sys.executable}\nimport os, time\nprint({line!r}, flush=True)\n"
        "os.close(1)\nos.close(2)\ntime.sleep(60)\n"
    )
    program.chmod(0o755)
    return program


def test_timeout_holds_after_the_cli_closes_its_output(tmp_path: Path, workspace: Path) -> None:
    """A CLI that closes stdout but does not exit is still stopped at the deadline."""
    options = with_timeout(agent_options(tmp_path, command=str(quiet_lingerer(tmp_path))), 1)
    with pytest.raises(AgentError, match=r"did not finish within 1 s, so it was stopped"):
        run(options, workspace)


def test_cancel_holds_after_the_cli_closes_its_output(tmp_path: Path, workspace: Path) -> None:
    """Cancelling still stops a CLI that has closed its output but lingers."""
    options = agent_options(tmp_path, command=str(quiet_lingerer(tmp_path)), timeout_seconds=600)
    deadline = time.monotonic() + 1.0
    with pytest.raises(AgentError, match=r"^Cancelled\.$"):
        run(options, workspace, cancelled=lambda: time.monotonic() > deadline)


def test_unreadable_output_fails_readably(fake: FakeCli, workspace: Path) -> None:
    """Output that is not stream-json fails the step and quotes what came instead."""
    fake.script({"lines": ["Welcome to the CLI!", "{not json"], "exit": 0})
    with pytest.raises(AgentError, match=r"output could not be read \(exit 0\): Welcome"):
        run(fake.options(), workspace)


def test_non_zero_exit_fails_with_stderr(fake: FakeCli, workspace: Path) -> None:
    """A CLI that dies says why, from its stderr."""
    fake.script({"lines": [init()], "stderr": "Error: Invalid API key\n", "exit": 1})
    with pytest.raises(AgentError, match=r"exited with status 1 without a result: Error: Invalid"):
        run(fake.options(), workspace)


def test_is_error_result_fails(fake: FakeCli, workspace: Path) -> None:
    """`is_error: true` fails the step with the CLI's own message."""
    fake.script({"lines": [init(), result("Not logged in", is_error=True)], "exit": 1})
    with pytest.raises(AgentError, match=r"reported an error: Not logged in"):
        run(fake.options(), workspace)


def test_missing_cli_is_a_readable_failure(tmp_path: Path, workspace: Path) -> None:
    """A command that does not exist fails the step, naming it."""
    with pytest.raises(AgentError, match=r"could not be started"):
        run(agent_options(tmp_path, command="/nonexistent/claude"), workspace)


BRIEF = TaskBrief(
    "T-3",
    "fix the discount; $(touch pwned) `touch pwned2` && rm -rf ~ | cat > /dev/null",
    RepoSpec("acme/calc", "/srv/calc.git", "main", "python -m pytest -q"),
)


def test_planner_retries_once_with_a_correction(fake: FakeCli, workspace: Path) -> None:
    """An invalid plan gets one corrective retry in the same session, then is accepted."""
    fake.script(
        {"lines": [init("sess-p"), result("The bug is in pricing.", session="sess-p", turns=4)]},
        {"lines": [init("sess-p"), result(json.dumps(PLAN), session="sess-p", turns=1)]},
    )
    outcome = CliPlanner(ClaudeCodeRunner(fake.options())).plan(
        BRIEF, workspace, progress=lambda _: None, cancelled=lambda: False
    )
    assert outcome.plan.summary == PLAN["summary"]
    assert (outcome.run.turns, outcome.run.session_id) == (5, "sess-p")
    assert outcome.run.cost_usd == pytest.approx(0.04)
    first, second = (call["argv"] for call in fake.calls())
    assert first[first.index("--permission-mode") + 1] == "dontAsk"
    assert "Write" in first[first.index("--disallowedTools") + 1]
    assert second[second.index("--resume") + 1] == "sess-p"
    assert "contained no JSON object" in second[second.index("-p") + 1]
    # The description reached the CLI as text inside one argument; nothing ran it.
    assert BRIEF.description in first[first.index("-p") + 1]
    assert not list(workspace.glob("pwned*"))


def test_planner_fails_clearly_after_the_retry(fake: FakeCli, workspace: Path) -> None:
    """Two invalid answers fail planning with what was wrong."""
    fake.script({"lines": [init(), result('{"summary": "only this"}')]})
    with pytest.raises(AgentError, match=r"did not return a valid plan, even when asked again"):
        CliPlanner(ClaudeCodeRunner(fake.options())).plan(
            BRIEF, workspace, progress=lambda _: None, cancelled=lambda: False
        )
    assert len(fake.calls()) == 2


def test_planner_that_edits_files_is_refused(fake: FakeCli, workspace: Path) -> None:
    """Planning may only read: a plan that came with file changes is not accepted."""
    fake.script({"lines": [init(), result(json.dumps(PLAN))], "write": {"pricing.py": "x = 1\n"}})
    with pytest.raises(AgentError, match=r"changed files while planning"):
        CliPlanner(ClaudeCodeRunner(fake.options())).plan(
            BRIEF, workspace, progress=lambda _: None, cancelled=lambda: False
        )
