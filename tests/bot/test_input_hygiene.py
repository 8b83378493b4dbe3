"""Odd input gets a short refusal: no traceback in the log, nothing stored."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select

from bot import blocks
from bot.app import build_app
from bot.web import UNREADABLE, WebApp
from jobs.models import Approval, SlackDelivery, Task
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, REQUESTER, SIGNING_SECRET
from tests.slackclient import SlackUser, texts


def rows(user: SlackUser, model: type) -> int:
    with user.services.db.session() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert all(r.exc_info is None for r in caplog.records)


def plan_of(user: SlackUser):  # type: ignore[no-untyped-def]
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    return next(m for m in user.thread() if "Plan for T-1" in texts(m))


def modal(user: SlackUser, slack: FakeSlack, action: str) -> dict[str, Any]:
    user.click(plan_of(user), action, APPROVER)
    view: dict[str, Any] = slack.wait_for(lambda: slack.views and slack.views[-1])
    return view


@pytest.mark.parametrize(
    ("action", "value", "refusal"),
    [
        (blocks.REJECT, "no\x00thanks", "a NUL or a lone surrogate"),
        (blocks.REJECT, "bad \ud800 half", "a NUL or a lone surrogate"),
        (blocks.APPROVE_WITH_COMMENT, "lgtm " * 120_000, "too long (over 2000 characters)"),
        (blocks.REJECT, "no " * 700, "too long (over 2000 characters)"),
    ],
    ids=["NUL", "lone surrogate", "600,000 characters", "2,100 characters"],
)
def test_a_reason_slack_would_not_send_is_refused_in_the_modal(
    user: SlackUser,
    slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    action: str,
    value: str,
    refusal: str,
) -> None:
    """The modal says what is wrong; the plan stays open and no decision is stored."""
    view = modal(user, slack, action)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = user.submit_view(view, APPROVER, value)
    body = json.loads(response.body)
    assert body["response_action"] == "errors"
    assert refusal in body["errors"]["reason"]
    assert rows(user, Approval) == 0
    with user.services.db.session() as session:
        assert session.get(Task, 1).state == "awaiting_approval"  # type: ignore[union-attr]
    no_tracebacks(caplog)


def test_unicode_digits_are_not_a_task_id(user: SlackUser) -> None:
    """`T-٣` is not read as T-3: the answer says it is not a task id."""
    for n in range(3):
        user.command(f"run fix bug {n}")
    reply = user.reply_text(user.command("status T-٣", user=REQUESTER))
    assert "is not a task id" in reply
    assert "T-3 ·" not in reply


def post(web: WebApp, body: str, content_type: str) -> tuple[str, bytes]:
    """POST a signed body to /slack/events through the WSGI app."""
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    raw = body.encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
        "HTTP_X_SLACK_SIGNATURE": signature,
        "wsgi.input": io.BytesIO(raw),
    }
    answer: list[str] = []
    chunks = web(environ, lambda status, headers: answer.append(status))
    return answer[0], b"".join(chunks)


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_id", "U" + "A" * 99), ("trigger_id", "1" * 300), ("channel_id", "C\x00DEV")],
    ids=["100-character user id", "300-character trigger id", "NUL in a channel id"],
)
def test_ids_slack_never_sends_are_refused_by_the_web_layer(
    user: SlackUser, caplog: pytest.LogCaptureFixture, field: str, value: str
) -> None:
    """A signed command whose ids are not Slack's shape is answered 400, unread."""
    web = WebApp(user.services, build_app(user.services))
    form = dict(parse_qsl(user.command_body("run fix it")))
    form[field] = value
    with caplog.at_level(logging.INFO):
        status, body = post(web, urlencode(form), "application/x-www-form-urlencoded")
    assert (status, body.decode()) == ("400 Bad Request", UNREADABLE)
    assert rows(user, Task) == 0 and rows(user, SlackDelivery) == 0
    no_tracebacks(caplog)


def test_a_json_body_on_the_form_endpoint_is_refused(
    user: SlackUser, caplog: pytest.LogCaptureFixture
) -> None:
    """A command posted as JSON (Slack posts commands as forms) creates nothing."""
    web = WebApp(user.services, build_app(user.services))
    command = dict(parse_qsl(user.command_body("run fix it")))
    with caplog.at_level(logging.INFO):
        status, body = post(web, json.dumps(command), "application/json")
    assert (status, body.decode()) == ("400 Bad Request", UNREADABLE)
    assert rows(user, Task) == 0
    no_tracebacks(caplog)


def test_a_click_whose_action_ts_slack_never_sends_is_refused_by_the_web_layer(
    user: SlackUser, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed click with a 5,000-character `action_ts` (it keys the click's
    de-duplication record) is answered 400: nothing stored, no traceback."""
    web = WebApp(user.services, build_app(user.services))
    click = {
        "type": "block_actions",
        "user": {"id": APPROVER, "username": "approver", "team_id": "TSANDBOX"},
        "team": {"id": "TSANDBOX", "domain": "sandbox"},
        "channel": {"id": "CDEV", "name": "dev"},
        "trigger_id": "trig-1",
        "actions": [{"type": "button", "action_id": blocks.APPROVE, "action_ts": "1" * 5000}],
    }
    with caplog.at_level(logging.INFO):
        status, body = post(
            web, urlencode({"payload": json.dumps(click)}), "application/x-www-form-urlencoded"
        )
    assert (status, body.decode()) == ("400 Bad Request", UNREADABLE)
    assert rows(user, SlackDelivery) == 0
    no_tracebacks(caplog)
