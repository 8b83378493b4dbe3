"""Who may run, approve, reject and retry, and re-delivered clicks and submissions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bot import blocks
from jobs.config import AccessConfig
from jobs.models import Approval, Task, TaskEvent
from sandbox.fakeslack import FakeSlack, Message
from tests.conftest import APPROVER, APPROVER_2, REQUESTER, STRANGER
from tests.slackclient import SlackUser, texts

RETRY_HEADERS = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


def state(user: SlackUser, task_id: int = 1) -> str:
    with user.services.db.session() as session:
        return str(session.execute(select(Task.state).where(Task.id == task_id)).scalar_one())


def count(user: SlackUser, model: type, *where: Any) -> int:
    with user.services.db.session() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int(session.execute(query).scalar_one())


def moves_to(user: SlackUser, target: str) -> int:
    return count(user, TaskEvent, TaskEvent.to_state == target)


def planned(user: SlackUser, requester: str = REQUESTER, words: str = "fix the") -> Message:
    """Run a task to its plan and return the plan message."""
    user.command(f"run {words} discount calculation", user=requester)
    user.work("default", "plan")
    return next(m for m in user.thread() if "Plan for T-1" in texts(m))


def settle(user: SlackUser) -> None:
    """Wait for every listener Bolt is still running (the app takes no more requests)."""
    user.app.listener_runner.listener_executor.shutdown(wait=True)


def recording(user: SlackUser) -> list[tuple[str, str]]:
    """Remember every body the user sends, to deliver exactly the same one again."""
    sent: list[tuple[str, str]] = []
    real = user.deliver

    def deliver(body: str, content_type: str = "application/x-www-form-urlencoded", **kw: Any):  # type: ignore[no-untyped-def]
        sent.append((body, content_type))
        return real(body, content_type, **kw)

    user.deliver = deliver  # type: ignore[method-assign]
    return sent


def with_access(user: SlackUser, **changes: Any) -> None:
    """Change the access rules of the running app."""
    services = user.services
    access = AccessConfig(**{**services.config.access.model_dump(), **changes})
    services.config = services.config.model_copy(update={"access": access})
    services.lifecycle.config = services.config
    services.access.config = access


def test_run_by_someone_not_allowed_is_refused_and_creates_nothing(
    user: SlackUser, slack: FakeSlack
) -> None:
    """A user who is not a requester gets an ephemeral refusal; no task, job or card."""
    response = user.command("run fix the discount calculation", user=STRANGER)
    assert "not on the list of people who can start tasks" in user.reply_text(response)
    assert count(user, Task) == 0
    assert user.services.queues.lengths() == {"plan": 0, "execute": 0, "default": 0}
    user.work("default")
    assert slack.messages == []


def test_reject_button_by_a_non_approver_opens_no_modal(user: SlackUser, slack: FakeSlack) -> None:
    """A stranger's Reject click is refused before a modal opens; the plan stays open."""
    plan = planned(user)
    user.click(plan, blocks.REJECT, STRANGER)
    user.click(plan, blocks.APPROVE_WITH_COMMENT, STRANGER)
    settle(user)
    assert slack.views == []
    told = user.ephemeral_texts(STRANGER)
    assert len(told) == 2 and all("Only approvers can approve or reject" in t for t in told)
    assert state(user) == "awaiting_approval"
    assert count(user, Approval) == 0


def test_reject_modal_submitted_by_a_non_approver_is_refused(
    user: SlackUser, slack: FakeSlack
) -> None:
    """A reject submission from someone who may not decide changes nothing, with a reason why."""
    plan = planned(user)
    user.click(plan, blocks.REJECT, APPROVER)
    view = slack.wait_for(lambda: slack.views and slack.views[0])
    response = user.submit_view(view, STRANGER, "I just don't like it")
    assert response.status == 200
    assert "Only approvers can approve or reject" in str(response.body)
    assert state(user) == "awaiting_approval"
    assert count(user, Approval) == 0


def test_reject_by_command_from_a_non_approver_is_refused(user: SlackUser) -> None:
    """`/agent reject` by a stranger, or by the requester, is refused and changes nothing."""
    planned(user)
    response = user.command("reject T-1 not needed", user=STRANGER)
    assert "Only approvers can approve or reject" in user.reply_text(response)
    response = user.command("reject T-1", user=REQUESTER)
    assert "Only approvers can approve or reject" in user.reply_text(response)
    assert state(user) == "awaiting_approval"
    assert moves_to(user, "rejected") == 0


