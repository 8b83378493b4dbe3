"""`/agent aws …` answers only the people who may request work, for every report."""

from __future__ import annotations

import pytest

from agents.aws.config import AwsAccount, AwsConfig
from bot.app import build_app
from bot.services import Services
from jobs.config import AgentbotConfig
from sandbox.fakeslack import FakeSlack
from tests.conftest import CHANNEL, SIGNING_SECRET, STRANGER
from tests.slackclient import SlackUser


@pytest.fixture
def aws_user(services: Services, slack: FakeSlack, config: AgentbotConfig) -> SlackUser:
    """The app with an `[aws]` table configured (no AWS is reached before the check)."""
    services.config = config.model_copy(
        update={"aws": AwsConfig(accounts=[AwsAccount(name="prod")], regions=["us-east-1"])}
    )
    return SlackUser(build_app(services), SIGNING_SECRET, slack, services)


@pytest.mark.parametrize(
    "words", ["aws status", "aws status prod us-east-1", "aws cost week", "aws optimize"]
)
def test_aws_reports_are_refused_to_people_who_may_not_request(
    aws_user: SlackUser, slack: FakeSlack, words: str
) -> None:
    """A stranger asking for any AWS report is refused; no job is queued, nothing is posted."""
    response = aws_user.command(words, user=STRANGER)
    assert aws_user.reply_text(response) == (
        "You are not on the list of people who can ask for AWS reports."
    )
    assert aws_user.services.queues.lengths() == {"plan": 0, "execute": 0, "default": 0}
    assert slack.channel_messages(CHANNEL) == []


def test_unknown_aws_report_lists_every_report(aws_user: SlackUser) -> None:
    """`/agent aws <typo>` names status, cost and optimize."""
    reply = aws_user.reply_text(aws_user.command("aws stauts"))
    assert reply.startswith("Which AWS report?")
    for report in ("/agent aws status", "/agent aws cost", "/agent aws optimize"):
        assert report in reply
