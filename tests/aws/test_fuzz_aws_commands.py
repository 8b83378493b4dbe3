"""Hypothesis types `/agent aws status|cost|optimize …` through the real, signed Bolt app.

AWS is configured (two accounts, two regions, moto on loopback). Whatever follows the
report's name, Slack gets a 200 whose answer is a short ephemeral message, never a
stack trace; a report job is queued exactly when the words are valid and the user may
ask, and junk changes nothing in the channel.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.aws.config import Service
from bot.aws.status import REGION
from jobs.config import AgentbotConfig
from sandbox.fakeslack import FakeSlack
from tests.aws.fleet import EAST, PROD, STAGING, STAGING_ID, WEST, make_config
from tests.conftest import REQUESTER, STRANGER
from tests.slackclient import SlackUser

LEAKS = ("Traceback", "Exception", "Error:", 'File "', "botocore", "psycopg", "sqlalchemy")
# Long enough for the usage text that names every account and service; a dump is not.
SHORT = 600

ACCOUNTS = [PROD.name, STAGING.name, STAGING_ID]
SERVICES = [s.value for s in Service]
REGIONS = [EAST, WEST]
PERIODS = ["yesterday", "week", "month"]
VOCABULARY = {w.lower() for w in [*ACCOUNTS, *SERVICES, *REGIONS, *PERIODS]}


def is_junk(word: str) -> bool:
    """A word no AWS report accepts: not a name, period, service or region-shaped."""
    bare = word.strip(",")
    return bool(bare) and bare.lower() not in VOCABULARY and not REGION.match(bare.lower())


# One word, as `str.split` cuts the command text: no whitespace of any kind, no NUL
# (which the command parser drops), no lone surrogates (which no form body carries).
JUNK = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=24
).filter(lambda w: not any(c.isspace() for c in w) and is_junk(w))
STATUS_WORD = st.sampled_from([*ACCOUNTS, *SERVICES, *REGIONS, "EC2", "prod,"])
COST_WORD = st.sampled_from([*PERIODS, "Week", "MONTH"])


@st.composite
def aws_commands(draw: st.DrawFn) -> tuple[str, list[str], bool]:
    """A report, the words after it, and whether those words are valid for it."""
    report = draw(st.sampled_from(["status", "cost", "optimize", "Status", "COST"]))
    junk = draw(st.lists(JUNK, max_size=3))
    if report.lower() == "status":
        valid_words = draw(st.lists(STATUS_WORD, max_size=3))
    elif report.lower() == "cost":
        valid_words = draw(st.lists(COST_WORD, max_size=1))
    else:
        valid_words = []
    words = draw(st.permutations(valid_words + junk))
    return report, words, not junk


@pytest.fixture
def config(config: AgentbotConfig, aws_env: str) -> AgentbotConfig:
    """The usual test configuration, with the two-account, two-region AWS set-up."""
    return config.model_copy(update={"aws": make_config()})


def queued(user: SlackUser) -> int:
    return sum(user.services.queues.lengths().values())


FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(command=aws_commands(), asker=st.sampled_from([REQUESTER, REQUESTER, STRANGER]))
def test_aws_reports_with_junk_words_are_refused_briefly_and_queue_nothing(
    user: SlackUser,
    slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    command: tuple[str, list[str], bool],
    asker: str,
) -> None:
    """Any words after `aws status|cost|optimize`: a short ephemeral answer, a job only if valid."""
    report, words, valid = command
    before, posted = queued(user), len(slack.messages)
    caplog.clear()
    response = user.command(" ".join(["aws", report, *words]), user=asker)

    assert response.status == 200
    answer: dict[str, Any] = json.loads(response.body)
    assert answer["response_type"] == "ephemeral"
    assert 0 < len(answer["text"]) <= SHORT
    assert not any(leak in answer["text"] for leak in LEAKS), answer["text"]
    faults = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not faults, [r.getMessage() for r in faults]

    if valid and asker == REQUESTER:
        # Cost and savings acknowledge first and queue after: wait for the job.
        slack.wait_for(lambda: queued(user) == before + 1)
    else:
        # A refusal is raised before the acknowledgement: the listener is done.
        assert queued(user) == before, answer["text"]
        assert len(slack.messages) == posted


def test_valid_words_do_queue_each_report(user: SlackUser, slack: FakeSlack) -> None:
    """The fuzzed grammar is the one the app acts on: each valid form queues one job."""
    for text in ("aws status", "aws status prod us-east-1 ec2", "aws cost week", "aws optimize"):
        before = queued(user)
        response = user.command(text)
        assert response.status == 200
        slack.wait_for(lambda expected=before + 1: queued(user) == expected)
