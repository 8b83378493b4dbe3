"""The sandbox page's actions reach a real Bolt app as signed Slack requests, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from bot import blocks
from jobs.models import Task
from jobs.tasks import get_task
from sandbox.fakeslack import FakeSlack
from sandbox.workspace import Channel, Person, Workspace
from tests.conftest import APPROVER, CHANNEL, REQUESTER, SIGNING_SECRET
from tests.sandbox.pageclient import Page, button_block, find, visible_text
from tests.slackclient import SlackUser

PEOPLE = [Person(REQUESTER, "Ada", "requester"), Person(APPROVER, "Grace", "approver")]


def open_workspace(
    slack: FakeSlack, events_url: str, secret: str = SIGNING_SECRET, ack_seconds: float = 3.0
) -> Page:
    Workspace(
        slack,
        events_url=events_url,
        signing_secret=secret,
        people=PEOPLE,
        channels=[Channel(CHANNEL, "dev")],
        ack_seconds=ack_seconds,
    ).install()
    return Page(slack.url)


@pytest.fixture
def page(slack: FakeSlack, events_url: str) -> Iterator[Page]:
    """The sandbox page's endpoints on the fake Slack, delivering to the bot."""
    yield open_workspace(slack, events_url)
    slack.routes.clear()


def task_state(user: SlackUser, task_id: int = 1) -> str:
    with user.services.db.session() as session:
        return get_task(session, task_id).state


def test_typed_command_is_signed_delivered_and_its_card_appears(page: Page, user: SlackUser):
    """/agent typed in the page reaches Bolt signed; the card, plan and outcome show up."""
    status, answer = page.post(
        "/ui/command",
        user=REQUESTER,
        channel=CHANNEL,
        text="/agent run fix the discount calculation",
    )
    assert status == 200 and answer["status"] == 200, answer
    assert task_state(user) == "queued"
    mine = page.state(REQUESTER)
    assert any("T-1 queued" in e["text"] for e in mine["ephemerals"])
    # Ephemeral: the approver sees none of it.
    assert page.state(APPROVER)["ephemerals"] == []

    user.work("default", "plan")
    state = page.state(APPROVER)
    card = find(state, "T-1 · fix the discount calculation", thread=False)
    assert card is not None and "awaiting approval" in visible_text(card)
    plan = find(state, "Plan for T-1", thread=True)
    assert plan is not None and plan["thread_ts"] == card["ts"]

    status, answer = page.post(
        "/ui/click",
        user=APPROVER,
        channel=CHANNEL,
        ts=plan["ts"],
        action_id=blocks.APPROVE,
        block_id=button_block(plan, blocks.APPROVE),
    )
    assert status == 200 and answer["status"] == 200, answer
    assert task_state(user) == "approved"

    user.work("default", "execute")
    state = page.state(REQUESTER)
    outcome = find(state, "T-1 succeeded", thread=True)
    assert outcome is not None, [visible_text(m) for m in state["messages"]]
    card = find(state, "T-1 · fix the discount calculation", thread=False)
    assert card is not None and card["edited"]["count"] >= 3


def test_wrong_signing_secret_is_refused_and_the_page_says_so(
    slack: FakeSlack, events_url: str, user: SlackUser
):
    """A request signed with the wrong secret is refused by Bolt; nothing is created."""
    page = open_workspace(slack, events_url, secret="not-the-signing-secret")
    try:
        status, answer = page.post(
            "/ui/command", user=REQUESTER, channel=CHANNEL, text="/agent run fix the discount"
        )
        texts = [e["text"] for e in page.state(REQUESTER)["ephemerals"]]
    finally:
        slack.routes.clear()
    assert status == 200 and answer["status"] == 401
    assert texts == ['`/agent run fix the discount` failed with the error "http_service_error"']
    with user.services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0


def test_a_late_acknowledgement_is_dropped_as_slack_drops_it(
    slack: FakeSlack, events_url: str, user: SlackUser
):
    """An answer after Slack's deadline is not shown; the user reads operation_timeout."""
    page = open_workspace(slack, events_url, ack_seconds=0.0)
    try:
        status, answer = page.post("/ui/command", user=REQUESTER, channel=CHANNEL, text="help")
        texts = [e["text"] for e in page.state(REQUESTER)["ephemerals"]]
    finally:
        slack.routes.clear()
    assert status == 200 and answer["status"] == 200
    assert len(texts) == 1
    assert texts[0].startswith('`/agent help` failed with the error "operation_timeout"')
    assert "Agentbot" not in texts[0]  # the help text itself never arrives


def test_reject_opens_a_modal_for_the_clicker_and_needs_a_reason(page: Page, user: SlackUser):
    """Reject opens a modal only the approver sees; an empty reason keeps it open."""
    page.post("/ui/command", user=REQUESTER, channel=CHANNEL, text="run fix the discount bug")
    user.work("default", "plan")
    plan = find(page.state(APPROVER), "Plan for T-1", thread=True)
    assert plan is not None
    status, answer = page.post(
        "/ui/click", user=APPROVER, channel=CHANNEL, ts=plan["ts"], action_id=blocks.REJECT
    )
    assert status == 200 and answer["status"] == 200

    modals = page.state(APPROVER)["modals"]
    assert [m["view"]["callback_id"] for m in modals] == [blocks.REJECT_VIEW]
    assert page.state(REQUESTER)["modals"] == []
    view_id = modals[0]["id"]

    page.post("/ui/submit", user=APPROVER, view_id=view_id, values={"reason": {"text": ""}})
    modals = page.state(APPROVER)["modals"]
    assert modals and modals[0]["errors"] == {"reason": "Say why you reject the plan."}
    assert task_state(user) == "awaiting_approval"

    page.post(
        "/ui/submit",
        user=APPROVER,
        view_id=view_id,
        values={"reason": {"text": "touches billing, needs a design review"}},
    )
    assert page.state(APPROVER)["modals"] == []
    assert task_state(user) == "rejected"


def test_button_on_an_ephemeral_message_works(page: Page, user: SlackUser):
    """`/agent status` answers with a card only its asker sees; its Cancel button works."""
    page.post("/ui/command", user=REQUESTER, channel=CHANNEL, text="run fix the discount bug")
    page.post("/ui/command", user=REQUESTER, channel=CHANNEL, text="status T-1")
    status_card = next(
        e for e in page.state(REQUESTER)["ephemerals"] if "T-1" in visible_text(e) and e["blocks"]
    )
    status, answer = page.post(
        "/ui/click",
        user=REQUESTER,
        channel=CHANNEL,
        ts=status_card["ts"],
        action_id=blocks.CANCEL,
    )
    assert status == 200 and answer["status"] == 200
    assert task_state(user) == "cancelled"


def test_bad_page_requests_are_refused_without_reaching_the_bot(page: Page, user: SlackUser):
    """Unknown people, messages and buttons get a 400 and change nothing."""
    assert page.post("/ui/command", user="UNOBODY", channel=CHANNEL, text="run x")[0] == 400
    assert page.post("/ui/command", user=REQUESTER, channel="CNOPE", text="run x")[0] == 400
    status, answer = page.post(
        "/ui/click", user=APPROVER, channel=CHANNEL, ts="1.000", action_id=blocks.APPROVE
    )
    assert status == 400 and "no message" in answer["error"]
    assert page.post("/ui/submit", user=APPROVER, view_id="V404", values={})[0] == 400
    with user.services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0
