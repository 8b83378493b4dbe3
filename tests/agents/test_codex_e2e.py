"""End to end with the real Codex CLI: `/agent run` to a verified pull request.

The CLI is installed from npm (pinned; see `tests/fakes/codex_cli.py`) and pointed, as
a model provider, at a scripted model on loopback that speaks the OpenAI Responses
streaming API. The "model" only decides which tools to call; Codex really runs `grep`
and `pytest` through its shell tool and applies the patches through its own
`apply_patch`. The remote is a bare git repo on disk, GitHub is a fake API on loopback,
Slack is the fake Slack, and the database and queues are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.base import RepoSpec
from agents.config import AgentConfig
from agents.workspace import Workspaces
from bot import blocks
from bot.settings import Settings
from jobs import work
from jobs.config import AccessConfig, AgentbotConfig, JobConfig, RepoConfig
from jobs.models import Task
from jobs.tasks import get_task
from sandbox.fakeslack import FakeSlack
from sandbox.sample import PLAN, TEST_DISCOUNT
from tests.conftest import APPROVER, APPROVER_2, BOT_TOKEN, REQUESTER, SIGNING_SECRET, git
from tests.fakes.codex_cli import MODEL, ensure_codex_cli
from tests.fakes.github_server import FakeGitHub
from tests.fakes.responses_server import (
    FakeResponsesServer,
    Reply,
    input_items,
    is_model_output,
    item_text,
)
from tests.procs import sandboxed
from tests.slackclient import SlackUser, texts

BUGGY = "    return round(price - percent, 2)"
FIXED = "    return round(price * (1 - percent / 100), 2)"
PROVIDER_KEY = "sk-codex-e2e-provider-key"
# Values the bot has and the agent must never see.
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-codex-secret-slack",
    "DATABASE_URL": "postgresql://bot:codex-secret-db@db/agentbot",
    "GITHUB_TOKEN": "ghp_codex_secret_github",
    "AWS_SECRET_ACCESS_KEY": "codex-secret-aws",
}


class ScriptedBrain:
    """Answers each Responses request from the script of the phase it belongs to.

    The phase is read from the user message that opened the current segment of the
    conversation ("Phase: plan.", "Phase: red.", ...); the step is how many calls and
    messages the model has produced since, so a resumed thread continues where it should.
    """

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.prompts: dict[str, str] = {}

    def __call__(self, request: dict[str, Any]) -> Reply:
        items = input_items(request)
        start, phase = 0, "unknown"
        for index, item in enumerate(items):
            is_user = item.get("type") == "message" and item.get("role") == "user"
            text = item_text(item) if is_user else ""
            if "Phase: " in text:
                start = index
                phase = text.split("Phase: ", 1)[1].split(".", 1)[0]
                self.prompts.setdefault(phase, text)
        step = sum(1 for item in items[start:] if is_model_output(item))
        replies = self.scripts.get(phase, [])
        return replies[step] if step < len(replies) else Reply.message(f"(no script: {phase})")


@pytest.fixture(scope="module")
def codex() -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the Codex CLI cannot be fetched")
    return ensure_codex_cli()


@pytest.fixture
def brain() -> ScriptedBrain:
    return ScriptedBrain()


@pytest.fixture
def model(brain: ScriptedBrain) -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(brain) as server:
        yield server


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def agent_timeout() -> int:
    return 90


@pytest.fixture
def config(
    sample_repo: Path,
    tmp_path: Path,
    codex: Path,
    model: FakeResponsesServer,
    agent_timeout: int,
) -> AgentbotConfig:
    """The suite's configuration, with Codex as the agent and the repo on GitHub."""
    return AgentbotConfig(
        repos=(
            RepoConfig(
                name="acme/calc",
                git_url=str(sample_repo),
                test_command="python -m pytest -q",
                github_repo="acme/calc",
            ),
        ),
        access=AccessConfig(
            requesters=(REQUESTER, APPROVER, APPROVER_2), approvers=(APPROVER, APPROVER_2)
        ),
        agent=AgentConfig(
            kind="codex",
            command=str(codex),
            model=MODEL,
            timeout_seconds=agent_timeout,
            workspace_dir=str(tmp_path / "workspaces"),
            home=str(tmp_path / "agent-home"),
            env={"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": PROVIDER_KEY},
        ),
        jobs=JobConfig(max_retries=0),
    )


