"""A Slack Web API on loopback: the real `slack_sdk` client talks to it over HTTP.

It keeps channels, threads, edits, ephemeral messages, modals and uploaded files the
way Slack does, validates Block Kit against Slack's limits (so a message Slack would
reject is rejected here too), and records every call. It can be told to answer the
next calls of a method with a 429 (with Retry-After) or a 5xx. The local sandbox
renders from it (see `sandbox.workspace`, which adds the browser page through the
`routes` hook); tests assert against it.

Like Slack, it delivers Events API callbacks to the app's request URL once told
where that is (`subscribe_events`): a message someone posts that mentions the bot
(`<@UAGENTBOT>`) reaches the app as a signed `event_callback` with an `app_mention`
event, and a person opening the app's Home tab (`open_home`) as `app_home_opened`: the
two events the app's manifest subscribes to. `views.publish` keeps each person's Home.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

BOT_USER = "UAGENTBOT"
BOT_NAME = "agentbot"
TEAM = "TSANDBOX"
TEAM_DOMAIN = "sandbox"
APP_ID = "AAGENTBOT"
# Slack waits this long for an app to acknowledge an event.
EVENT_ACK_SECONDS = 3.0
# What a Slack client sends for `@agentbot` typed at a word's start: the bot's user id.
TYPED_MENTION = re.compile(rf"(?<![\w<@])@{BOT_NAME}\b", re.IGNORECASE)


class _QuietServer(ThreadingHTTPServer):
    """A threading HTTP server for which a reader who went away is no error.

    A closed tab, or a person switch that drops the page's long poll, leaves the
    answer nowhere to go; the standard server prints a traceback for each.
    """

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing when the client hung up; otherwise report as the standard server does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class Message:
    """A message as a channel shows it."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str = BOT_USER
    thread_ts: str | None = None
    edited: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Slack's JSON shape (roughly) of the message."""
        data: dict[str, Any] = {
            "type": "message",
            "channel": self.channel,
            "ts": self.ts,
            "text": self.text,
            "blocks": self.blocks,
            "user": self.user,
        }
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.edited:
            data["edited"] = {"user": self.user, "ts": self.ts, "count": self.edited}
        if self.files:
            data["files"] = self.files
        return data


@dataclass
class Call:
    """One recorded Web API call."""

    method: str
    params: dict[str, Any]
    token: str | None
    status: int


@dataclass
class Ephemeral:
    """A message only one user sees (response_url, chat.postEphemeral, an ack)."""

    user: str | None
    channel: str | None
    text: str
    blocks: list[dict[str, Any]]
    via: str
    ts: str = ""
    thread_ts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ephemeral as the sandbox page reads it."""
        return {
            "ts": self.ts,
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "text": self.text,
            "blocks": self.blocks,
            "via": self.via,
        }


@dataclass(frozen=True)
class EventSubscription:
    """Where the app wants its events (its manifest's request URL) and how to sign them."""

    request_url: str
    signing_secret: str
    app_id: str = APP_ID


@dataclass
class EventDelivery:
    """One event callback sent to the app, and how the app answered."""

    body: dict[str, Any]
    status: int
    error: str | None = None


def mention_event(message: Message) -> dict[str, Any]:
    """The `app_mention` event Slack sends for a message that mentions the bot."""
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "channel": message.channel,
        "event_ts": message.ts,
        "team": TEAM,
        "client_msg_id": str(uuid.uuid4()),
    }
    if message.thread_ts:
        event["thread_ts"] = message.thread_ts
    return event


# A route added through `FakeSlack.routes`: (query parameters, request body) ->
# (HTTP status, response body, content type).
Route = Callable[[dict[str, str], bytes], tuple[int, bytes, str]]


def block_errors(blocks: list[dict[str, Any]]) -> list[str]:
    """Slack's own limits for message blocks; empty when the blocks are acceptable."""
    errors = []
    if len(blocks) > 50:
        errors.append("no more than 50 items allowed [json-pointer:/blocks]")
    for index, block in enumerate(blocks):
        kind = block.get("type")
        text = block.get("text") or {}
        if kind == "header" and len(text.get("text", "")) > 150:
            errors.append(f"must be less than 151 characters [json-pointer:/blocks/{index}/text]")
        if kind == "section":
            if text and len(text.get("text", "")) > 3000:
                errors.append(
                    f"must be less than 3001 characters [json-pointer:/blocks/{index}/text]"
                )
            for field_ in block.get("fields", []) or []:
                if len(field_.get("text", "")) > 2000:
                    errors.append(f"field too long [json-pointer:/blocks/{index}/fields]")
            if len(block.get("fields", []) or []) > 10:
                errors.append(f"no more than 10 fields [json-pointer:/blocks/{index}/fields]")
            if not text and not block.get("fields"):
                errors.append(f"missing text or fields [json-pointer:/blocks/{index}]")
        if kind == "actions" and len(block.get("elements", [])) > 25:
            errors.append(f"too many elements [json-pointer:/blocks/{index}/elements]")
    return errors


