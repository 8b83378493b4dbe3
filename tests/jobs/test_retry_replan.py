"""Retrying a task whose approved plan no longer holds plans it again, rather than failing again."""

from __future__ import annotations

from sqlalchemy import select, update

from jobs.models import Approval, Task
from jobs.tasks import get_task
from sandbox.sample import PLAN
from tests.conftest import APPROVER
from tests.slackclient import SlackUser, texts

# A plan approved under older rules: its code change comes before its failing test.
CODE_FIRST = {**PLAN, "steps": [PLAN["steps"][1], PLAN["steps"][0], PLAN["steps"][2]]}


def failed_after_approval(user: SlackUser) -> None:
    """T-1 planned, approved, executed, and failed (its fix leaves a test red)."""
    user.command("run half-fix the discount")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    with user.services.db.session() as session:
        assert get_task(session, 1).state == "failed"


def test_retry_with_a_plan_todays_rules_refuse_plans_the_task_again(user: SlackUser) -> None:
    """The stale plan and its approvals are dropped; a new plan is posted and approved anew."""
    failed_after_approval(user)
    with user.services.db.session() as session:
        session.execute(update(Task).where(Task.id == 1).values(plan=CODE_FIRST))

    user.command("retry T-1")

    with user.services.db.session() as session:
        task = get_task(session, 1)
        approvals = list(session.execute(select(Approval.user_id)).scalars())
    assert (task.state, task.plan, task.plan_ts, task.approved_at) == ("queued", None, None, None)
    assert approvals == []
    assert user.services.queues.lengths()["plan"] == 1
    assert user.services.queues.lengths()["execute"] == 0

    user.work("default", "plan")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "awaiting_approval" and task.plan == {**PLAN, "changes": ""}
    thread = "\n".join(texts(m) for m in user.thread())
    assert "The approved plan no longer holds (the first test step must come before" in thread
    assert len([m for m in user.thread() if "Plan for T-1" in texts(m)]) == 2
    user.command("approve T-1", user=APPROVER)
    with user.services.db.session() as session:
        assert get_task(session, 1).state == "approved"


def test_retry_with_a_valid_approved_plan_executes_it_again(user: SlackUser) -> None:
    """A plan that still holds is executed again on retry, keeping its approval."""
    failed_after_approval(user)

    user.command("retry T-1")

    with user.services.db.session() as session:
        task = get_task(session, 1)
        approvals = list(session.execute(select(Approval.user_id)).scalars())
    assert task.state == "approved" and task.plan == {**PLAN, "changes": ""}
    assert task.approved_at is not None
    assert approvals == [APPROVER]
    assert user.services.queues.lengths()["execute"] == 1
