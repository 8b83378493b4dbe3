"""What the Slack notifier sends: masked text everywhere, and Slack's own permalinks."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime

import pytest
from slack_sdk import WebClient

from bot.logging import Redactor
from bot.notifier import SlackNotifier
from bot.runtime import job_context
from bot.services import Services
from jobs.aws.cost_reports import make_report
from jobs.config import AgentbotConfig
from jobs.states import TaskState
from jobs.tasks import transition
from sandbox.fakeslack import TEAM_DOMAIN, FakeSlack
from tests.conftest import CHANNEL, SIGNING_SECRET
from tests.cost.conftest import (  # noqa: F401 (fixtures)
    AWS,
    aws_endpoint,
    cost_config,
    history,
    moto_endpoint,
    queue_ce_results,
)
from tests.slackclient import SlackUser, texts

SLACK_TOKEN = "xoxb-3333333333-abcdefghijklmnop"
REMOTE = "https://x-access-token:ghp_secret123@github.com/acme/x.git"
MASKED_REMOTE = "https://x-access-token:[REDACTED]@github.com/acme/x.git"
NOW = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def config(config: AgentbotConfig, aws_endpoint: str) -> AgentbotConfig:  # noqa: F811
    """The shared configuration plus `[aws]` and `[cost]`, for a real cost report."""
    return config.model_copy(update={"aws": AWS, "cost": cost_config()})


def notifier(services: Services) -> SlackNotifier:
    """The notifier the workers use, on the real slack_sdk client and the fake Slack."""
    return SlackNotifier(services.db, services.slack, services.redis, services.config)


def sent(slack: FakeSlack) -> str:
    """Every parameter of every Web API call, as one string."""
    return "\n".join(json.dumps(call.params, default=str) for call in slack.calls)


def test_thread_messages_and_progress_are_masked(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """Thread messages and the edited progress line show credentials masked."""
    user.command("run fix the discount calculation")
    user.work("default")
    slack_side = notifier(services)

    slack_side.say(1, f"git push {REMOTE} said: bad token {SLACK_TOKEN}")
    slack_side.progress(1, f"Running git fetch {REMOTE}")
    slack_side.progress(1, f"Token {SLACK_TOKEN} refused")

    thread = [texts(message) for message in user.thread()]
    assert f"git push {MASKED_REMOTE} said: bad token [REDACTED]" in thread
    progress = next(text for text in thread if "Running git fetch" in text)
    assert MASKED_REMOTE in progress and "Token [REDACTED] refused" in progress
    assert "ghp_secret123" not in sent(slack) and SLACK_TOKEN not in sent(slack)


def test_progress_shows_each_phase_in_order_and_once(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """Executing starts its own lines: planning's last lines never come before its
    first, and a line sent twice in a row shows once."""
    user.command("run fix the discount calculation")
    user.work("default")
    slack_side = notifier(services)

    def move(*states: TaskState) -> None:
        with services.db.session() as session:
            for source, target in itertools.pairwise(states):
                assert transition(session, 1, source, target)

    move(TaskState.QUEUED, TaskState.PLANNING)
    slack_side.progress(1, "Preparing the workspace")
    slack_side.progress(1, "Reading the repository")
    slack_side.progress(1, "Reading the repository")
    planning = progress_text(user)
    move(
        TaskState.PLANNING,
        TaskState.AWAITING_APPROVAL,
        TaskState.APPROVED,
        TaskState.EXECUTING,
    )
    slack_side.progress(1, "Preparing the workspace")
    executing = progress_text(user)

    assert planning.splitlines()[1:] == ["• Preparing the workspace", "• Reading the repository"]
    assert executing.startswith(":hammer_and_wrench: *Executing*")
    assert executing.splitlines()[1:] == ["• Preparing the workspace"]


def test_a_long_description_is_whole_in_the_thread(user: SlackUser) -> None:
    """A 4 kB description: the card carries its head, the thread's first message all of it."""
    description = "Checkout totals are wrong with coupons. " + "Steps to reproduce: ... " * 160
    user.command(f"run {description}")
    user.work("default")

    card = texts(user.card())
    first, *_ = user.thread()
    assert len(card) < 1000 and "The full description is in the thread" in card
    assert description.strip() in first.text


