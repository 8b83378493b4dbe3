"""End to end with the real Claude Code CLI: `/agent run` to a verified pull request.

The CLI is installed from npm (pinned; see `tests/fakes/claude_cli.py`) and pointed at
a scripted model on loopback that speaks the Anthropic Messages API. The "model"
only decides which tools to call; Claude Code really reads the sample repo, writes the
failing test, runs pytest, edits the bug and runs the suite again. The remote is a bare
git repo on disk, GitHub is a fake API on loopback, Slack is the fake Slack, and the
database and queues are the real ones, driven by real forking workers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agents.base import RepoSpec
from agents.config import AgentConfig
from agents.workspace import Workspaces
from bot import blocks
from bot.blocks_run import BUDGET_CONTINUE
from bot.settings import Settings
from jobs import work
from jobs.config import AccessConfig, AgentbotConfig, JobConfig, RepoConfig
from jobs.models import Task
from jobs.tasks import get_task
from sandbox.fakeslack import FakeSlack
from sandbox.sample import PLAN, TEST_DISCOUNT
from tests.bot.test_events import mention
from tests.conftest import (
    APPROVER,
    APPROVER_2,
    BOT_TOKEN,
    REQUESTER,
    SIGNING_SECRET,
    STRANGER,
    git,
)
from tests.fakes.anthropic_server import (
    FakeAnthropicServer,
    Reply,
    system_text,
    tool_result_text,
)
from tests.fakes.claude_cli import ensure_claude_cli
from tests.fakes.github_server import FakeGitHub
from tests.procs import sandboxed
from tests.slackclient import SlackUser, texts

MODEL = "claude-sonnet-4-5"
BUGGY = "return round(price - percent, 2)"
FIXED = "return round(price * (1 - percent / 100), 2)"
HALF_FIXED = "return round(price - percent / 2, 2)"
# A shell command that outlives any test: it must be killed, with the CLI that ran it.
LONG_COMMAND = Reply.tool("Bash", {"command": "echo $$ > agent.pid; sleep 60", "timeout": 120000})
# Values the bot has and the agent must never see.
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-e2e-secret-slack",
    "DATABASE_URL": "postgresql://bot:e2e-secret-db@db/agentbot",
    "REDIS_URL": "redis://:e2e-secret-redis@redis:6379/0",
    "GITHUB_TOKEN": "ghp_e2e_secret_github",
    "AWS_SECRET_ACCESS_KEY": "e2e-secret-aws",
}


class ScriptedBrain:
    """Answers each agent-loop request from the script of the phase it belongs to.

    The phase is read from the prompt that opened the current conversation segment
    ("Phase: plan.", "Phase: red.", ...); the step is how many answers the model has
    given since that prompt, so a resumed session continues where it should.
    """

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.prompts: dict[str, str] = {}

    def __call__(self, request: dict[str, Any]) -> Reply:
        messages = _answered(request["messages"])
        start, phase = 0, "unknown"
        for index, message in enumerate(messages):
            text = _text_of(message) if message.get("role") == "user" else ""
            if "Phase: " in text:
                start = index
                phase = text.split("Phase: ", 1)[1].split(".", 1)[0]
                self.prompts.setdefault(phase, text)
        step = sum(1 for m in messages[start:] if m.get("role") == "assistant")
        replies = self.scripts.get(phase, [])
        return replies[step] if step < len(replies) else Reply.text(f"(no script: {phase})")


INTERRUPTED = "[Tool call interrupted"


def _answered(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation without what a stop left unanswered, as a model reads it after a
    resume: a tool call the stop interrupted is made again, and the CLI's filler answer
    to the interruption ("No response requested.") is no step of the script."""
    kept: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        following = messages[index + 1] if index + 1 < len(messages) else {}
        if message.get("role") == "assistant" and (
            INTERRUPTED in json.dumps(following.get("content"))
            or _text_of(message) == "No response requested."
        ):
            continue
        kept.append(message)
    return kept


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in content or [] if b.get("type") == "text")


