"""The task lifecycle end to end: Slack in, real queues and database, Slack out."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from sqlalchemy import select

from bot import blocks
from jobs.models import Task, TaskEvent
from jobs.tasks import get_task
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, CHANNEL, REQUESTER, STRANGER, git
from tests.slackclient import SlackUser, texts


def task_row(user: SlackUser, task_id: int = 1) -> Task:
    with user.services.db.session() as session:
        return get_task(session, task_id)


def states(user: SlackUser, task_id: int = 1) -> list[str]:
    with user.services.db.session() as session:
        events = session.execute(
            select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
        ).scalars()
        return [event.to_state for event in events]


def test_run_plan_approve_execute_succeeds(user: SlackUser, slack: FakeSlack, sample_repo: Path):
    """A requested task is planned, approved, executed test-first and ends succeeded."""
    response = user.command("run fix the discount calculation --repo acme/calc")
    assert response.status == 200
    assert "T-1 queued" in user.reply_text(response)

    user.work("default", "plan")
    card = user.card()
    assert "T-1 · fix the discount calculation" in texts(card)
    assert "awaiting approval" in texts(card)
    thread = user.thread()
    plan = next(m for m in thread if "Plan for T-1" in texts(m))
    assert "apply_discount subtracts the percentage" in texts(plan)
    assert "python -m pytest -q" in texts(plan)
    # PLAN.md is on the task's branch in the remote.
    assert "Plan for T-1" in git("show", "agent/T-1:PLAN.md", cwd=sample_repo)

    response = user.click(plan, blocks.APPROVE, APPROVER)
    assert response.status == 200
    assert task_row(user).state == "approved"

    user.work("default", "execute")
    task = task_row(user)
    assert task.state == "succeeded", task.error
    assert states(user) == [
        "queued",
        "planning",
        "awaiting_approval",
        "approved",
        "executing",
        "succeeded",
    ]
    card = user.card()
    assert card.edited >= 3
    assert "succeeded" in texts(card)
    assert f"<@{APPROVER}>" in texts(card)
    thread_text = "\n".join(texts(m) for m in user.thread())
    assert "RED as expected" in thread_text and "3 passed, 1 failed" in thread_text
    assert "GREEN" in thread_text and "4 passed, 0 failed" in thread_text
    assert "Approved by <@UAPPROVER>" in thread_text
    outcome = user.thread()[-1]
    assert "T-1 succeeded" in texts(outcome)
    assert "pricing.py" in texts(outcome)
    assert "2 passed, 0 failed" in texts(outcome)  # tests before
    # The fix really landed on the branch in the remote, with the conventional message.
    log = git("log", "--format=%s%n%b", "agent/T-1", cwd=sample_repo)
    assert log.startswith("fix(pricing): ") and "Task: T-1" in log
    assert "percent / 100" in git("show", "agent/T-1:pricing.py", cwd=sample_repo)
    # The approve button is gone from the plan once decided.
    plan_now = next(m for m in user.thread() if m.ts == plan.ts)
    assert all(b.get("type") != "actions" for b in plan_now.blocks)
    # Exactly one card for the task.
    assert len(slack.channel_messages(CHANNEL)) == 1


def test_reject_with_reason_ends_task(user: SlackUser, slack: FakeSlack):
    """Reject opens a modal; the reason is recorded and shown; nothing executes."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    user.click(plan, blocks.REJECT, APPROVER)
    slack.wait_for(lambda: slack.views)
    assert len(slack.views) == 1
    view = slack.views[0]
    assert view["callback_id"] == blocks.REJECT_VIEW

    response = user.submit_view(view, APPROVER, "")
    assert response.status == 200 and "errors" in str(response.body)
    assert task_row(user).state == "awaiting_approval"

    user.submit_view(view, APPROVER, "touches billing, needs a design review")
    assert task_row(user).state == "rejected"
    user.work()
    plan = next(m for m in user.thread() if m.ts == plan.ts)
    assert "Rejected by <@UAPPROVER>: touches billing, needs a design review" in texts(plan)
    assert "rejected" in texts(user.card())
    assert user.services.queues.lengths()["execute"] == 0


def test_unauthorized_approve_is_refused_and_changes_nothing(user: SlackUser, slack: FakeSlack):
    """Someone who is not an approver gets an ephemeral refusal; the task stays put."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))

    user.click(plan, blocks.APPROVE, STRANGER)
    assert "Only approvers" in " ".join(user.ephemeral_texts(STRANGER))
    response = user.command("approve T-1", user=STRANGER)
    assert "Only approvers" in user.reply_text(response)
    assert task_row(user).state == "awaiting_approval"
    assert states(user)[-1] == "awaiting_approval"


def test_self_approval_is_refused_unless_configured(user: SlackUser, slack: FakeSlack):
    """An approver who requested the task cannot approve it themselves."""
    user.command("run fix the discount calculation", user=APPROVER)
    user.work("default", "plan")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    user.click(plan, blocks.APPROVE, APPROVER)
    assert "someone else has to approve" in " ".join(user.ephemeral_texts(APPROVER))
    assert task_row(user).state == "awaiting_approval"


def test_failed_execution_can_be_retried(user: SlackUser, slack: FakeSlack):
    """A fix that leaves the suite red fails the task with evidence; Retry re-runs it."""
    user.command("run half-fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1 looks fine", user=APPROVER)
    user.work("default", "execute")
    task = task_row(user)
    assert task.state == "failed"
    assert "GREEN did not hold" in (task.error or "")
    card = user.card()
    assert "GREEN did not hold" in texts(card)
    # The branch never got the broken fix.
    assert "fix:" not in git(
        "log", "--format=%s", "agent/T-1", cwd=Path(user.services.config.repos[0].git_url)
    )

    user.click(card, blocks.RETRY, REQUESTER)
    assert task_row(user).state == "approved"
    user.work("default", "execute")
    assert task_row(user).state == "failed"
    assert states(user)[-3:] == ["approved", "executing", "failed"]


def test_cancel_while_executing_stops_the_job(user: SlackUser, slack: FakeSlack):
    """Cancelling a running task kills its job; the card says cancelled."""
    user.command("run slow discount work")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    # A worker process of its own, as in production, so RQ can install its signals.
    worker = multiprocessing.get_context("fork").Process(target=user.work, args=("execute",))
    worker.start()
    slack.wait_for(lambda: task_row(user).state == "executing", timeout=30)
    started = time.monotonic()
    response = user.command("cancel T-1")
    assert "cancelled" in user.reply_text(response)
    worker.join(timeout=60)
    assert worker.exitcode == 0
    # The scripted agent would have slept 120 s; the stop command killed it at once.
    assert time.monotonic() - started < 30
    user.work("default")
    assert task_row(user).state == "cancelled"
    assert "cancelled" in texts(user.card())