def progress_text(user: SlackUser) -> str:
    """The task's one progress message, as it reads now."""
    [message] = [m for m in user.thread() if "Preparing the workspace" in m.text]
    return message.text


def test_cost_report_blocks_and_chart_comment_are_masked(
    services: Services,
    slack: FakeSlack,
    aws_endpoint: str,  # noqa: F811
) -> None:
    """A report's header, blocks, fallback text and chart comment never carry a token."""
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(date(2025, 3, 14), 42)})
    report = make_report(
        services.db,
        services.redis,
        services.config,
        services.settings.aws_session,
        "yesterday",
        kind="test",
        now=NOW,
    )

    posted = notifier(services).cost_report(
        CHANNEL, report, title=f"Costs for {SLACK_TOKEN}", chart=b"\x89PNG\r\n\x1a\nfake"
    )

    assert posted.file_id is not None
    report_message, chart_message = slack.channel_messages(CHANNEL)
    assert "Costs for [REDACTED]" in texts(report_message)
    assert report_message.blocks[0]["text"]["text"] == "Costs for [REDACTED]"
    assert "Costs for [REDACTED]" in chart_message.text  # the file's comment
    assert SLACK_TOKEN not in sent(slack)


def test_the_clients_own_token_is_masked_even_without_a_known_shape(
    services: Services, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token no pattern recognises is still masked when it is the client's own."""
    own = "custom-gateway-credential-7f3a9c"
    monkeypatch.setattr(slack, "token", own)  # the token this Slack accepts
    client = WebClient(token=own, base_url=services.slack.base_url)
    SlackNotifier(services.db, client, services.redis, services.config).post_text(
        CHANNEL, f"configured with {own}"
    )
    [message] = slack.channel_messages(CHANNEL)
    assert message.text == "configured with [REDACTED]"


def test_permalink_is_slacks_own_and_none_when_slack_has_none(
    services: Services, slack: FakeSlack
) -> None:
    """chat.getPermalink answers through SLACK_API_URL; an unknown message gives None."""
    ts = str(services.slack.chat_postMessage(channel=CHANNEL, text="T-1 · queued")["ts"])
    slack_side = notifier(services)

    assert slack_side.permalink(CHANNEL, ts) == (
        f"https://{TEAM_DOMAIN}.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"
    )
    assert slack_side.permalink(CHANNEL, "1.000001") is None
    assert [call.params["message_ts"] for call in slack.calls_to("chat.getPermalink")] == [
        ts,
        "1.000001",
    ]


def test_a_secret_escaped_on_the_card_is_still_masked(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """A secret with `&`, `<`, `>` in a task's description reaches the card masked, not escaped."""
    secret = "hunter2&<friends>-k9"
    user.command(f"run rotate the key {secret} before Friday")
    slack_side = SlackNotifier(
        services.db, services.slack, services.redis, services.config, redactor=Redactor([secret])
    )
    slack_side.sync(1)
    assert "rotate the key [REDACTED] before Friday" in texts(user.card())
    assert "hunter2" not in sent(slack)


def test_aws_reports_are_masked_like_task_messages(services: Services, slack: FakeSlack) -> None:
    """The AWS reporter the workers use masks the process's secrets in what it posts."""
    reporter = job_context(services).aws_reporter
    assert reporter is not None
    reporter.failed(CHANNEL, None, f"AWS status cannot run: role said {SIGNING_SECRET}.")
    [message] = slack.channel_messages(CHANNEL)
    assert message.text == ":x: AWS status cannot run: role said [REDACTED]."
    assert SIGNING_SECRET not in sent(slack)
