"""Hypothesis fuzzes Slack's interactive payloads through the real, signed Bolt app.

Buttons (Approve, Approve with comment, Reject, Cancel, Retry, Create action) and modal
submissions arrive with arbitrary values, users, metadata and shapes. Whatever comes,
Slack never gets a server error or a stack trace, nothing about tasks, approvals,
queues or the channel changes, and the logs hold no traceback or error line: junk is a
refusal, not a fault.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt import BoltResponse
from sqlalchemy import func, select

from bot import blocks
from bot.aws import cost_blocks
from bot.web import WebApp
from jobs.models import Approval, Task, TaskEvent
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER
from tests.slackclient import SlackUser

# Statuses Bolt may answer a signed request with; never a 5xx.
ANSWERS = {200, 400, 404}
LEAKS = ("Traceback", "Exception", "Error:", 'File "', "psycopg", "sqlalchemy")
ACTIONS = [
    blocks.APPROVE,
    blocks.APPROVE_WITH_COMMENT,
    blocks.REJECT,
    blocks.CANCEL,
    blocks.RETRY,
    cost_blocks.CREATE_ACTION,
]
VIEWS = [blocks.REJECT_VIEW, blocks.APPROVE_VIEW]

HOSTILE_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
NUMBERS = st.integers(min_value=-(10**30), max_value=10**30)
SCALARS = (
    st.none()
    | st.booleans()
    | NUMBERS
    | st.floats(allow_nan=False)
    | HOSTILE_TEXT
    | st.sampled_from(["", " ", "1 ", "T-1", "0", "-1", "2", "1e3", "1|CDEV", "x" * 5000])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
# People who may not act on T-1 (the approver is only used with values not naming it).
STRANGERS = st.sampled_from(["USTRANGER", "U0", ""]) | st.text(max_size=12)


def names_task_one(value: Any) -> bool:
    """Whether a value, read the way the listeners might read it, names T-1 (or rec 1)."""
    for candidate in (value, str(value).split("|", 1)[0]):
        try:
            if int(candidate) == 1:
                return True
        except (TypeError, ValueError, OverflowError):
            continue
    return False


@st.composite
def who_and_value(draw: st.DrawFn) -> tuple[Any, Any]:
    """A stranger with any value, or the approver with a value that names nothing real."""
    value = draw(JSON)
    if draw(st.booleans()) and not names_task_one(value):
        return APPROVER, value
    return draw(STRANGERS), value


def trigger() -> str:
    return f"trig-{uuid.uuid4().hex}"


@st.composite
def block_actions(
    draw: st.DrawFn, slack: FakeSlack, message: dict[str, Any], *, break_frame: bool = False
) -> Any:
    """A block_actions payload for one of our buttons, with junk values (and frame)."""
    user, value = draw(who_and_value())
    action: dict[str, Any] = {
        "type": "button",
        "action_id": draw(st.sampled_from(ACTIONS)),
        "block_id": draw(st.sampled_from(["b1", ""]) | HOSTILE_TEXT),
        "value": value,
        "action_ts": f"{time.time():.6f}",
    }
    body: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": "TSANDBOX"},
        "api_app_id": "AAGENTBOT",
        "team": {"id": "TSANDBOX", "domain": "sandbox"},
        "channel": {"id": draw(st.sampled_from(["CDEV", "CELSEWHERE"])), "name": "dev"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": "CDEV"},
        "message": message,
        "trigger_id": trigger(),
        "response_url": slack.new_response_url(user=str(user), channel="CDEV"),
        "actions": [action],
    }
    # Break the frame too: drop or replace a top-level field, or the action's own fields.
    if break_frame:
        target = body if draw(st.booleans()) else action
        key = draw(st.sampled_from(sorted(k for k in target if k not in {"type", "action_id"})))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(JSON)
    return body


@st.composite
def view_submissions(draw: st.DrawFn, *, break_frame: bool = False) -> Any:
    """A view_submission of our modals, with junk metadata and inputs (and frame)."""
    user, metadata = draw(who_and_value())
    reason: Any = {"text": {"type": "plain_text_input", "value": draw(JSON)}}
    if draw(st.booleans()):
        reason = draw(JSON)
    view: dict[str, Any] = {
        "id": "V1",
        "type": "modal",
        "callback_id": draw(st.sampled_from(VIEWS)),
        "private_metadata": metadata,
        "state": {"values": {"reason": reason} if draw(st.booleans()) else draw(JSON)},
    }
    body: dict[str, Any] = {
        "type": "view_submission",
        "user": {"id": user, "username": "someone", "team_id": "TSANDBOX"},
        "api_app_id": "AAGENTBOT",
        "team": {"id": "TSANDBOX", "domain": "sandbox"},
        "trigger_id": trigger(),
        "view": view,
    }
    if break_frame:
        key = draw(st.sampled_from(["user", "team", "trigger_id", "api_app_id"]))
        body[key] = draw(JSON)
    return body


def snapshot(user: SlackUser, slack: FakeSlack) -> dict[str, Any]:
    """Everything a junk click could have changed."""
    with user.services.db.session() as session:
        tasks = session.execute(
            select(Task.id, Task.state, Task.version, Task.error).order_by(Task.id)
        ).all()
        events = session.execute(select(func.count()).select_from(TaskEvent)).scalar_one()
        approvals = session.execute(select(func.count()).select_from(Approval)).scalar_one()
    seen = slack.snapshot()
    return {
        "tasks": [tuple(row) for row in tasks],
        "events": events,
        "approvals": approvals,
        "queues": user.services.queues.lengths(),
        "messages": [(m.ts, m.text) for m in slack.messages],
        "views": seen.get("views"),
    }


def assert_clean(
    response: BoltResponse,
    slack: FakeSlack,
    told_before: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert response.status in ANSWERS, response.status
    said = [str(response.body or "")]
    said += [e.text for e in slack.ephemerals[told_before:]]
    for text in said:
        assert not any(leak in text for leak in LEAKS), text
    # Junk is refused, not treated as a fault: no error line, no traceback.
    faults = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not faults, [f"{r.levelname} {r.name}: {r.getMessage()}" for r in faults]


def post(user: SlackUser, payload: Any) -> BoltResponse:
    return user.deliver(urlencode({"payload": json.dumps(payload)}))


def post_to_server(user: SlackUser, raw: str) -> BoltResponse:
    """Send a signed form body through the WSGI app `agentbot serve` runs, in-process."""
    body = raw.encode()
    ts = str(int(time.time()))
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": ts,
        "HTTP_X_SLACK_SIGNATURE": user.verifier.generate_signature(timestamp=ts, body=raw),
        "wsgi.input": io.BytesIO(body),
    }
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started.append(status)

    answer = b"".join(WebApp(user.services, user.app)(environ, start_response))
    return BoltResponse(status=int(started[0].split()[0]), body=answer.decode())


@pytest.fixture
def awaiting(user: SlackUser, slack: FakeSlack) -> dict[str, Any]:
    """T-1 planned and awaiting approval; its plan message, as a dict."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    plan = next(m for m in user.thread() if blocks.APPROVE in json.dumps(m.blocks))
    return plan.to_dict()


FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_mangled_button_clicks_get_an_answer_and_change_nothing(
    user: SlackUser,
    slack: FakeSlack,
    awaiting: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
) -> None:
    """Any of our buttons with junk values, users or shapes: no 5xx, no trace, no change."""
    before = snapshot(user, slack)
    told = len(slack.ephemerals)
    caplog.clear()
    payload = data.draw(block_actions(slack, awaiting))
    response = post(user, payload)
    assert_clean(response, slack, told, caplog)
    assert snapshot(user, slack) == before


@FUZZ
@given(payload=view_submissions())
def test_mangled_modal_submissions_get_an_answer_and_change_nothing(
    user: SlackUser,
    slack: FakeSlack,
    awaiting: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    payload: Any,
) -> None:
    """Rejection and approval modals with junk metadata or inputs: no 5xx, no trace, no change."""
    before = snapshot(user, slack)
    told = len(slack.ephemerals)
    caplog.clear()
    response = post(user, payload)
    assert_clean(response, slack, told, caplog)
    assert snapshot(user, slack) == before


@FUZZ
@given(
    raw=st.one_of(JSON.map(json.dumps), st.text(st.characters(codec="utf-8"), max_size=40)),
    data=st.data(),
)
def test_payloads_bolt_cannot_read_are_answered_plainly(
    user: SlackUser,
    slack: FakeSlack,
    awaiting: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    raw: str,
    data: st.DataObject,
) -> None:
    """A signed payload that is not JSON, or whose frame is broken: no 5xx, no change."""
    before = snapshot(user, slack)
    told = len(slack.ephemerals)
    caplog.clear()
    payload: Any = raw
    if data.draw(st.booleans()):
        payload = data.draw(
            block_actions(slack, awaiting, break_frame=True) | view_submissions(break_frame=True)
        )
    response = post_to_server(
        user, urlencode({"payload": payload if payload is raw else json.dumps(payload)})
    )
    assert_clean(response, slack, told, caplog)
    assert snapshot(user, slack) == before


def test_a_payload_that_is_not_json_gets_a_plain_400(
    user: SlackUser, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """The server answers a signed unreadable body 400 in a few words, logged as a warning."""
    response = post_to_server(user, urlencode({"payload": "{not json"}))
    assert response.status == 400
    assert response.body == "Agentbot cannot read this request."
    refusals = [r for r in caplog.records if "refused a signed Slack request" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in refusals] == [(logging.WARNING, None)]


def test_an_unsigned_unreadable_body_is_refused_as_a_forgery(user: SlackUser) -> None:
    """Without Slack's signature, an unreadable body gets Bolt's 401, not a 400 that reads it."""
    body = urlencode({"payload": "{not json"})
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(int(time.time())),
        "HTTP_X_SLACK_SIGNATURE": "v0=" + "0" * 64,
        "wsgi.input": io.BytesIO(body.encode()),
    }
    started: list[str] = []
    WebApp(user.services, user.app)(environ, lambda status, headers: started.append(status))
    assert started == ["401 Unauthorized"]


def test_the_fuzzed_frame_is_one_the_app_acts_on(
    user: SlackUser, slack: FakeSlack, awaiting: dict[str, Any]
) -> None:
    """The unmangled frame with a real value does approve: the fuzzing reaches the listeners."""
    body = {
        "type": "block_actions",
        "user": {"id": APPROVER, "username": "approver", "team_id": "TSANDBOX"},
        "api_app_id": "AAGENTBOT",
        "team": {"id": "TSANDBOX", "domain": "sandbox"},
        "channel": {"id": "CDEV", "name": "dev"},
        "container": {"type": "message", "message_ts": awaiting["ts"], "channel_id": "CDEV"},
        "message": awaiting,
        "trigger_id": trigger(),
        "response_url": slack.new_response_url(user=APPROVER, channel="CDEV"),
        "actions": [
            {
                "type": "button",
                "action_id": blocks.APPROVE,
                "block_id": "b1",
                "value": "1",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    assert post(user, body).status == 200
    assert snapshot(user, slack)["tasks"][0][1] == "approved"
