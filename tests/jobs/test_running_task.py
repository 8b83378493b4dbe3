"""A running task, with the scripted agent: it stays in scope, is never silent, never
over budget, and hears its thread.

Everything goes through the signed Bolt app and the fake Slack; the executor runs in a
real forking worker (in a process of its own where the test must click meanwhile).
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import blocks
from bot.blocks_run import BUDGET_CONTINUE, BUDGET_STOP, KEEP_WAITING
from jobs import work
from jobs.config import AgentbotConfig
from jobs.models import Task
from sandbox.fakeslack import FakeSlack, Message
from sandbox.sample import PLAN, TEST_DISCOUNT
from tests.bot.test_events import mention
from tests.bot.test_metrics import scrape
from tests.conftest import APPROVER, REQUESTER, STRANGER, git
from tests.slackclient import SlackUser, texts

FIX = {
    "replace": "pricing.py",
    "old": "return round(price - percent, 2)",
    "new": "return round(price * (1 - percent / 100), 2)",
}
RED = [{"write": "tests/test_discount.py", "content": TEST_DISCOUNT}]


@pytest.fixture
def agent_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
def config(config: AgentbotConfig, agent_settings: dict[str, Any]) -> AgentbotConfig:
    """The suite's configuration with this test's `[agent]` settings."""
    return config.model_copy(update={"agent": config.agent.model_copy(update=agent_settings)})


@pytest.fixture(autouse=True)
def every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers fork from this process, so they inherit the patched interval.
    monkeypatch.setattr(work, "PROGRESS_INTERVAL_SECONDS", 0.0)


def add_scenario(remote: Path, work_dir: Path, scenario: dict[str, Any]) -> None:
    """Push a script scenario, first in the list, to the sample repo."""
    git("clone", "--quiet", str(remote), str(work_dir), cwd=remote.parent)
    path = work_dir / ".agentbot" / "script.json"
    script = json.loads(path.read_text())
    script["scenarios"].insert(0, {"plan": PLAN, "red": RED, "green": [FIX], **scenario})
    path.write_text(json.dumps(script, indent=2))
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    git(*identity, "commit", "--quiet", "-am", "A scenario for the test", cwd=work_dir)
    git("push", "--quiet", "origin", "main", cwd=work_dir)


def approved(user: SlackUser, words: str) -> None:
    """`/agent run <words>`, planned and approved: T-1 waits in the execute queue."""
    user.command(f"run {words}")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)


def task_row(user: SlackUser) -> Task:
    with user.services.db.session() as session:
        return session.execute(select(Task)).scalar_one()


@contextmanager
def executing(user: SlackUser) -> Iterator[None]:
    """The execute queue worked in a process of its own while the block runs."""
    worker = multiprocessing.get_context("fork").Process(target=user.work, args=("execute",))
    worker.start()
    try:
        yield
        worker.join(timeout=90)
        assert worker.exitcode == 0
    finally:
        if worker.is_alive():
            worker.kill()


def thread_message(user: SlackUser, has: Callable[[Message], bool]) -> list[Message]:
    return [m for m in user.thread() if has(m)]


def wait_thread(slack: FakeSlack, user: SlackUser, text: str, timeout: float = 30) -> Message:
    """The first thread message whose text holds `text`, once there."""
    found = slack.wait_for(
        lambda: thread_message(user, lambda m: text in texts(m)), timeout=timeout
    )
    assert found, f"no thread message says {text!r}"
    return found[0]  # type: ignore[no-any-return]


def remote_files(remote: Path, branch: str) -> list[str]:
    return git("ls-tree", "-r", "--name-only", branch, cwd=remote).split()


# -- stay in scope ----------------------------------------------------------------------


def test_files_outside_the_plan_are_listed_on_the_completion_card(
    user: SlackUser, sample_repo: Path, tmp_path: Path
) -> None:
    """scope = "warn": the task succeeds, and the card names the file the plan did not."""
    add_scenario(
        sample_repo,
        tmp_path / "scripting",
        {"match": ["wander"], "green": [FIX, {"write": "notes.py", "content": "X = 1\n"}]},
    )
    approved(user, "wander off the discount plan")
    user.work("execute", "default")

    assert task_row(user).state == "succeeded"
    outcome = wait_thread(user.slack, user, "T-1 succeeded")
    assert "Outside the approved plan's files:* `notes.py`" in texts(outcome)
    assert "pricing.py" not in texts(outcome).split("Outside the approved plan")[1]
    assert "notes.py" in remote_files(sample_repo, "agent/T-1")


@pytest.mark.parametrize("agent_settings", [{"scope": "refuse"}])
def test_refused_scope_pushes_nothing_and_fails_naming_the_files(
    user: SlackUser, sample_repo: Path, tmp_path: Path
) -> None:
    """scope = "refuse": nothing is pushed, and the failure says which files."""
    add_scenario(
        sample_repo,
        tmp_path / "scripting",
        {"match": ["wander"], "green": [FIX, {"write": "notes.py", "content": "X = 1\n"}]},
    )
    approved(user, "wander off the discount plan")
    user.work("execute", "default")

    task = task_row(user)
    assert task.state == "failed"
    assert "files the approved plan does not name: `notes.py`" in str(task.error)
    assert "nothing was pushed" in str(task.error)
    pushed = remote_files(sample_repo, "agent/T-1")
    assert "notes.py" not in pushed and "tests/test_discount.py" not in pushed


# -- never silent -------------------------------------------------------------------------


@pytest.mark.parametrize("agent_settings", [{"stall_minutes": 0.04}])
def test_a_quiet_run_is_reported_then_stopped_with_its_last_steps(
    user: SlackUser, slack: FakeSlack, sample_repo: Path, tmp_path: Path
) -> None:
    """No sign of life for stall_minutes: Keep waiting / Cancel; Keep waiting restarts the
    clock; quiet for a second period, the run stops and the task fails."""
    add_scenario(sample_repo, tmp_path / "scripting", {"match": ["quiet"], "delay_seconds": 60})
    approved(user, "a quiet discount fix")

    with executing(user):
        question = wait_thread(slack, user, "the agent has done nothing for 2 seconds")
        assert "Its last steps:\n• nothing yet" in texts(question)  # the bot's own are not
        # A stranger may not keep it waiting; the requester may.
        refused = user.click(question, KEEP_WAITING, STRANGER)
        assert refused.status == 200
        assert any("requester or an approver" in t for t in user.ephemeral_texts(STRANGER))
        user.click(question, KEEP_WAITING, REQUESTER)
        wait_thread(slack, user, f"<@{REQUESTER}> chose to keep waiting")
        slack.wait_for(
            lambda: len(thread_message(user, lambda m: "has done nothing" in texts(m))) == 2,
            timeout=30,
        )
        slack.wait_for(lambda: task_row(user).state == "failed", timeout=30)

    task = task_row(user)
    assert "no sign of life for 5 seconds, so it was stopped" in str(task.error)
    assert "Its last steps: nothing." in str(task.error)
    # The card's Cancel is the question's Cancel.
    assert blocks.CANCEL in json.dumps(question.blocks)
    _, samples = scrape(user.services)
    assert samples[("agentbot_agent_stalls_total", ())] == 2


# -- never over budget ------------------------------------------------------------------


@pytest.mark.parametrize("agent_settings", [{"max_cost_usd": 4.0}])
def test_a_spent_budget_asks_approvers_and_continue_finishes_the_task(
    user: SlackUser, slack: FakeSlack, sample_repo: Path, tmp_path: Path
) -> None:
    """$3 a phase against $4: GREEN stops and asks; an approver's Continue (+$4) finishes it."""
    add_scenario(sample_repo, tmp_path / "scripting", {"match": ["pricey"], "cost_usd": 3.0})
    approved(user, "a pricey discount fix")

    with executing(user):
        question = wait_thread(slack, user, "reached its agent budget")
        assert "$3.00 spent" in texts(question) or "$4.00 spent" in texts(question)
        user.click(question, BUDGET_CONTINUE, REQUESTER)  # the requester is no approver
        assert any("Only an approver" in t for t in user.ephemeral_texts(REQUESTER))
        user.click(question, BUDGET_CONTINUE, APPROVER)
        slack.wait_for(lambda: task_row(user).state == "succeeded", timeout=60)
    user.click(question, BUDGET_STOP, APPROVER)  # too late: the run is over
    assert any("not running" in t for t in user.ephemeral_texts(APPROVER))

    task = task_row(user)
    assert task.agent_cost_usd == pytest.approx(6.0)
    wait_thread(slack, user, f"<@{APPROVER}> raised the budget by $4.00")


