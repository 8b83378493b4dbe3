"""Signatures, re-deliveries, double clicks and racing approvals."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from bot import blocks
from jobs.config import AccessConfig
from jobs.models import Approval, Task, TaskEvent
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, APPROVER_2, REQUESTER
from tests.slackclient import SlackUser, texts


def count(user: SlackUser, model: type) -> int:
    with user.services.db.session() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def planned(user: SlackUser) -> None:
    user.command("run fix the discount calculation")
    user.work("default", "plan")


def plan_message(user: SlackUser):  # type: ignore[no-untyped-def]
    return next(m for m in user.thread() if "Plan for T-1" in texts(m))


def test_forged_signature_is_401_and_writes_nothing(user: SlackUser) -> None:
    """A request signed with the wrong secret is refused before any listener runs."""
    body = user.command_body("run fix the discount calculation")
    response = user.deliver(body, signature="v0=" + "0" * 64)
    assert response.status == 401
    assert count(user, Task) == 0


def test_stale_timestamp_is_401_and_writes_nothing(user: SlackUser) -> None:
    """A correctly signed but replayed request from ten minutes ago is refused."""
    body = user.command_body("run fix the discount calculation")
    response = user.deliver(body, timestamp=int(time.time()) - 600)
    assert response.status == 401
    assert count(user, Task) == 0


def test_redelivered_command_creates_one_task(user: SlackUser) -> None:
    """The same delivery (same trigger_id), sent again with Slack's retry header, is taken once."""
    body = user.command_body("run fix the discount calculation", trigger_id="trig-once")
    first = user.deliver(body)
    again = user.deliver(body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "x"})
    assert "T-1 queued" in user.reply_text(first)
    assert again.status == 200 and "queued" not in user.reply_text(again)
    assert count(user, Task) == 1
    assert user.services.queues.lengths()["plan"] == 1


def test_failed_first_delivery_is_processed_on_retry(user: SlackUser, slack: FakeSlack) -> None:
    """When processing fails, the retry of the same delivery is processed, not dropped."""
    body = user.command_body("run fix the discount calculation", trigger_id="trig-retry")
    real_request = user.services.lifecycle.request
    calls = {"n": 0}

    def flaky(**kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        return real_request(**kwargs)

    user.services.lifecycle.request = flaky  # type: ignore[method-assign]
    first = user.deliver(body)
    assert "try again" in user.reply_text(first).lower()
    assert count(user, Task) == 0
    second = user.deliver(body, headers={"X-Slack-Retry-Num": "1"})
    assert "T-1 queued" in user.reply_text(second)
    assert count(user, Task) == 1


def test_double_clicked_approve_moves_the_task_once(user: SlackUser, slack: FakeSlack) -> None:
    """Two clicks of Approve by one approver: one approval, one transition."""
    planned(user)
    plan = plan_message(user)
    user.click(plan, blocks.APPROVE, APPROVER)
    user.click(plan, blocks.APPROVE, APPROVER)
    assert count(user, Approval) == 1
    with user.services.db.session() as session:
        moves = session.execute(
            select(func.count()).select_from(TaskEvent).where(TaskEvent.to_state == "approved")
        ).scalar_one()
    assert moves == 1
    assert user.services.queues.lengths()["execute"] == 1
    assert any("already approved" in t for t in user.ephemeral_texts(APPROVER))


def test_racing_approvals_in_threads_make_exactly_one_transition(
    user: SlackUser, slack: FakeSlack
) -> None:
    """Two approvers clicking at the same instant: exactly one moves the task."""
    planned(user)
    plan = plan_message(user)
    barrier = threading.Barrier(2)

    def click(who: str) -> None:
        barrier.wait()
        user.click(plan, blocks.APPROVE, who)

    threads = [threading.Thread(target=click, args=(who,)) for who in (APPROVER, APPROVER_2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with user.services.db.session() as session:
        moves = session.execute(
            select(func.count()).select_from(TaskEvent).where(TaskEvent.to_state == "approved")
        ).scalar_one()
        state = session.execute(select(Task.state)).scalar_one()
    assert moves == 1 and state == "approved"
    assert user.services.queues.lengths()["execute"] == 1


def test_two_approvals_required_moves_on_the_second_distinct_approver(
    user: SlackUser, slack: FakeSlack
) -> None:
    """With approvals_required = 2, the first approval waits and the second moves it."""
    config = user.services.config
    user.services.config = config.model_copy(
        update={"access": AccessConfig(**{**config.access.model_dump(), "approvals_required": 2})}
    )
    user.services.lifecycle.config = user.services.config
    planned(user)
    plan = plan_message(user)
    user.click(plan, blocks.APPROVE, APPROVER)
    # The count is told through response_url after the click was acknowledged.
    slack.wait_for(lambda: any("1 of 2" in t for t in user.ephemeral_texts(APPROVER)))
    with user.services.db.session() as session:
        assert session.execute(select(Task.state)).scalar_one() == "awaiting_approval"
    user.click(plan, blocks.APPROVE, APPROVER_2)  # an approver through the user group
    with user.services.db.session() as session:
        assert session.execute(select(Task.state)).scalar_one() == "approved"
    assert count(user, Approval) == 2


def test_requester_cannot_cancel_someone_elses_task(user: SlackUser) -> None:
    """Only the requester or an approver may cancel; others are refused."""
    planned(user)
    response = user.command("cancel T-1", user="UOTHER")
    assert "Only the requester or an approver" in user.reply_text(response)
    response = user.command("cancel T-1", user=REQUESTER)
    assert "cancelled" in user.reply_text(response)
    response = user.command("cancel T-1", user=REQUESTER)
    assert "nothing to cancel" in user.reply_text(response)
