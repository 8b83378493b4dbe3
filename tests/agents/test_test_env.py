"""Commands from the repository run with the agent's home, never the bot's HOME."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from agents.base import Plan, RepoSpec, TaskBrief
from agents.scripted import SCRIPT_PATH, ScriptedExecutor
from agents.testing import run_tests
from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from sandbox.sample import PLAN
from tests.conftest import APPROVER
from tests.slackclient import SlackUser

NETRC_SECRET = "ghp_from_the_bots_netrc"
# Prints what a test would find by default, without naming any of the bot's paths.
SHOW = (
    'printf "home=%s\\nconfig=%s\\n" "$HOME" "$XDG_CONFIG_HOME"; '
    'cat ~/.netrc 2>/dev/null; cat "$XDG_CONFIG_HOME/gh/hosts.yml" 2>/dev/null; '
    'printf "token=%s\\n" "${GITHUB_TOKEN:-none}"'
)


@pytest.fixture
def bot_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bot's own HOME, with credentials in the places tools look by default."""
    home = tmp_path / "bot-home"
    gh = home / ".config" / "gh"
    gh.mkdir(parents=True)
    (gh / "hosts.yml").write_text(f"github.com:\n  oauth_token: {NETRC_SECRET}\n")
    (home / ".netrc").write_text(f"machine github.com password {NETRC_SECRET}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GITHUB_TOKEN", NETRC_SECRET)
    return home


def test_the_test_command_runs_with_the_agents_home(tmp_path: Path, bot_home: Path) -> None:
    """HOME and XDG_CONFIG_HOME are the agent's home: ~/.netrc and gh's login are not found."""
    agent_home = tmp_path / "workspaces" / "home"
    run = run_tests(SHOW, tmp_path, timeout=60, home=str(agent_home))
    assert f"home={agent_home}\n" in run.output_tail
    assert f"config={agent_home / '.config'}\n" in run.output_tail
    assert "token=none" in run.output_tail
    assert NETRC_SECRET not in run.output_tail
    assert stat.S_IMODE(agent_home.stat().st_mode) == 0o700


def test_without_an_agent_home_the_test_command_gets_a_throwaway_one(
    tmp_path: Path, bot_home: Path
) -> None:
    """No home given: an empty private directory, removed afterwards, never the bot's."""
    run = run_tests(SHOW, tmp_path, timeout=60)
    home = next(line for line in run.output_tail.splitlines() if line.startswith("home="))
    used = Path(home.removeprefix("home="))
    assert used != bot_home and not used.is_relative_to(bot_home)
    assert not used.exists()
    assert NETRC_SECRET not in run.output_tail


def test_the_scripted_agents_command_runs_with_the_agents_home(
    tmp_path: Path, bot_home: Path
) -> None:
    """A script's command, like the test command, finds the agent's home, not the bot's."""
    workspace = tmp_path / "repo"
    (workspace / SCRIPT_PATH).parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    script = {
        "scenarios": [
            {"match": ["home"], "plan": PLAN, "command": ["sh", "-c", f"{{ {SHOW}; }} > seen"]}
        ]
    }
    (workspace / SCRIPT_PATH).write_text(json.dumps(script))
    agent_home = tmp_path / "workspaces" / "home"
    brief = TaskBrief("T-1", "check home", RepoSpec("acme/calc", "/srv/calc.git", "main", "true"))

    ScriptedExecutor(home=str(agent_home)).write_failing_test(
        brief, Plan.model_validate(PLAN), workspace, lambda _: None, lambda: False
    )

    seen = (workspace / "seen").read_text()
    task_home = agent_home / "repo"
    assert f"home={task_home}\n" in seen and f"config={task_home / '.config'}\n" in seen
    assert NETRC_SECRET not in seen and "token=none" in seen


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The sample repo, its test command prefixed with a look at what it would find."""
    repo = config.repos[0]
    command = f"{SHOW}; {repo.test_command}"
    return config.model_copy(update={"repos": (repo.model_copy(update={"test_command": command}),)})


def test_the_bots_own_test_runs_use_the_agents_home(
    user: SlackUser, config: AgentbotConfig, bot_home: Path
) -> None:
    """Through the real app, the runs before and in RED see the agent's home; GREEN, run as
    in a fresh clone, a new empty one; none sees the bot's."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "succeeded", task.error
    agent_home = Path(str(config.agent.home)).resolve() / "T-1"
    for run in ("tests_before", "tests_red"):
        output = task.result[run]["output_tail"]
        assert f"home={agent_home}\n" in output and "token=none" in output, run
        assert NETRC_SECRET not in output
    green = task.result["tests_after"]["output_tail"]
    home = Path(next(line for line in green.splitlines() if line.startswith("home="))[5:])
    assert home not in (agent_home, bot_home) and not home.is_relative_to(bot_home)
    assert "token=none" in green and NETRC_SECRET not in green