@pytest.mark.parametrize("agent_settings", [{"max_cost_usd": 4.0}])
def test_stop_at_the_budget_fails_the_task_and_pushes_nothing(
    user: SlackUser, slack: FakeSlack, sample_repo: Path, tmp_path: Path
) -> None:
    """Stop: the task fails, what was spent is counted, and no fix reaches the remote."""
    add_scenario(sample_repo, tmp_path / "scripting", {"match": ["pricey"], "cost_usd": 3.0})
    approved(user, "a pricey discount fix")

    with executing(user):
        question = wait_thread(slack, user, "reached its agent budget")
        user.click(question, BUDGET_STOP, APPROVER)
        slack.wait_for(lambda: task_row(user).state == "failed", timeout=60)

    task = task_row(user)
    assert "reached its budget" in str(task.error)
    assert task.agent_cost_usd == pytest.approx(3.0 + 1.0)  # RED, and GREEN up to its stop
    assert "tests/test_discount.py" not in remote_files(sample_repo, "agent/T-1")


# -- the thread, while the agent runs ------------------------------------------------------


def test_a_mention_in_the_thread_reaches_the_running_agent(
    user: SlackUser, slack: FakeSlack, sample_repo: Path, tmp_path: Path
) -> None:
    """The requester's mention reaches the agent and is acknowledged; a stranger's and a
    bot's are ignored quietly."""
    add_scenario(sample_repo, tmp_path / "scripting", {"match": ["chatty"], "delay_seconds": 6})
    approved(user, "a chatty discount fix")
    card = user.card()

    with executing(user):
        slack.wait_for(lambda: task_row(user).state == "executing", timeout=30)
        mention(user, slack, "use Decimal for the rounding", in_thread=card)
        mention(user, slack, "delete all the tests", who=STRANGER, in_thread=card)
        user.work("default")
        heard = slack.wait_for(
            lambda: [t for m in user.thread() if "Message received: " in (t := texts(m))],
            timeout=30,
        )
        slack.wait_for(lambda: task_row(user).state == "succeeded", timeout=60)
    user.work("default")

    # The agent's progress line shows what it heard: the requester's words only.
    assert "Message received: use Decimal for the rounding" in heard[0]
    assert "delete all the tests" not in heard[0]
    acks = [m for m in user.thread() if "Passed to the agent" in m.text]
    assert len(acks) == 1 and acks[0].user != REQUESTER