@pytest.fixture(scope="module")
def claude() -> Path:
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
def agent_timeout() -> int:
    return 90


@pytest.fixture
def agent_settings() -> dict[str, Any]:
    """More `[agent]` settings for one test."""
    return {}


@pytest.fixture
def config(
    sample_repo: Path,
    tmp_path: Path,
    claude: Path,
    model: FakeAnthropicServer,
    agent_timeout: int,
    agent_settings: dict[str, Any],
) -> AgentbotConfig:
    """The suite's configuration, with Claude Code as the agent and the repo on GitHub."""
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
            kind="claude-code",
            command=str(claude),
            model=MODEL,
            max_turns=12,
            timeout_seconds=agent_timeout,
            workspace_dir=str(tmp_path / "workspaces"),
            home=str(tmp_path / "agent-home"),
            env={
                "ANTHROPIC_BASE_URL": model.base_url,
                "ANTHROPIC_API_KEY": "sk-ant-e2e-fake-key",
                "CLAUDE_CODE_MAX_RETRIES": "1",
            },
            **agent_settings,
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
    # The agent's Bash tool and the bot's test runs find this interpreter (with pytest).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    monkeypatch.setenv("PATH", path)
    # Workers fork from this process, so they inherit the patched interval.
    monkeypatch.setattr(work, "PROGRESS_INTERVAL_SECONDS", 0.0)


def worktree(config: AgentbotConfig, key: str = "T-1") -> Path:
    repo = config.repos[0]
    spec = RepoSpec(repo.name, repo.git_url, repo.default_branch, repo.test_command)
    return Workspaces(Path(config.agent.workspace_dir)).worktree_path(spec, key)


def plan_script(wt: Path) -> list[Reply]:
    return [
        Reply.tool("Grep", {"pattern": "def apply_discount", "path": str(wt)}),
        Reply.tool("Read", {"file_path": str(wt / "pricing.py")}),
        Reply.text(f"Found the cause.\n```json\n{json.dumps(PLAN, indent=2)}\n```"),
    ]


def red_script(wt: Path, *, dump_env: bool = False) -> list[Reply]:
    replies = [
        Reply.tool("Read", {"file_path": str(wt / "pricing.py")}),
        Reply.tool(
            "Write", {"file_path": str(wt / "tests" / "test_discount.py"), "content": TEST_DISCOUNT}
        ),
        Reply.tool("Bash", {"command": "python -m pytest -q", "description": "Run the suite"}),
    ]
    if dump_env:
        replies.append(Reply.tool("Bash", {"command": "env"}, tool_id="toolu_env"))
    return [*replies, Reply.text("Added tests/test_discount.py; 10% off 200 gives 190, not 180.")]


def green_script(wt: Path, new: str = FIXED) -> list[Reply]:
    return [
        # Claude Code refuses to edit a file its session has not read.
        Reply.tool("Read", {"file_path": str(wt / "pricing.py")}),
        Reply.tool(
            "Edit", {"file_path": str(wt / "pricing.py"), "old_string": BUGGY, "new_string": new}
        ),
        Reply.tool("Bash", {"command": "python -m pytest -q"}),
        Reply.text("Changed apply_discount to take a percentage; the suite passes."),
    ]


def task_row(user: SlackUser, task_id: int = 1) -> Task:
    with user.services.db.session() as session:
        return get_task(session, task_id)


def plan_message(user: SlackUser) -> Any:
    return next(m for m in user.thread() if "Plan for T-1" in texts(m))


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


