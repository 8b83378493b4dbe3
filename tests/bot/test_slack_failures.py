"""Slack answering 429 and 5xx: messages are retried and arrive once."""

from __future__ import annotations

from sandbox.fakeslack import FakeSlack
from tests.conftest import CHANNEL
from tests.slackclient import SlackUser, texts


def test_rate_limited_and_failing_slack_still_gets_each_message_once(
    user: SlackUser, slack: FakeSlack
) -> None:
    """429 with Retry-After, then 500 and 503: the card and plan each appear exactly once."""
    slack.fail_next("chat.postMessage", status=429, times=1, retry_after=1)
    slack.fail_next("chat.postMessage", status=500, times=1)
    slack.fail_next("chat.update", status=503, times=2)
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    assert [c.status for c in slack.calls_to("chat.postMessage")][:3] == [429, 500, 200]
    assert len(slack.channel_messages(CHANNEL)) == 1
    plans = [m for m in user.thread() if "Plan for T-1" in texts(m)]
    assert len(plans) == 1
    assert "awaiting approval" in texts(user.card())