@pytest.fixture
def settings(database_url: str, redis_url: str, slack: FakeSlack, github: FakeGitHub) -> Settings:
    """The suite's settings plus GitHub access to the fake GitHub."""
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
    """The bot's own secrets in its environment; every progress line shown."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    # Codex's shell and the bot's test runs find this interpreter (with pytest).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    monkeypatch.setenv("PATH", path)
    monkeypatch.setattr(work, "PROGRESS_INTERVAL_SECONDS", 0.0)


def worktree(config: AgentbotConfig, key: str = "T-1") -> Path:
    repo = config.repos[0]
    spec = RepoSpec(repo.name, repo.git_url, repo.default_branch, repo.test_command)
    return Workspaces(Path(config.agent.workspace_dir)).worktree_path(spec, key)


def add_file(path: str, content: str) -> str:
    body = "".join(f"+{line}\n" for line in content.splitlines())
    return f"*** Begin Patch\n*** Add File: {path}\n{body}*** End Patch\n"


def replace_line(path: str, old: str, new: str) -> str:
    return f"*** Begin Patch\n*** Update File: {path}\n@@\n-{old}\n+{new}\n*** End Patch\n"


PLAN_SCRIPT = [
    Reply.command("grep -rn 'def apply_discount' .", reasoning="**Finding the discount code**"),
    Reply.command("cat pricing.py"),
    Reply.message(f"Found the cause.\n```json\n{json.dumps(PLAN, indent=2)}\n```"),
]
WRITE_TEST = Reply.patch(add_file("tests/test_discount.py", TEST_DISCOUNT))
RED_SCRIPT = [
    Reply.command("cat pricing.py"),
    WRITE_TEST,
    Reply.command("python -m pytest -q", reasoning="**Checking the new test fails**"),
    Reply.command("env", call_id="call_env"),
    Reply.message("Added tests/test_discount.py; 10% off 200 gives 190, not 180."),
]
GREEN_SCRIPT = [
    Reply.patch(replace_line("pricing.py", BUGGY, FIXED)),
    Reply.command("python -m pytest -q"),
    Reply.message("Changed apply_discount to take a percentage; the suite passes."),
]


def task_row(user: SlackUser, task_id: int = 1) -> Task:
    with user.services.db.session() as session:
        return get_task(session, task_id)


def plan_message(user: SlackUser) -> Any:
    return next(m for m in user.thread() if "Plan for T-1" in texts(m))


def sandbox_mode(headers: dict[str, str]) -> str:
    """The sandbox Codex says it ran the turn under (its turn-metadata header)."""
    return str(json.loads(headers["x-codex-turn-metadata"])["sandbox_mode"])


def test_codex_runs_to_a_verified_ready_pull_request(
    user: SlackUser,
    slack: FakeSlack,
    github: FakeGitHub,
    model: FakeResponsesServer,
    brain: ScriptedBrain,
    config: AgentbotConfig,
    sample_repo: Path,
) -> None:
    """Codex plans, writes the failing test, fixes the bug; the bot verifies each step."""
    brain.scripts = {"plan": PLAN_SCRIPT, "red": RED_SCRIPT, "green": GREEN_SCRIPT}
    user.command("run the 10% discount gives 190 instead of 180 --repo acme/calc")
    user.work("default", "plan")

    task = task_row(user)
    assert task.state == "awaiting_approval", task.error
    plan = plan_message(user)
    assert "apply_discount subtracts the percentage" in texts(plan)
    assert "Codex" in texts(plan) and "cost not reported" in texts(plan)
    pull = github.pull("acme/calc", "agent/T-1")
    assert pull is not None and pull.draft
    # Codex really ran grep in the worktree.
    first = model.model_requests()[0]
    assert "planning agent of Agentbot" in json.dumps(first["input"])
    assert "pricing.py:" in json.dumps(model.model_requests()[1]["input"])
    assert all(r.headers.get("authorization") == f"Bearer {PROVIDER_KEY}" for r in model.requests)

    user.click(plan, blocks.APPROVE, APPROVER)
    user.work("default", "execute")

    task = task_row(user)
    assert task.state == "succeeded", task.error
    thread = "\n".join(texts(m) for m in user.thread())
    assert "RED as expected — `python -m pytest -q`: 3 passed, 1 failed" in thread
    assert "GREEN — `python -m pytest -q`: 4 passed, 0 failed" in thread
    card = texts(user.thread()[-1])
    assert "T-1 succeeded" in card and "https://github.example/acme/calc/pull/1" in card
    assert "*Agent cost*\nnot reported by the agent" in card
    # Codex kept its state in its own home: the commit holds the fix and the test only.
    assert (task.result or {})["files_changed"] == ["pricing.py", "tests/test_discount.py"]
    runs = (task.result or {})["agent_runs"]
    spent_in = sum(r["input_tokens"] for r in runs)
    spent_out = sum(r["output_tokens"] for r in runs)
    # One request per model answer, 1000 in and 50 out each, as the fake reports them.
    assert (spent_in, spent_out) == (11 * 1000, 11 * 50)
    assert f"*Agent tokens*\n{spent_in:,} in · {spent_out:,} out" in card
    assert "Agent sessions: plan `" in card and "green `" in card

    pull = github.pull("acme/calc", "agent/T-1")
    assert pull is not None and not pull.draft
    assert FIXED in git("show", "agent/T-1:pricing.py", cwd=sample_repo)
    assert "test_ten_percent_off_200_is_180" in git(
        "show", "agent/T-1:tests/test_discount.py", cwd=sample_repo
    )

    # Codex's own sandbox stays off: inside the bot's it cannot start (see the README).
    assert {sandbox_mode(r.headers) for r in model.requests} == {"danger-full-access"}

    # Progress in the thread comes from Codex's own events.
    shown = "\n".join(c.params.get("text", "") for c in slack.calls_to("chat.update"))
    for line in (
        "Codex started",
        "Thinking: Finding the discount code",
        "Running grep",
        "Running cat",
        "Writing tests/test_discount.py",
        "Running pytest",
        "Editing pricing.py",
    ):
        assert line in shown, line

    # Codex's shell saw neither the bot's secrets nor the provider key.
    env_dump = model.tool_output_for("call_env") or ""
    assert "HOME=" in env_dump and "PATH=" in env_dump
    for value in (*SECRETS.values(), PROVIDER_KEY):
        assert value not in env_dump


def test_codex_fixing_the_code_inside_red_fails_with_nothing_pushed(
    user: SlackUser,
    github: FakeGitHub,
    brain: ScriptedBrain,
    config: AgentbotConfig,
    sample_repo: Path,
) -> None:
    """RED that also fixes pricing.py fails the task; the fix never reaches the remote."""
    brain.scripts = {
        "plan": PLAN_SCRIPT,
        "red": [
            WRITE_TEST,
            Reply.patch(replace_line("pricing.py", BUGGY, FIXED)),
            Reply.message("Added the test (and fixed the bug while I was there)."),
        ],
        "green": GREEN_SCRIPT,
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")

    task = task_row(user)
    assert task.state == "failed"
    assert "RED changed code that is not a test: `pricing.py`" in (task.error or "")
    assert "What went wrong" in texts(user.thread()[-1])
    pull = github.pull("acme/calc", "agent/T-1")
    assert pull is not None and pull.draft
    assert BUGGY in git("show", "agent/T-1:pricing.py", cwd=sample_repo)
    assert "tests/test_discount.py" not in git(
        "ls-tree", "-r", "--name-only", "agent/T-1", cwd=sample_repo
    )
    assert "green" not in brain.prompts


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is inside `directory`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd == directory or directory in cwd.parents:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("agent_timeout", [6])
def test_codex_past_its_timeout_is_killed_with_its_commands(
    user: SlackUser, brain: ScriptedBrain, config: AgentbotConfig
) -> None:
    """A command Codex keeps running past the timeout dies with the CLI; the task fails."""
    wt = worktree(config)
    brain.scripts = {
        "plan": [Reply.message(json.dumps(PLAN))],
        "red": [
            Reply.tool(
                "exec_command", {"cmd": "echo $$ > agent.pid; sleep 60", "yield_time_ms": 30000}
            )
        ],
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    started = time.monotonic()
    user.work("default", "execute")

    assert time.monotonic() - started < 30
    task = task_row(user)
    assert task.state == "failed"
    assert "Codex did not finish within 6 s, so it was stopped" in (task.error or "")
    deadline = time.monotonic() + 10
    while processes_in(wt) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in(wt) == []
    # `$$` inside the sandbox is a pid of its own PID namespace.
    assert not sandboxed(int((wt / "agent.pid").read_text()), wt)


def sleepers(marker: str) -> list[int]:
    """Processes whose command line is exactly `sleep <marker>`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", marker.encode()] and not gone(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_codex_leaves_no_command_running_after_its_turn(
    user: SlackUser, brain: ScriptedBrain, model: FakeResponsesServer
) -> None:
    """A command still running when Codex ends its turn does not outlive the run."""
    brain.scripts = {
        "plan": [
            Reply.tool(
                "exec_command", {"cmd": "sleep 61", "yield_time_ms": 500}, call_id="call_sleep"
            ),
            Reply.message(json.dumps(PLAN)),
        ],
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")

    assert task_row(user).state == "awaiting_approval", task_row(user).error
    # Codex answered while the command still ran: it was left running in a session.
    assert "Process running with session ID" in (model.tool_output_for("call_sleep") or "")
    deadline = time.monotonic() + 10
    while sleepers("61") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleepers("61") == []


def test_codex_plan_correction_resumes_the_same_thread(
    user: SlackUser, brain: ScriptedBrain, model: FakeResponsesServer
) -> None:
    """A plan that is not JSON is asked for again in the same Codex thread, then accepted."""
    brain.scripts = {
        "plan": [Reply.message("The bug is probably in pricing.py, I would fix it.")],
        "plan (correction)": [Reply.message(json.dumps(PLAN))],
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")

    task = task_row(user)
    assert task.state == "awaiting_approval", task.error
    assert "contained no JSON object" in brain.prompts["plan (correction)"]
    first, last = model.requests[0], model.requests[-1]
    assert "The bug is probably in pricing.py" in json.dumps(last.body)
    assert first.headers["thread-id"] == last.headers["thread-id"]
    runs = (task.result or {})["agent_runs"]
    assert runs[-1]["session_id"] == first.headers["thread-id"]


def test_codex_planner_that_writes_fails_planning(
    user: SlackUser, github: FakeGitHub, brain: ScriptedBrain
) -> None:
    """A planning run that changes a file fails the task; nothing is proposed."""
    brain.scripts = {
        "plan": [
            Reply.command("echo 'quick fix' > pricing.py"),
            Reply.message(json.dumps(PLAN)),
        ]
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")

    task = task_row(user)
    assert task.state == "failed"
    assert "Codex changed files while planning; planning may only read." in (task.error or "")
    assert github.pulls == []
