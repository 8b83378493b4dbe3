"""`@agentbot …` typed in the sandbox page: a channel message, and Slack's app_mention event.

The page's endpoints run on the fake Slack; the bot is the real Bolt app behind its
WSGI app on a loopback port. The fake delivers the mention as real Slack does: a
signed `event_callback` POSTed to the app's request URL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from jobs.models import Task
from sandbox.fakeslack import APP_ID, BOT_USER, TEAM, FakeSlack
from sandbox.workspace import Channel, Person, Workspace
from tests.conftest import APPROVER, CHANNEL, REQUESTER, SIGNING_SECRET
from tests.sandbox.pageclient import Page, find, visible_text
from tests.slackclient import SlackUser

PEOPLE = [Person(REQUESTER, "Ada", "requester"), Person(APPROVER, "Grace", "approver")]


def open_page(slack: FakeSlack, events_url: str, secret: str = SIGNING_SECRET) -> Page:
    """The sandbox page on the fake Slack, whose events go to the bot's request URL."""
    Workspace(
        slack,
        events_url=events_url,
        signing_secret=secret,
        people=PEOPLE,
        channels=[Channel(CHANNEL, "dev")],
    ).install()
    slack.subscribe_events(events_url, secret)
    return Page(slack.url)


@pytest.fixture
def page(slack: FakeSlack, events_url: str) -> Iterator[Page]:
    """The page, delivering commands and events to the bot."""
    yield open_page(slack, events_url)
    slack.routes.clear()
    slack.subscription = None


def type_message(page: Page, text: str, thread_ts: str | None = None) -> str:
    """Type a message in the page's composer as the requester; returns its ts."""
    status, answer = page.post(
        "/ui/message", user=REQUESTER, channel=CHANNEL, text=text, thread_ts=thread_ts
    )
    assert status == 200, answer
    return str(answer["ts"])


def settle(user: SlackUser) -> None:
    """Wait for every listener Bolt started after acknowledging (the app takes no more)."""
    user.app.listener_runner.listener_executor.shutdown(wait=True)


def events(slack: FakeSlack) -> list[dict[str, Any]]:
    """Every event callback the fake delivered, as sent."""
    return [delivery.body for delivery in slack.event_deliveries]


def private_replies(page: Page, person: str, thread_ts: str) -> list[dict[str, Any]]:
    """What the bot told `person` alone in a thread."""
    return [e for e in page.state(person)["ephemerals"] if e.get("thread_ts") == thread_ts]


def tasks(user: SlackUser) -> int:
    """How many tasks exist."""
    with user.services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Task)) or 0)


def test_typed_mention_is_a_channel_message_and_a_signed_app_mention(
    page: Page, slack: FakeSlack, user: SlackUser
) -> None:
    """`@agentbot help` shows as the user's message, reaches Bolt signed, is answered privately."""
    before = int(time.time())
    ts = type_message(page, "@agentbot help")

    said = find(page.state(APPROVER), "help", thread=False)
    assert said is not None
    assert (said["ts"], said["user"], said["text"]) == (ts, REQUESTER, f"<@{BOT_USER}> help")

    [delivery] = slack.event_deliveries
    assert delivery.status == 200, delivery.error
    body = delivery.body
    assert (body["type"], body["team_id"], body["api_app_id"]) == ("event_callback", TEAM, APP_ID)
    assert body["event_id"].startswith("Ev") and body["event_time"] >= before
    assert body["authorizations"][0]["user_id"] == BOT_USER
    event = body["event"]
    assert {k: event[k] for k in ("type", "user", "text", "ts", "channel", "event_ts")} == {
        "type": "app_mention",
        "user": REQUESTER,
        "text": f"<@{BOT_USER}> help",
        "ts": ts,
        "channel": CHANNEL,
        "event_ts": ts,
    }
    assert "thread_ts" not in event

    settle(user)
    user.work("default")
    # The answer is in the mention's thread, for the person who asked only.
    assert not [m for m in page.state(REQUESTER)["messages"] if m.get("thread_ts") == ts]
    [reply] = private_replies(page, REQUESTER, ts)
    assert "/agent run <description>" in visible_text(reply)
    assert private_replies(page, APPROVER, ts) == []
    assert tasks(user) == 0


def test_mention_run_creates_a_task_whose_card_appears(
    page: Page, slack: FakeSlack, user: SlackUser
) -> None:
    """`@agentbot run fix the discount` queues T-1; its card and the thread answer show up."""
    ts = type_message(page, "@agentbot run fix the discount")
    settle(user)
    assert tasks(user) == 1

    user.work("default", "plan")
    state = page.state(APPROVER)
    card = find(state, "T-1 · fix the discount", thread=False)
    assert card is not None and "awaiting approval" in visible_text(card)
    answer = private_replies(page, REQUESTER, ts)
    assert any("T-1 queued" in visible_text(m) for m in answer), [visible_text(m) for m in answer]


def test_mention_typed_in_a_thread_carries_thread_ts_and_is_answered_there(
    page: Page, slack: FakeSlack, user: SlackUser
) -> None:
    """A mention typed in a thread is delivered with thread_ts; the answer stays in that thread."""
    root = type_message(page, "the totals look off")
    assert slack.event_deliveries == []  # no mention, no event

    reply = type_message(page, "@AgentBot help", thread_ts=root)
    [event] = [body["event"] for body in events(slack)]
    assert (event["ts"], event["thread_ts"]) == (reply, root)

    settle(user)
    user.work("default")
    thread = [m for m in page.state(REQUESTER)["messages"] if m.get("thread_ts") == root]
    assert [m["ts"] for m in thread] == [reply]
    [answer] = private_replies(page, REQUESTER, root)
    assert "/agent run <description>" in visible_text(answer)
    assert private_replies(page, REQUESTER, reply) == []


def test_plain_messages_only_appear_in_the_channel(
    page: Page, slack: FakeSlack, user: SlackUser
) -> None:
    """Messages without the bot's mention (or with its name inside a word) reach no app."""
    for text in ("run fix the discount", "mail me at ops@agentbot.example", "@agentbots help"):
        type_message(page, text)
    texts = [m["text"] for m in page.state(REQUESTER)["messages"]]
    assert texts == ["run fix the discount", "mail me at ops@agentbot.example", "@agentbots help"]
    assert slack.event_deliveries == []
    settle(user)
    assert tasks(user) == 0


def test_a_mention_signed_with_the_wrong_secret_is_refused(
    slack: FakeSlack, events_url: str, user: SlackUser
) -> None:
    """Bolt refuses an event it cannot verify: 401, no task; the message still shows."""
    page = open_page(slack, events_url, secret="not-the-signing-secret")
    try:
        type_message(page, "@agentbot run fix the discount")
        shown = find(page.state(REQUESTER), "fix the discount", thread=False)
    finally:
        slack.routes.clear()
        slack.subscription = None
    assert shown is not None
    assert [d.status for d in slack.event_deliveries] == [401]
    settle(user)
    assert tasks(user) == 0