def test_run_to_a_verified_ready_pull_request(
    user: SlackUser,
    slack: FakeSlack,
    github: FakeGitHub,
    model: FakeAnthropicServer,
    brain: ScriptedBrain,
    config: AgentbotConfig,
    sample_repo: Path,
) -> None:
    """Claude Code plans, writes the failing test, fixes the bug; the bot verifies; PR ready."""
    wt = worktree(config)
    port = urlsplit(model.base_url).port
    direct = (
        f"python -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\" "
        "2>/dev/null && echo model-reached-directly || echo model-not-reachable-directly"
    )
    red = red_script(wt, dump_env=True)
    red.insert(-1, Reply.tool("Bash", {"command": direct}, tool_id="toolu_direct"))
    brain.scripts = {"plan": plan_script(wt), "red": red, "green": green_script(wt)}
    user.command("run the 10% discount gives 190 instead of 180 --repo acme/calc")
    user.work("default", "plan")

    task = task_row(user)
    assert task.state == "awaiting_approval", task.error
    plan = plan_message(user)
    assert "apply_discount subtracts the percentage" in texts(plan)
    assert "draft PR https://github.example/acme/calc/pull/1" in texts(plan)
    assert "Claude Code" in texts(plan) and "turns" in texts(plan)
    pull = github.pull("acme/calc", "agent/T-1")
    assert pull is not None and pull.draft and pull.base == "main"
    assert PLAN["summary"] in pull.body and "Not run yet" in pull.body
    assert "Plan for T-1" in git("show", "agent/T-1:PLAN.md", cwd=sample_repo)
    # The planner ran read-only: no edit or shell tools were offered to the model.
    planner_tools = {t["name"] for t in model.main_requests()[0]["tools"]}
    assert {"Read", "Grep"} <= planner_tools and not {"Bash", "Write", "Edit"} & planner_tools
    assert "planning agent of Agentbot" in system_text(model.main_requests()[0])

    user.click(plan, blocks.APPROVE, APPROVER)
    user.work("default", "execute")

    task = task_row(user)
    assert task.state == "succeeded", task.error
    thread = "\n".join(texts(m) for m in user.thread())
    assert "RED as expected — `python -m pytest -q`: 3 passed, 1 failed" in thread
    assert "GREEN — `python -m pytest -q`: 4 passed, 0 failed" in thread
    outcome = user.thread()[-1]
    card = texts(outcome)
    assert "T-1 succeeded" in card
    assert "https://github.example/acme/calc/pull/1" in card
    assert "2 (+" in card and "pricing.py" in card and "tests/test_discount.py" in card
    assert "*Tests before*\n2 passed, 0 failed" in card
    assert "*Tests after*\n4 passed, 0 failed" in card
    assert task.agent_cost_usd > 0 and f"${task.agent_cost_usd:.2f}" in card
    turns = sum(r["turns"] for r in (task.result or {})["agent_runs"])
    assert turns >= 8 and f"*Agent turns*\n{turns}" in card
    assert "Agent sessions: plan `" in card and "red `" in card and "green `" in card

    # The pull request: ready for review, titled like the commit, with plan and evidence.
    pull = github.pull("acme/calc", "agent/T-1")
    assert pull is not None and not pull.draft
    assert pull.title == "fix(pricing): apply_discount subtracts the percentage as an amount"
    assert "| RED: `python -m pytest -q` | 3 passed, 1 failed |" in pull.body
    assert "| GREEN: `python -m pytest -q` | 4 passed, 0 failed |" in pull.body
    assert PLAN["root_cause"] in pull.body
    # The branch in the remote carries the fix, the conventional commit, and no PLAN.md.
    log = git("log", "-1", "--format=%s%n%b", "agent/T-1", cwd=sample_repo)
    assert log.startswith("fix(pricing): ") and "Task: T-1" in log
    assert FIXED in git("show", "agent/T-1:pricing.py", cwd=sample_repo)
    assert "PLAN.md" not in git("ls-tree", "--name-only", "agent/T-1", cwd=sample_repo)

    # Progress: one message in the thread, edited in place with the agent's tool calls.
    progress = [m for m in user.thread() if "\n• " in m.text]
    assert len(progress) == 1 and progress[0].edited >= 10
    assert "Editing pricing.py" in progress[0].text
    shown = [c.params.get("text", "") for c in slack.calls_to("chat.update")]
    for line in ("Reading pricing.py", "Writing tests/test_discount.py", "Running pytest"):
        assert any(line in text for text in shown), line
    assert any("Editing pricing.py" in text for text in shown)

    # The agent's own shell saw none of the bot's secrets.
    env_dump = model_tool_result(model, "toolu_env")
    assert "HOME=" in env_dump and "PATH=" in env_dump
    for value in SECRETS.values():
        assert value not in env_dump
    assert "xoxb-" not in env_dump and "ghp_" not in env_dump
    # It ran in the sandbox: the model only through the worker's proxy, never directly.
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in env_dump
    assert "model-not-reachable-directly" in model_tool_result(model, "toolu_direct")


