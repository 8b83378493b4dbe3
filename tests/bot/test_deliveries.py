"""Signatures, re-deliveries, double clicks and racing approvals."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from sqlalchemy import func, select

from bot import blocks
from bot.app import build_app
from bot.dedupe import delivery_key
from bot.services import build_services
from bot.settings import Settings
from jobs.config import AccessConfig, AgentbotConfig
from jobs.exceptions import UNAVAILABLE
from jobs.models import Approval, SlackDelivery, Task, TaskEvent
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, APPROVER_2, BOT_TOKEN, REQUESTER, SIGNING_SECRET
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


def test_racing_copies_of_one_run_make_one_task_and_later_retries_stay_dropped(
    user: SlackUser,
) -> None:
    """Copies of one `/agent run` at the same instant, then another: one task, one job.

    The run is claimed in the transaction that creates its task; a copy that loses the
    claim is acknowledged with an empty 200 and must not release the winner's claim.
    """
    body = user.command_body("run fix the discount calculation", trigger_id="trig-race")
    barrier = threading.Barrier(4)
    replies: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        replies.append(user.deliver(body, headers={"X-Slack-Retry-Num": "1"}))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    late = user.deliver(body, headers={"X-Slack-Retry-Num": "2"})
    queued = [reply for reply in replies if "T-1 queued" in user.reply_text(reply)]
    assert len(replies) == 4 and all(reply.status == 200 for reply in [*replies, late])
    assert len(queued) == 1 and "queued" not in user.reply_text(late)
    assert count(user, Task) == 1 and count(user, SlackDelivery) == 1
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


# -- the keys deliveries are claimed under -------------------------------------------------

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
READ_FIELDS = ("event_id", "command", "trigger_id", "type", "actions")


@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "event_id": ANY_JSON,
            "command": ANY_JSON,
            "trigger_id": ANY_JSON,
            "type": st.sampled_from(["block_actions", "view_submission"]) | ANY_JSON,
            "actions": ANY_JSON | st.lists(st.dictionaries(st.just("action_ts"), ANY_JSON)),
        },
    )
)
def test_delivery_key_takes_any_shape(body: dict[str, Any]) -> None:
    """Fields of any type give a key made of Slack's ids, or no key; never an exception."""
    key = delivery_key(body)
    assert key is None or ("None" not in key.split(":") and key.count(":") in (1, 2))


def test_delivery_keys_of_slacks_own_shapes() -> None:
    """Events, commands, clicks and submissions are keyed by Slack's ids; junk has no key."""
    click = {"type": "block_actions", "trigger_id": "t1", "actions": [{"action_ts": "1.5"}]}
    assert delivery_key({"event_id": "Ev1", "type": "event_callback"}) == "event:Ev1"
    assert delivery_key({"command": "/agent", "trigger_id": "t1"}) == "command:t1"
    assert delivery_key(click) == "action:t1:1.5"
    assert delivery_key({"type": "view_submission", "trigger_id": "t1"}) == "view:t1"
    assert delivery_key({**click, "actions": "junk"}) is None
    assert delivery_key({**click, "actions": [["1.5"]]}) is None
    assert delivery_key({**click, "trigger_id": ["t1"]}) is None
    assert delivery_key({"event_id": {"id": "Ev1"}}) is None
    assert delivery_key(["not", "an", "object"]) is None


def test_a_click_whose_actions_are_not_a_list_is_refused_quietly(
    user: SlackUser, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed click with `actions` as text: answered, nothing claimed or written, no error."""
    planned(user)
    body = {
        "type": "block_actions",
        "user": {"id": APPROVER},
        "trigger_id": "trig-junk",
        "actions": "plan_approve",
    }
    claimed = count(user, SlackDelivery)
    caplog.clear()
    response = user.deliver(urlencode({"payload": json.dumps(body)}))
    assert response.status == 200
    faults = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not faults, [r.getMessage() for r in faults]
    assert count(user, Approval) == 0
    assert count(user, SlackDelivery) == claimed


# -- a database that never answers -------------------------------------------------------


@pytest.fixture
def counting_silent_database() -> Iterator[tuple[str, socket.socket]]:
    """A URL whose server accepts TCP connections, never answers, and can count them.

    Nothing accepts while the test runs: each connection attempt waits in the listen
    backlog, to be counted afterwards.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    yield f"postgresql://agentbot@127.0.0.1:{port}/agentbot", listener
    listener.close()


def connection_attempts(listener: socket.socket) -> int:
    """How many connections reached the listener (each taken off its backlog)."""
    listener.setblocking(False)
    taken = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return taken
        connection.close()
        taken += 1


def test_a_silent_database_is_asked_once_per_command(
    counting_silent_database: tuple[str, socket.socket],
    redis_url: str,
    redis_client: Redis,
    slack: FakeSlack,
    config: AgentbotConfig,
) -> None:
    """When the claim times out, the error handler does not ask the database again.

    A second attempt (to release a claim that was never made) would double the wait
    past Slack's three seconds.
    """
    url, listener = counting_silent_database
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=url,
        REDIS_URL=redis_url,
    )
    services = build_services(settings.with_config(config))
    try:
        user = SlackUser(build_app(services), SIGNING_SECRET, slack, services)
        response = user.command("run fix the discount calculation")
        assert json.loads(response.body) == {"response_type": "ephemeral", "text": UNAVAILABLE}
        assert connection_attempts(listener) == 1
        assert services.queues.lengths()["plan"] == 0
    finally:
        services.db.dispose()