def signed_request(
    url: str, verifier: SignatureVerifier, body: str, content_type: str
) -> urllib.request.Request:
    """A POST of `body` to an app's request URL, signed as Slack signs what it sends.

    Args:
        url: The app's request URL (`…/slack/events`).
        verifier: Holds the app's signing secret.
        body: The request body, as sent.
        content_type: `application/json` (events) or a form (commands, interactivity).
    """
    timestamp = str(int(time.time()))
    signature = verifier.generate_signature(timestamp=timestamp, body=body) or ""
    return urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        },
    )


class FakeSlack:
    """The fake workspace and its HTTP server."""

    def __init__(
        self,
        *,
        token: str | None = "xoxb-test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        groups: dict[str, list[str]] | None = None,
    ) -> None:
        self.token = token
        self.groups = dict(groups or {})
        self.messages: list[Message] = []
        self.ephemerals: list[Ephemeral] = []
        self.views: list[dict[str, Any]] = []
        # Each person's published Home tab (`views.publish`), by user id.
        self.homes: dict[str, dict[str, Any]] = {}
        # Channel id -> its members, as `users.conversations` reports them.
        self.channel_members: dict[str, set[str]] = {}
        self.calls: list[Call] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.response_urls: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, list[tuple[int, int]]] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._last_micros = 0
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.subscription: EventSubscription | None = None
        self.event_deliveries: list[EventDelivery] = []
        # Extra HTTP endpoints keyed by (method, path), e.g. ("GET", "/"): how the
        # sandbox serves its page and its UI actions from this same server.
        self.routes: dict[tuple[str, str], Route] = {}
        self._version = 0
        self._server = _QuietServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL should be set to."""
        return self.url + "api/"

    def start(self) -> FakeSlack:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (and release the port, even if serving never started)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every message, call and injected failure."""
        with self._lock:
            self.messages.clear()
            self.ephemerals.clear()
            self.views.clear()
            self.homes.clear()
            self.channel_members.clear()
            self.calls.clear()
            self.files.clear()
            self.response_urls.clear()
            self._failures.clear()
            self.event_deliveries.clear()
            self._notify("reset", {})

    # -- test and sandbox helpers ------------------------------------------------------

    def fail_next(
        self, method: str, status: int = 429, times: int = 1, retry_after: int = 1
    ) -> None:
        """Answer the next `times` calls of `method` with `status` (no effect on state)."""
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def new_response_url(self, **context: Any) -> str:
        """A response_url for a command or action, remembered with its context."""
        token = uuid.uuid4().hex
        with self._lock:
            self.response_urls[token] = context
        return f"{self.url}response/{token}"

    def channel_messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel, oldest first."""
        with self._lock:
            return [m for m in self.messages if m.channel == channel and m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies in a thread, oldest first."""
        with self._lock:
            return [m for m in self.messages if m.channel == channel and m.thread_ts == ts]

    @property
    def version(self) -> int:
        """A counter that grows with every change a reader could see."""
        with self._lock:
            return self._version

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until `version` exceeds `since` or `timeout` passes; returns `version`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._version <= since:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._version

    def record_ephemeral(
        self,
        *,
        user: str | None,
        channel: str | None,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        via: str,
        thread_ts: str | None = None,
    ) -> Ephemeral:
        """Show one user a message no one else sees (what Slack does with an ack body)."""
        with self._lock:
            ephemeral = Ephemeral(
                user=user,
                channel=channel,
                text=text,
                blocks=list(blocks or []),
                via=via,
                ts=self._next_ts(),
                thread_ts=thread_ts,
            )
            self.ephemerals.append(ephemeral)
            self._notify("ephemeral", {"user": user, "channel": channel})
            return ephemeral

    def subscribe_events(
        self, request_url: str, signing_secret: str, *, app_id: str = APP_ID
    ) -> None:
        """Deliver the app's events (mentions of the bot) to its request URL, signed.

        Args:
            request_url: The app's Events API URL (`…/slack/events`).
            signing_secret: The app's signing secret, as Slack shares it with the app.
            app_id: The app's id, sent as `api_app_id`.
        """
        with self._lock:
            self.subscription = EventSubscription(request_url, signing_secret, app_id)

    def post_message(
        self,
        user: str,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> Message:
        """A message someone other than the bot posted (a person typing, or Slack itself).

        `@agentbot` typed in it becomes `<@UAGENTBOT>`, as a Slack client sends it. A
        person's message that mentions the bot then reaches the app as an
        `app_mention` event, once `subscribe_events` said where; the call returns
        after the app acknowledged it (or failed to).
        """
        if user != BOT_USER:
            text = TYPED_MENTION.sub(f"<@{BOT_USER}>", text)
        with self._lock:
            message = Message(
                channel=channel,
                ts=self._next_ts(),
                text=text,
                blocks=list(blocks or []),
                user=user,
                thread_ts=thread_ts,
            )
            self.messages.append(message)
            self._notify("message", {"user": user, "channel": channel})
            subscription = self.subscription
        # Outside the lock: the app answers through this same fake while it handles it.
        if subscription is not None and user != BOT_USER and f"<@{BOT_USER}>" in text:
            self._deliver_event(subscription, mention_event(message))
        return message

    def _deliver_event(self, subscription: EventSubscription, event: dict[str, Any]) -> None:
        body = {
            "token": "sandbox-verification-token",
            "team_id": TEAM,
            "context_team_id": TEAM,
            "context_enterprise_id": None,
            "api_app_id": subscription.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM,
                    "user_id": BOT_USER,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_urlsafe(24),
        }
        request = signed_request(
            subscription.request_url,
            SignatureVerifier(subscription.signing_secret),
            json.dumps(body),
            "application/json",
        )
        status, error = 0, None
        try:
            with urllib.request.urlopen(request, timeout=EVENT_ACK_SECONDS * 3) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            error = str(exc)
        if status != 200:
            log.warning(
                "the app did not accept event %s: %s", body["event_id"], error or f"HTTP {status}"
            )
        with self._lock:
            self.event_deliveries.append(EventDelivery(body, status, error))
            self._notify("event", {"event_id": body["event_id"], "status": status})

    def record_change(self, kind: str) -> None:
        """Wake whoever waits for a change (for state kept beside the fake)."""
        with self._lock:
            self._notify(kind, {})

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of what a client could see: messages, ephemerals, modals."""
        with self._lock:
            return {
                "version": self._version,
                "messages": [message.to_dict() for message in self.messages],
                "ephemerals": [
                    {**ephemeral.to_dict(), "user": ephemeral.user} for ephemeral in self.ephemerals
                ],
                "views": [json.loads(json.dumps(view)) for view in self.views],
                "homes": json.loads(json.dumps(self.homes)),
                "files": [
                    {key: value for key, value in stored.items() if key != "data"}
                    for stored in self.files.values()
                ],
            }

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `predicate()` is truthy (re-checked on every change)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the fake Slack never saw what was expected")
                self._changed.wait(min(remaining, 0.2))

    # -- the API -----------------------------------------------------------------------

    def _next_ts(self) -> str:
        # As Slack's: the moment of posting (so the page can show it), in microseconds,
        # and unique, so that a ts names one message.
        with self._lock:
            micros = max(time.time_ns() // 1000, self._last_micros + 1)
            self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _notify(self, kind: str, payload: dict[str, Any]) -> None:
        self._version += 1
        self._changed.notify_all()
        for listener in list(self.listeners):
            listener(kind, payload)

    def handle_api(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one Web API call: (HTTP status, JSON body, extra headers)."""
        with self._lock:
            queued = self._failures.get(method)
            if queued:
                status, retry_after = queued.pop(0)
                self.calls.append(Call(method, params, token, status))
                headers = {"Retry-After": str(retry_after)} if status == 429 else {}
                body = {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
                return status, body, headers
            self.calls.append(Call(method, params, token, 200))
            if self.token is not None and token != self.token:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            handler = getattr(self, "_api_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            result: dict[str, Any] = handler(params)
            self._notify(method, params)
            return 200, result, {}

    @staticmethod
    def _blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
        blocks = params.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return list(blocks)

    def _api_auth_test(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": BOT_USER, "team_id": TEAM, "bot_id": "BAGENTBOT"}

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        blocks = self._blocks(params)
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        errors = block_errors(blocks)
        if errors:
            return {"ok": False, "error": "invalid_blocks", "errors": errors}
        thread_ts = params.get("thread_ts") or None
        if thread_ts and not any(m.ts == thread_ts for m in self.messages):
            return {"ok": False, "error": "thread_not_found"}
        message = Message(
            channel=str(params["channel"]),
            ts=self._next_ts(),
            text=str(params.get("text") or ""),
            blocks=blocks,
            thread_ts=thread_ts,
        )
        self.messages.append(message)
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "message": message.to_dict(),
        }

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages:
            if message.channel == params.get("channel") and message.ts == params.get("ts"):
                blocks = self._blocks(params)
                errors = block_errors(blocks)
                if errors:
                    return {"ok": False, "error": "invalid_blocks", "errors": errors}
                message.text = str(params.get("text") or message.text)
                if "blocks" in params:
                    message.blocks = blocks
                message.edited += 1
                return {
                    "ok": True,
                    "channel": message.channel,
                    "ts": message.ts,
                    "message": message.to_dict(),
                }
        return {"ok": False, "error": "message_not_found"}

    def _api_chat_getPermalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("message_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        message = next((m for m in self.messages if m.channel == channel and m.ts == ts), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        # Slack's own shape: the workspace's domain, and the thread for a reply.
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{message.ts.replace('.', '')}"
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        ephemeral = Ephemeral(
            user=params.get("user"),
            channel=params.get("channel"),
            text=str(params.get("text") or ""),
            blocks=self._blocks(params),
            via="chat.postEphemeral",
            ts=self._next_ts(),
            thread_ts=params.get("thread_ts") or None,
        )
        self.ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ephemeral.ts}

    def _api_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = params.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        view["id"] = f"V{len(self.views) + 1:06d}"
        view["trigger_id"] = params["trigger_id"]
        self.views.append(view)
        return {"ok": True, "view": view}

    def _api_views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = params.get("user_id")
        view = params.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        if not user or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        blocks = list(view.get("blocks") or [])
        # A Home view takes 100 blocks (a message 50); every other limit is a message's.
        errors = block_errors(blocks[:50]) + block_errors(blocks[50:])
        if len(blocks) > 100:
            errors.append("no more than 100 items allowed [json-pointer:/view/blocks]")
        if errors:
            metadata = {"messages": errors}
            return {"ok": False, "error": "invalid_arguments", "response_metadata": metadata}
        previous = self.homes.get(str(user))
        view["id"] = previous["id"] if previous else f"VH{len(self.homes) + 1:05d}"
        self.homes[str(user)] = view
        return {"ok": True, "view": view}

    def _api_users_conversations(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user") or BOT_USER)
        channels = [
            {"id": channel, "is_member": True}
            for channel, members in sorted(self.channel_members.items())
            if user in members
        ]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def open_home(self, user: str) -> None:
        """`user` opens the app's Home tab: Slack sends the app `app_home_opened`."""
        with self._lock:
            subscription = self.subscription
            home = self.homes.get(user)
        if subscription is None:
            return
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": f"D{user[1:]}",
            "tab": "home",
            "event_ts": self._next_ts(),
        }
        if home is not None:
            event["view"] = home
        self._deliver_event(subscription, event)

    def _api_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = str(params.get("usergroup"))
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": self.groups[group]}

    def _api_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{len(self.files) + 1:06d}"
        self.files[file_id] = {
            "id": file_id,
            "name": params.get("filename"),
            "data": b"",
            "length": int(params.get("length") or 0),
        }
        return {"ok": True, "upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        files = json.loads(files) if isinstance(files, str) else list(files or [])
        attached = []
        for item in files:
            stored = self.files.get(item["id"])
            if stored is None:
                return {"ok": False, "error": "file_not_found"}
            stored["title"] = item.get("title") or stored["name"]
            attached.append(
                {
                    "id": stored["id"],
                    "name": stored["name"],
                    "title": stored["title"],
                    "size": len(stored["data"]),
                    "url_private": f"{self.url}files/{stored['id']}",
                }
            )
        channel = params.get("channel_id")
        if channel:
            message = Message(
                channel=str(channel),
                ts=self._next_ts(),
                text=str(params.get("initial_comment") or ""),
                blocks=[],
                thread_ts=params.get("thread_ts") or None,
                files=attached,
            )
            self.messages.append(message)
        return {"ok": True, "files": attached}

    def _api_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        ts = params.get("ts")
        root = [m for m in self.messages if m.ts == ts]
        replies = self.thread(str(params.get("channel")), str(ts))
        return {"ok": True, "messages": [m.to_dict() for m in root + replies]}

    def handle_response_url(self, token: str, payload: dict[str, Any]) -> bool:
        """A POST to a response_url: a reply (ephemeral unless `in_channel`), or an
        edit or deletion of the message the button was on."""
        with self._lock:
            context = self.response_urls.get(token)
            if context is None:
                return False
            self.calls.append(Call("response_url", payload, None, 200))
            original = context.get("message_ts")
            if original and (payload.get("replace_original") or payload.get("delete_original")):
                self._change_original(str(original), payload)
            elif payload.get("response_type") == "in_channel" and context.get("channel"):
                self.messages.append(
                    Message(
                        channel=str(context["channel"]),
                        ts=self._next_ts(),
                        text=str(payload.get("text") or ""),
                        blocks=list(payload.get("blocks") or []),
                        thread_ts=context.get("thread_ts"),
                    )
                )
            else:
                self.ephemerals.append(
                    Ephemeral(
                        user=context.get("user"),
                        channel=context.get("channel"),
                        text=str(payload.get("text") or ""),
                        blocks=list(payload.get("blocks") or []),
                        via="response_url",
                        ts=self._next_ts(),
                        thread_ts=context.get("thread_ts"),
                    )
                )
            self._notify("response_url", payload)
            return True

    def _change_original(self, ts: str, payload: dict[str, Any]) -> None:
        # A button may sit on a channel message or on an ephemeral one; both can be
        # replaced or deleted through the click's response_url.
        delete = bool(payload.get("delete_original"))
        for message in list(self.messages):
            if message.ts == ts:
                if delete:
                    self.messages.remove(message)
                    continue
                message.text = str(payload.get("text") or message.text)
                message.blocks = list(payload.get("blocks") or message.blocks)
                message.edited += 1
        for ephemeral in list(self.ephemerals):
            if ephemeral.ts == ts:
                if delete:
                    self.ephemerals.remove(ephemeral)
                    continue
                ephemeral.text = str(payload.get("text") or ephemeral.text)
                ephemeral.blocks = list(payload.get("blocks") or ephemeral.blocks)

    def handle_upload(self, file_id: str, data: bytes) -> bool:
        """The second step of files_upload_v2: the file's bytes."""
        with self._lock:
            stored = self.files.get(file_id)
            if stored is None:
                return False
            stored["data"] = data
            return True

    # -- HTTP --------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self,
                status: int,
                body: bytes,
                content_type: str,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                self._send(
                    status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers
                )

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _route(self, method: str) -> bool:
                parsed = urlparse(self.path)
                route = fake.routes.get((method, parsed.path))
                if route is None:
                    return False
                query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                body = self._body() if method == "POST" else b""
                status, payload, content_type = route(query, body)
                self._send(status, payload, content_type, {"Cache-Control": "no-store"})
                return True

            def do_POST(self) -> None:
                if self._route("POST"):
                    return
                path = urlparse(self.path).path
                raw = self._body()
                if path.startswith("/api/"):
                    params = self._params(raw)
                    auth = self.headers.get("Authorization", "")
                    token = auth.removeprefix("Bearer ").strip() or params.pop("token", None)
                    status, payload, headers = fake.handle_api(path[5:], params, token)
                    self._json(status, payload, headers)
                elif path.startswith("/response/"):
                    ok = fake.handle_response_url(path[10:], json.loads(raw or b"{}"))
                    self._send(200 if ok else 404, b"ok" if ok else b"no", "text/plain")
                elif path.startswith("/upload/"):
                    ok = fake.handle_upload(path[8:], raw)
                    self._send(200 if ok else 404, b"OK" if ok else b"no", "text/plain")
                else:
                    self._json(404, {"ok": False, "error": "not_found"})

            def do_GET(self) -> None:
                if self._route("GET"):
                    return
                parsed = urlparse(self.path)
                if parsed.path.startswith("/api/"):
                    params: dict[str, Any] = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                    auth = self.headers.get("Authorization", "")
                    token = auth.removeprefix("Bearer ").strip() or params.pop("token", None)
                    status, payload, headers = fake.handle_api(parsed.path[5:], params, token)
                    self._json(status, payload, headers)
                elif parsed.path.startswith("/files/"):
                    stored = fake.files.get(parsed.path[7:])
                    if stored is None:
                        self._send(404, b"no", "text/plain")
                    else:
                        guessed, _ = mimetypes.guess_type(str(stored.get("name") or ""))
                        kind = guessed or "application/octet-stream"
                        self._send(200, stored["data"], kind)
                else:
                    self._json(404, {"ok": False, "error": "not_found"})

            def _params(self, raw: bytes) -> dict[str, Any]:
                content_type = self.headers.get("Content-Type", "")
                if "application/json" in content_type:
                    return dict(json.loads(raw or b"{}"))
                if "multipart/form-data" in content_type:
                    return {}
                parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                return {key: values[0] for key, values in parsed.items()}

        return Handler
