"""Nothing unsigned acts: the web layer verifies Slack's signature before Bolt parses a byte.

Each request here goes over real HTTP to the real WSGI app. Its `response_url` points
at a sink server that records whatever reaches it, so an answer sent to a URL taken
from an unverified body would show there.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select

from bot import blocks
from bot.app import build_app
from bot.services import Services
from bot.web import WebApp
from jobs.models import SlackDelivery, Task
from sandbox.fakeslack import FakeSlack
from tests.conftest import CHANNEL, REQUESTER, SIGNING_SECRET
from tests.slackclient import SlackUser


class Sink:
    """A loopback HTTP server that records every request made to it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sink.requests.append((self.path, self.rfile.read(length).decode()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


@pytest.fixture
def address(services: Services) -> Iterator[tuple[str, int]]:
    """The real web app on a loopback HTTP server."""
    server = make_server(
        "127.0.0.1",
        0,
        WebApp(services, build_app(services)),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield ("127.0.0.1", server.server_port)
    server.shutdown()
    server.server_close()


def post(
    address: tuple[str, int], body: bytes, content_type: str, headers: dict[str, bytes]
) -> tuple[int, bytes]:
    """POST to /slack/events with headers sent byte for byte (non-ASCII included)."""
    connection = http.client.HTTPConnection(*address, timeout=10)
    connection.putrequest("POST", "/slack/events")
    connection.putheader("Content-Type", content_type)
    connection.putheader("Content-Length", str(len(body)))
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = (response.status, response.read())
    connection.close()
    return answer


def signed_headers(body: bytes, timestamp: str | None = None) -> dict[str, bytes]:
    stamp = timestamp or str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
    return {
        "X-Slack-Request-Timestamp": stamp.encode(),
        "X-Slack-Signature": str(signature).encode(),
    }


def command_body(sink: Sink) -> tuple[bytes, str]:
    fields = {
        "team_id": "TSANDBOX",
        "channel_id": CHANNEL,
        "user_id": REQUESTER,
        "command": "/agent",
        "text": "run fix the discount calculation",
        "response_url": sink.url,
        "trigger_id": f"trig-{uuid.uuid4().hex}",
    }
    return urlencode(fields).encode(), "application/x-www-form-urlencoded"


def interactivity_body(sink: Sink) -> tuple[bytes, str]:
    payload = {
        "type": "block_actions",
        "user": {"id": REQUESTER, "team_id": "TSANDBOX"},
        "team": {"id": "TSANDBOX"},
        "channel": {"id": CHANNEL},
        "trigger_id": f"trig-{uuid.uuid4().hex}",
        "response_url": sink.url,
        "actions": [
            {
                "type": "button",
                "action_id": blocks.APPROVE,
                "block_id": "b",
                "value": "T-999",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


def event_body(_sink: Sink) -> tuple[bytes, str]:
    payload = {
        "type": "event_callback",
        "team_id": "TSANDBOX",
        "api_app_id": "AAGENTBOT",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": REQUESTER,
            "text": "<@UBOT> run fix the discount calculation",
            "ts": f"{time.time():.6f}",
            "channel": CHANNEL,
        },
    }
    return json.dumps(payload).encode(), "application/json"


BODIES = {"command": command_body, "interactivity": interactivity_body, "event": event_body}


def _forged(body: bytes) -> dict[str, dict[str, bytes]]:
    """Header sets no one holding the secret would send, keyed by what is wrong."""
    now = str(int(time.time()))
    good = signed_headers(body, now)
    return {
        "non-numeric timestamp": {**good, "X-Slack-Request-Timestamp": b"abc"},
        "empty timestamp": {**good, "X-Slack-Request-Timestamp": b""},
        "negative timestamp": {**good, "X-Slack-Request-Timestamp": b"-" + now.encode()},
        "huge timestamp": {**good, "X-Slack-Request-Timestamp": b"9" * 5000},
        "non-ASCII signature": {**good, "X-Slack-Signature": "v0=é".encode() + b"0" * 62},
        "truncated signature": {**good, "X-Slack-Signature": good["X-Slack-Signature"][:20]},
        "missing timestamp": {"X-Slack-Signature": good["X-Slack-Signature"]},
        "missing signature": {"X-Slack-Request-Timestamp": now.encode()},
        "missing both": {},
    }


FORGERIES = list(_forged(b""))


def rows(services: Services) -> tuple[int, int]:
    with services.db.session() as session:
        tasks = session.execute(select(func.count()).select_from(Task)).scalar_one()
        claims = session.execute(select(func.count()).select_from(SlackDelivery)).scalar_one()
    return int(tasks), int(claims)


def settle(services: Services, sink: Sink, slack: FakeSlack, kind: str) -> None:
    """Wait for the signed request's listener, which Bolt may run after acknowledging it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done = sink.requests if kind == "interactivity" else rows(services)[0] == 1
        if done:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the signed {kind} request was not processed")
    # The listener may still be writing after its first effect: wait until nothing moves.
    seen = None
    while time.monotonic() < deadline:
        now = (rows(services), services.queues.lengths(), len(sink.requests), len(slack.calls))
        if now == seen:
            return
        seen = now
        time.sleep(0.3)
    raise AssertionError(f"the signed {kind} request was not processed")


@pytest.mark.parametrize("kind", list(BODIES))
@pytest.mark.parametrize("forgery", FORGERIES)
def test_unverified_request_is_401_and_touches_nothing(
    kind: str,
    forgery: str,
    address: tuple[str, int],
    services: Services,
    slack: FakeSlack,
    sink: Sink,
    user: SlackUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request whose signature cannot be verified is refused, and nothing acts on it.

    A captured signed request, replayed after the forgery, still makes exactly one task:
    the forgery released no de-duplication record.
    """
    body, content_type = BODIES[kind](sink)
    captured = signed_headers(body)
    status, _ = post(address, body, content_type, captured)
    assert status == 200
    settle(services, sink, slack, kind)
    before = rows(services)
    queued = services.queues.lengths()
    sink.requests.clear()
    slack.reset()
    caplog.clear()

    with caplog.at_level(logging.INFO):
        status, answer = post(address, body, content_type, _forged(body)[forgery])

    assert status == 401 and json.loads(answer) == {"error": "invalid request"}
    time.sleep(0.2)  # an event's listener would run after the acknowledgement
    assert rows(services) == before
    assert services.queues.lengths() == queued
    assert sink.requests == [] and slack.calls == []
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in refusals] == [
        "refused an unverified Slack request"
    ]
    assert all(r.exc_info is None for r in caplog.records)

    if kind == "interactivity":
        return  # a click creates no task; its replay is the approval tests' business
    status, _ = post(address, body, content_type, captured)
    assert status == 200
    time.sleep(0.2)
    assert rows(services) == before and before[0] == 1


def test_error_handler_never_acts_on_an_unverified_body(
    user: SlackUser, services: Services, slack: FakeSlack, sink: Sink
) -> None:
    """A request that reaches Bolt unverified and fails there is answered 401, nothing more.

    The web layer stops such requests first; this guards the error handler itself, in
    case a request arrives by another way.
    """
    command = command_body(sink)[0].decode()
    claimed = user.deliver(command, headers={"X-Slack-Request-Timestamp": "abc"})
    assert claimed.status == 401
    event = json.loads(event_body(sink)[0])
    click = interactivity_body(sink)[0].decode()
    assert user.deliver(click, headers={"X-Slack-Request-Timestamp": "abc"}).status == 401
    mention = user.deliver(
        json.dumps(event), "application/json", headers={"X-Slack-Request-Timestamp": "abc"}
    )
    assert mention.status == 401
    user.work()
    assert rows(services) == (0, 0)
    assert sink.requests == [] and slack.calls == []