def test_reject_by_command_without_a_reason_records_no_reason_given(
    user: SlackUser, slack: FakeSlack
) -> None:
    """`/agent reject T-1` needs no reason; the decision says "no reason given"."""
    planned(user)
    response = user.command("reject T-1", user=APPROVER)
    assert "You rejected T-1" in user.reply_text(response)
    assert state(user) == "rejected"
    with user.services.db.session() as session:
        approval = session.execute(select(Approval)).scalar_one()
        event = session.execute(
            select(TaskEvent).where(TaskEvent.to_state == "rejected")
        ).scalar_one()
    assert (approval.decision, approval.comment, event.reason) == (
        "reject",
        "no reason given",
        "no reason given",
    )
    user.work("default")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    assert "Rejected by <@UAPPROVER>: no reason given" in texts(plan)


def test_reject_modal_still_asks_for_a_reason(user: SlackUser, slack: FakeSlack) -> None:
    """The Reject button's modal refuses an empty reason and leaves the plan open."""
    plan = planned(user)
    user.click(plan, blocks.REJECT, APPROVER)
    view = slack.wait_for(lambda: slack.views and slack.views[0])
    response = user.submit_view(view, APPROVER, "   ")
    assert "Say why you reject the plan" in str(response.body)
    assert state(user) == "awaiting_approval"


def test_self_approval_is_allowed_when_configured(user: SlackUser, slack: FakeSlack) -> None:
    """With allow_self_approval = true an approver may approve their own task."""
    with_access(user, allow_self_approval=True)
    plan = planned(user, requester=APPROVER)
    user.click(plan, blocks.APPROVE, APPROVER)
    assert state(user) == "approved"
    assert user.services.queues.lengths()["execute"] == 1
    assert not any("someone else" in t for t in user.ephemeral_texts(APPROVER))


def test_retry_by_someone_else_is_refused(user: SlackUser, slack: FakeSlack) -> None:
    """Only the requester or an approver may retry a failed task, by button or command."""
    planned(user, words="half-fix the")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    assert state(user) == "failed"
    card = user.card()
    user.click(card, blocks.RETRY, STRANGER)
    response = user.command("retry T-1", user=STRANGER)
    assert "Only the requester or an approver can retry" in user.reply_text(response)
    settle(user)
    assert any("can retry" in t for t in user.ephemeral_texts(STRANGER))
    assert state(user) == "failed"
    assert moves_to(user, "approved") == 1
    assert user.services.queues.lengths()["execute"] == 0


def test_redelivered_approve_click_makes_one_transition(user: SlackUser, slack: FakeSlack) -> None:
    """The same block_actions payload (same trigger_id, action_ts) delivered twice counts once."""
    plan = planned(user)
    sent = recording(user)
    user.click(plan, blocks.APPROVE, APPROVER)
    body, content_type = sent[-1]
    again = user.deliver(body, content_type, headers=RETRY_HEADERS)
    assert again.status == 200
    settle(user)
    assert count(user, Approval) == 1
    assert moves_to(user, "approved") == 1
    assert user.services.queues.lengths()["execute"] == 1
    # Dropped quietly: not even an "already approved" message for the retry.
    assert not any("already" in t for t in user.ephemeral_texts(APPROVER))


def test_redelivered_reject_click_opens_one_modal_and_submission_rejects_once(
    user: SlackUser, slack: FakeSlack
) -> None:
    """A re-delivered Reject click opens no second modal; a re-delivered submission is one move."""
    plan = planned(user)
    sent = recording(user)
    user.click(plan, blocks.REJECT, APPROVER)
    user.deliver(*sent[-1], headers=RETRY_HEADERS)
    view = slack.wait_for(lambda: slack.views and slack.views[0])
    user.submit_view(view, APPROVER, "touches billing")
    first = sent[-1]
    again = user.deliver(*first, headers=RETRY_HEADERS)
    assert again.status == 200 and "errors" not in str(again.body)
    settle(user)
    assert len(slack.views) == 1
    assert state(user) == "rejected"
    assert moves_to(user, "rejected") == 1
    assert count(user, Approval, Approval.decision == "reject") == 1


@pytest.mark.parametrize("how", ["approve", "reject", "cancel"])
def test_group_membership_is_resolved_before_the_task_is_locked(
    user: SlackUser, slack: FakeSlack, how: str
) -> None:
    """Asking Slack who is in an approver group never happens while the task row is locked."""
    planned(user)
    lookups: list[bool] = []
    real = user.services.access.group_members

    def probe(group_id: str) -> frozenset[str]:
        # Another session must be able to lock the task at this moment.
        try:
            with user.services.db.engine.connect() as connection, connection.begin():
                connection.execute(text("SELECT id FROM tasks WHERE id = 1 FOR UPDATE NOWAIT"))
            lookups.append(True)
        except OperationalError:
            lookups.append(False)
        return real(group_id)

    user.services.access.group_members = probe
    response = user.command(f"{how} T-1", user=APPROVER_2)  # an approver through SAPPROVERS
    assert lookups and all(lookups), "the group was looked up with the task locked"
    assert "T-1" in user.reply_text(response)
    assert state(user) == {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}[how]
