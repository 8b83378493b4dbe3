"""Mentions of the bot: the `/agent` grammar in a channel, answered in the mention's thread."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis import Redis
from rq import Queue
from slack_bolt import Ack, BoltResponse
from sqlalchemy import func, select

from bot.app import build_app
from bot.listeners.events import answer_of, blocks_as_text, command_text
from bot.runtime import job_context
from bot.services import build_services
from bot.settings import Settings
from jobs.config import AgentbotConfig
from jobs.context import install
from jobs.exceptions import UNAVAILABLE
from jobs.models import Task
from jobs.queues import DEFAULT
from sandbox.fakeslack import FakeSlack, Message
from tests.conftest import BOT_TOKEN, CHANNEL, REQUESTER, SIGNING_SECRET, STRANGER
from tests.services import free_port
from tests.slackclient import SlackUser

BOT = "U0AGENTBOT"
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def mention(
    user: SlackUser,
    slack: FakeSlack,
    words: str,
    *,
    who: str = REQUESTER,
    event_id: str | None = None,
    in_thread: Message | None = None,
    retry: int | None = None,
    said: Message | None = None,
) -> tuple[Message, BoltResponse]:
    """Say `@agentbot <words>` in the channel and deliver Slack's app_mention event for it."""
    text = f"<@{BOT}> {words}"
    if said is None:
        said = slack.post_message(who, CHANNEL, text, thread_ts=in_thread.ts if in_thread else None)
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": who,
        "text": text,
        "ts": said.ts,
        "channel": CHANNEL,
        "event_ts": said.ts,
    }
    if in_thread is not None:
        event["thread_ts"] = in_thread.ts
    body = {
        "token": "legacy",
        "team_id": "TSANDBOX",
        "api_app_id": "AAGENTBOT",
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "TSANDBOX", "user_id": BOT, "is_bot": True}],
        "event": event,
    }
    headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    response = user.deliver(
        json.dumps(body), "application/json", headers=headers if retry else None
    )
    return said, response


def replies_queued(user: SlackUser) -> int:
    """How many thread replies wait on the default queue."""
    jobs = Queue(DEFAULT, connection=user.services.redis).get_jobs()
    return sum(1 for job in jobs if job.func_name == "jobs.thread_reply.post_reply")


def settle(user: SlackUser) -> None:
    """Wait for every listener Bolt started after acknowledging (the app takes no more)."""
    user.app.listener_runner.listener_executor.shutdown(wait=True)


def replies(slack: FakeSlack, said: Message) -> list[str]:
    """What everyone in the channel reads in the mention's thread (besides the mention)."""
    return [m.text for m in slack.thread(CHANNEL, said.ts)]


def private_replies(slack: FakeSlack, said: Message, who: str = REQUESTER) -> list[str]:
    """What only `who` was shown in the thread of a mention, through chat.postEphemeral."""
    thread = said.thread_ts or said.ts
    return [
        e.text
        for e in slack.ephemerals
        if e.via == "chat.postEphemeral"
        and (e.user, e.channel, e.thread_ts) == (who, CHANNEL, thread)
    ]


def tasks(user: SlackUser) -> int:
    with user.services.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Task)).scalar_one())


def test_mention_run_queues_a_task_and_answers_in_the_thread(
    user: SlackUser, slack: FakeSlack
) -> None:
    """`@agentbot run … --repo …` is acknowledged at once, queues a task, tells its author."""
    said, response = mention(user, slack, "run fix the discount calculation --repo acme/calc")
    assert response.status == 200
    settle(user)
    with user.services.db.session() as session:
        task = session.execute(select(Task)).scalar_one()
    assert (task.description, task.repo, task.requester, task.channel) == (
        "fix the discount calculation",
        "acme/calc",
        REQUESTER,
        CHANNEL,
    )
    assert private_replies(slack, said) == []  # nothing is posted before a worker runs
    user.work("default", "plan")
    (note,) = private_replies(slack, said)
    assert "T-1 queued for `acme/calc`" in note
    assert replies(slack, said) == []  # the card, in the channel, is what everyone sees
    assert "awaiting approval" in str(user.card().blocks)


def test_mention_status_answers_with_the_task_in_the_thread(
    user: SlackUser, slack: FakeSlack
) -> None:
    """`@agentbot status T-1` shows its author alone the task's state, repo and requester."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    said, _ = mention(user, slack, "status T-1", who=STRANGER)
    settle(user)
    user.work("default")
    assert replies(slack, said) == []
    (reply,) = private_replies(slack, said, STRANGER)
    assert "T-1 · fix the discount calculation" in reply
    assert "awaiting approval" in reply and "acme/calc" in reply and f"<@{REQUESTER}>" in reply


def test_mention_help_and_bare_mention_answer_with_usage(user: SlackUser, slack: FakeSlack) -> None:
    """`@agentbot help`, and the bot's name alone, show the usage in the thread."""
    first, _ = mention(user, slack, "help")
    second, _ = mention(user, slack, "")
    settle(user)
    user.work("default")
    for said in (first, second):
        (reply,) = private_replies(slack, said)
        assert "/agent run <description>" in reply
    assert tasks(user) == 0


def test_mention_inside_a_thread_is_answered_in_that_thread(
    user: SlackUser, slack: FakeSlack
) -> None:
    """A mention in a reply is answered in the thread it belongs to, not a new one."""
    parent = slack.post_message(REQUESTER, CHANNEL, "the totals look off")
    said, _ = mention(user, slack, "help", in_thread=parent)
    settle(user)
    user.work("default")
    (reply,) = private_replies(slack, said)
    assert "/agent help" in reply
    assert [e.thread_ts for e in slack.ephemerals] == [parent.ts]