def model_tool_result(model: FakeAnthropicServer, tool_id: str) -> str:
    block = model.tool_result_for(tool_id)
    assert block is not None, f"{tool_id} never ran"
    return tool_result_text(block)


def test_fix_that_leaves_a_test_red_fails_and_stays_draft(
    user: SlackUser,
    github: FakeGitHub,
    brain: ScriptedBrain,
    config: AgentbotConfig,
    sample_repo: Path,
) -> None:
    """GREEN not holding fails the task with the evidence; the PR is not marked ready."""
    wt = worktree(config)
    brain.scripts = {
        "plan": plan_script(wt),
        "red": red_script(wt),
        "green": green_script(wt, new=HALF_FIXED),
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")

    task = task_row(user)
    assert task.state == "failed"
    assert "GREEN did not hold" in (task.error or "") and "1 failed" in (task.error or "")
    outcome = texts(user.thread()[-1])
    assert "What went wrong" in outcome
    assert "1 failed" in outcome and "test_ten_percent_off_200_is_180" in outcome  # evidence
    pull = github.pull("acme/calc", "agent/T-1")
    assert pull is not None and pull.draft
    assert any("stays a draft" in body for _, _, body in github.comments)
    assert HALF_FIXED not in git("show", "agent/T-1:pricing.py", cwd=sample_repo)
    assert task.agent_cost_usd > 0


def test_malformed_plan_fails_planning_after_one_correction(
    user: SlackUser, github: FakeGitHub, brain: ScriptedBrain, model: FakeAnthropicServer
) -> None:
    """A plan that is not valid JSON gets one corrective retry, then fails clearly."""
    brain.scripts = {
        "plan": [Reply.text("The bug is probably in pricing.py, I would fix it.")],
        "plan (correction)": [Reply.text('{"summary": "fix pricing", "risk": "tiny"}')],
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")

    task = task_row(user)
    assert task.state == "failed"
    assert "did not return a valid plan, even when asked again" in (task.error or "")
    assert "risk" in (task.error or "")
    assert "contained no JSON object" in brain.prompts["plan (correction)"]
    # The correction continued the same conversation.
    last = model.main_requests()[-1]["messages"]
    assert "The bug is probably in pricing.py" in json.dumps(last)
    assert "Planning failed" in texts(user.card())
    assert github.pulls == []


def test_shell_metacharacters_in_the_description_stay_inert(
    user: SlackUser,
    github: FakeGitHub,
    brain: ScriptedBrain,
    config: AgentbotConfig,
    tmp_path: Path,
) -> None:
    """Quotes, $(...), backticks and pipes reach the model as text; nothing runs them."""
    description = (
        "discount wrong; $(touch pwned1) `touch pwned2` && touch pwned3 | tee pwned4 "
        "\"'$HOME'\" > pwned5 @octocat"
    )
    brain.scripts = {"plan": [Reply.text(json.dumps(PLAN))]}
    user.command(f"run {description}")
    user.work("default", "plan")

    assert task_row(user).state == "awaiting_approval", task_row(user).error
    assert description in brain.prompts["plan"]
    wt = worktree(config)
    for place in (wt, tmp_path, Path.cwd()):
        assert not list(place.glob("pwned*")), place
    pull = github.pull("acme/calc", "agent/T-1")
    # Quoted in a code block on GitHub: no markdown, no @-mention ping.
    assert pull is not None and f"```text\n{description}\n```" in pull.body


@pytest.mark.parametrize("agent_timeout", [6])
def test_timeout_kills_the_agent_and_fails_the_task(
    user: SlackUser, brain: ScriptedBrain, config: AgentbotConfig
) -> None:
    """An agent past its hard timeout is killed with all it started; the task fails."""
    wt = worktree(config)
    brain.scripts = {
        "plan": [Reply.text(json.dumps(PLAN))],
        "red": [
            Reply.tool("Bash", {"command": "echo $$ > agent.pid; sleep 60", "timeout": 120000})
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
    assert "Claude Code did not finish within 6 s, so it was stopped" in (task.error or "")
    wait_until_none_in(wt)
    shell = int((wt / "agent.pid").read_text())
    # `$$` inside the sandbox is a pid of its own PID namespace.
    assert not sandboxed(shell, wt)


def wait_until_none_in(directory: Path, timeout: float = 10) -> None:
    """SIGKILL is delivered asynchronously: give the killed processes a moment to exit."""
    deadline = time.monotonic() + timeout
    while processes_in(directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in processes_in(directory)}
    assert left == {}, f"still running in {directory}: {left}"


def test_cancel_mid_run_kills_the_agent_process_group(
    user: SlackUser, slack: FakeSlack, brain: ScriptedBrain, config: AgentbotConfig
) -> None:
    """/agent cancel while Claude Code runs a command: the CLI and its shell are gone."""
    wt = worktree(config)
    brain.scripts = {
        "plan": [Reply.text(json.dumps(PLAN))],
        "red": [
            Reply.tool("Bash", {"command": "echo $$ > agent.pid; sleep 60", "timeout": 120000})
        ],
    }
    user.command("run the 10% discount gives 190 instead of 180")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    worker = multiprocessing.get_context("fork").Process(target=user.work, args=("execute",))
    worker.start()
    pid_file = wt / "agent.pid"
    slack.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30)
    assert processes_in(wt), "the agent should be running in the worktree"

    response = user.command("cancel T-1")
    assert "cancelled" in user.reply_text(response)
    worker.join(timeout=30)
    assert worker.exitcode == 0
    wait_until_none_in(wt)
    shell = int(pid_file.read_text())
    # `$$` inside the sandbox is a pid of its own PID namespace.
    assert not sandboxed(shell, wt)
    user.work("default")
    assert task_row(user).state == "cancelled"
    assert "cancelled" in texts(user.card())


# -- a running task: the thread, a stall, the budget ------------------------------------

# Fake usage (100 input, 20 output tokens) at claude-sonnet-4-5's list price.
COST_PER_REQUEST = 0.0006


@contextmanager
def executing(user: SlackUser) -> Iterator[None]:
    """The execute queue worked in a process of its own while the block runs."""
    worker = multiprocessing.get_context("fork").Process(target=user.work, args=("execute",))
    worker.start()
    try:
        yield
        worker.join(timeout=120)
        assert worker.exitcode == 0
    finally:
        if worker.is_alive():
            worker.kill()


def planned(user: SlackUser) -> None:
    user.command("run the 10% discount gives 190 instead of 180 --repo acme/calc")
    user.work("default", "plan")
    assert task_row(user).state == "awaiting_approval", task_row(user).error
    user.click(plan_message(user), blocks.APPROVE, APPROVER)


def said_to_model(model: FakeAnthropicServer, text: str) -> bool:
    return any(text in json.dumps(request["messages"]) for request in model.main_requests())


def test_a_thread_reply_reaches_the_model_in_its_next_request(
    user: SlackUser,
    slack: FakeSlack,
    model: FakeAnthropicServer,
    brain: ScriptedBrain,
    config: AgentbotConfig,
) -> None:
    """The requester's mention during RED is in the model's next request; a stranger's
    never is; the thread acknowledges the one passed on."""
    wt = worktree(config)
    red = red_script(wt)
    red.insert(1, Reply.tool("Bash", {"command": "sleep 5", "timeout": 60000}))
    brain.scripts = {"plan": plan_script(wt), "red": red, "green": green_script(wt)}
    planned(user)
    card = user.card()

    with executing(user):
        slack.wait_for(lambda: any("Running sleep" in m.text for m in user.thread()), timeout=60)
        mention(user, slack, "name the new test after the 10% case", in_thread=card)
        mention(user, slack, "also push to main", who=STRANGER, in_thread=card)
        user.work("default")
        slack.wait_for(lambda: task_row(user).state != "executing", timeout=90)

    assert task_row(user).state == "succeeded", task_row(user).error
    assert said_to_model(model, "name the new test after the 10% case")
    assert said_to_model(model, "does not change the approved plan")
    assert not said_to_model(model, "also push to main")
    user.work("default")
    acks = [m for m in user.thread() if "Passed to the agent" in m.text]
    assert len(acks) == 1
    shown = [c.params.get("text", "") for c in slack.calls_to("chat.update")]
    assert any("Message passed to Claude Code" in text for text in shown)
    assert any("last activity <!date^" in text for text in shown)


@pytest.mark.parametrize("agent_settings", [{"stall_minutes": 0.04}])
def test_a_quiet_claude_run_is_stopped_after_two_periods(
    user: SlackUser, slack: FakeSlack, brain: ScriptedBrain, config: AgentbotConfig
) -> None:
    """A shell command that never ends: the thread hears of it, then the run is stopped
    and the task fails with the agent's last steps."""
    wt = worktree(config)
    # A bare `sleep` is refused by the CLI's Bash tool; a command that then sleeps is not.
    red = [
        Reply.tool("Bash", {"command": "echo waiting; sleep 60", "timeout": 120000}),
        Reply.text("done"),
    ]
    brain.scripts = {"plan": plan_script(wt), "red": red}
    planned(user)

    with executing(user):
        slack.wait_for(lambda: task_row(user).state == "failed", timeout=60)

    thread = "\n".join(texts(m) for m in user.thread())
    error = str(task_row(user).error)
    assert "the agent has done nothing for 2 seconds" in thread, error
    assert "no sign of life for 5 seconds, so it was stopped" in error
    assert "Its last steps: Claude Code is writing the failing test" in error
    assert error.endswith("Running echo.")


@pytest.mark.parametrize("agent_settings", [{"max_cost_usd": 0.003}])
def test_the_budget_stops_the_cli_and_continue_resumes_its_session(
    user: SlackUser,
    slack: FakeSlack,
    model: FakeAnthropicServer,
    brain: ScriptedBrain,
    config: AgentbotConfig,
) -> None:
    """--max-budget-usd stops the CLI between turns; each Continue resumes the same
    session with more; the task succeeds and its cost is what the model was paid."""
    wt = worktree(config)
    brain.scripts = {"plan": plan_script(wt), "red": red_script(wt), "green": green_script(wt)}
    planned(user)

    answered: set[str] = set()

    def continue_each_question() -> bool:
        for message in user.thread():
            if "reached its agent budget" in texts(message) and message.ts not in answered:
                answered.add(message.ts)
                user.click(message, BUDGET_CONTINUE, APPROVER)
        return task_row(user).state in ("succeeded", "failed")

    with executing(user):
        deadline = time.monotonic() + 120
        while not continue_each_question() and time.monotonic() < deadline:
            time.sleep(0.3)  # not inside slack.wait_for: a click needs the fake Slack

    task = task_row(user)
    assert task.state == "succeeded", task.error
    assert answered, "the budget was reached at least once"
    assert said_to_model(model, "Your budget was raised")
    # Resumed sessions report their cost cumulatively; the task counts each dollar once.
    requests = len(model.main_requests())
    assert task.agent_cost_usd == pytest.approx(requests * COST_PER_REQUEST, rel=0.05)
    thread = "\n".join(texts(m) for m in user.thread())
    assert f"<@{APPROVER}> raised the budget by $0.0030" in thread