def test_bad_mentions_get_a_short_answer_and_change_nothing(
    user: SlackUser, slack: FakeSlack
) -> None:
    """Unknown words, an empty run, an unknown task or a stranger's run: a private brief reply."""
    cases = {
        "frobnicate the thing": "Unknown command `frobnicate`",
        "run": "Describe the work",
        "status T-99": "T-99",
        "run fix it --repo nobody/else": "Unknown repo `nobody/else`",
    }
    said = {words: mention(user, slack, words)[0] for words in cases}
    stranger, _ = mention(user, slack, "run fix the discount calculation", who=STRANGER)
    settle(user)
    user.work("default")
    for words, expected in cases.items():
        assert replies(slack, said[words]) == []
        (reply,) = private_replies(slack, said[words])
        assert expected in reply
        assert "Traceback" not in reply and len(reply) < 300
    assert replies(slack, stranger) == []
    (refusal,) = private_replies(slack, stranger, STRANGER)
    assert "not on the list of people who can start tasks" in refusal
    assert tasks(user) == 0
    assert user.services.queues.lengths()["plan"] == 0


def test_redelivered_event_is_processed_once(user: SlackUser, slack: FakeSlack) -> None:
    """The same event_id sent again with X-Slack-Retry-Num creates no second task or reply."""
    said, first = mention(user, slack, "run fix the discount calculation", event_id="EvONCE")
    _, again = mention(
        user, slack, "run fix the discount calculation", event_id="EvONCE", retry=1, said=said
    )
    assert first.status == again.status == 200
    settle(user)
    assert tasks(user) == 1
    assert user.services.queues.lengths()["plan"] == 1
    assert replies_queued(user) == 1
    user.work("default")
    assert len(private_replies(slack, said)) == 1


def test_url_verification_is_answered_with_the_challenge(user: SlackUser) -> None:
    """Slack's check of the events URL gets its challenge back, signed requests only."""
    body = json.dumps({"token": "legacy", "challenge": "c-123", "type": "url_verification"})
    response = user.deliver(body, "application/json")
    assert response.status == 200 and "c-123" in str(response.body)
    forged = user.deliver(body, "application/json", signature="v0=" + "0" * 64)
    assert forged.status == 401


def test_manifest_subscribes_to_mentions() -> None:
    """The manifest sends app_mention events to /slack/events and asks for app_mentions:read."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"].endswith("/slack/events")
    assert "app_mention" in events["bot_events"]
    assert "app_mentions:read" in manifest["oauth_config"]["scopes"]["bot"]


def test_command_text_drops_the_leading_mention_and_unescapes() -> None:
    """Only the bot's leading mention is removed; Slack's &lt; &gt; &amp; become what was typed."""
    assert command_text("<@U0AGENTBOT> run a &amp;&amp; b &lt;x&gt;") == "run a && b <x>"
    assert command_text("<@U0AGENTBOT|agentbot>: status T-3") == "status T-3"
    assert command_text("  <@U0AGENTBOT>   run ping <@UOTHER>") == "run ping <@UOTHER>"


def test_blocks_as_text_keeps_what_people_read() -> None:
    """A card's header, fields and context survive as text; buttons do not."""
    text = blocks_as_text(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "T-1 · fix"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*State*\nqueued"},
                    {"type": "mrkdwn", "text": "*Repo*\n`a/b`"},
                ],
            },
            {"type": "actions", "elements": [{"type": "button", "text": {"text": "Cancel"}}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "scripted agent"}]},
        ]
    )
    assert text == "*T-1 · fix*\n*State*: queued · *Repo*: `a/b`\nscripted agent"


def test_mention_list_is_shown_only_to_its_author(user: SlackUser, slack: FakeSlack) -> None:
    """`@agentbot list` names tasks from any channel, so only the one who asked sees it."""
    user.command("run fix the discount calculation", channel="CPRIVATE")
    said, _ = mention(user, slack, "list")
    settle(user)
    user.work("default")
    assert replies(slack, said) == []
    (listing,) = private_replies(slack, said)
    assert "T-1" in listing and "fix the discount calculation" in listing


def test_answer_of_keeps_whether_an_answer_is_for_everyone() -> None:
    """An answer acknowledged `in_channel` is public; an ephemeral one (or none) is not."""
    public, private, silent = Ack(), Ack(), Ack()  # type: ignore[no-untyped-call]
    public(text="for all", response_type="in_channel")
    private(text="for you", response_type="ephemeral")
    assert answer_of(public) == ("for all", True)
    assert answer_of(private) == ("for you", False)
    assert answer_of(silent) is None


@pytest.fixture
def databaseless_user(
    redis_url: str, redis_client: Redis, slack: FakeSlack, config: AgentbotConfig
) -> Iterator[SlackUser]:
    """A real app whose database refuses every connection (nothing listens on its port)."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=f"postgresql://agentbot@127.0.0.1:{free_port()}/agentbot",
        REDIS_URL=redis_url,
    )
    services = build_services(settings.with_config(config))
    install(job_context(services))
    yield SlackUser(build_app(services), SIGNING_SECRET, slack, services)
    services.db.dispose()


def test_mention_while_the_database_is_down_is_answered_once(
    databaseless_user: SlackUser, slack: FakeSlack
) -> None:
    """With the database down a mention gets 200 (no retries from Slack) and one "try again"."""
    user = databaseless_user
    said, response = mention(user, slack, "run fix the discount calculation")
    assert response.status == 200
    settle(user)
    assert replies_queued(user) == 1
    user.work("default")
    assert private_replies(slack, said) == [UNAVAILABLE]
    assert replies(slack, said) == []
