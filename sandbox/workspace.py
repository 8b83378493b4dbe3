"""A local Slack workspace in the browser, on top of `FakeSlack`.

The page (`sandbox/ui/`) shows the channels, threads, ephemeral messages and modals
the fake keeps, and lets people type `/agent …`, click buttons and submit modals.
For each of those the workspace builds the request real Slack would send — the
slash-command form body, or a `payload=` JSON of type `block_actions` or
`view_submission` — signs it with the app's signing secret, and POSTs it to the
bot's `/slack/events` URL. The bot answers as it would answer Slack: the
acknowledgement body becomes an ephemeral message (or modal errors), and anything
else it says arrives through the Web API (`SLACK_API_URL`) or a response_url.
Nothing in the bot can tell this from Slack.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from sandbox.fakeslack import APP_ID, BOT_USER, TEAM, FakeSlack, Message, signed_request

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).parent / "ui"
TEAM_DOMAIN = "sandbox"
COMMAND = "/agent"
# Slack gives an app three seconds to acknowledge, then tells the user it failed.
ACK_SECONDS = 3.0
# How long the page's state request waits for a change before answering anyway.
LONG_POLL_SECONDS = 20.0

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/style.css": ("style.css", "text/css; charset=utf-8"),
}

Response = tuple[int, bytes, str]


@dataclass(frozen=True)
class Person:
    """Someone in the sandbox workspace."""

    id: str
    name: str
    title: str


@dataclass(frozen=True)
class Channel:
    """A channel in the sandbox workspace."""

    id: str
    name: str


@dataclass(frozen=True)
class Delivery:
    """What happened when a request was delivered to the bot."""

    status: int
    body: bytes
    elapsed: float
    error: str | None = None

    def json(self) -> dict[str, Any] | None:
        """The acknowledgement body as JSON, when it is JSON."""
        if not self.body:
            return None
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


@dataclass
class _Modal:
    user: str
    channel: str | None
    closed: bool = False
    errors: dict[str, str] = field(default_factory=dict)


class UserError(ValueError):
    """The page asked for something that does not exist (unknown user, message, button)."""


class Workspace:
    """People, channels and the page of the sandbox, and their requests to the bot."""

    def __init__(
        self,
        slack: FakeSlack,
        *,
        events_url: str,
        signing_secret: str,
        people: list[Person],
        channels: list[Channel],
        ack_seconds: float = ACK_SECONDS,
    ) -> None:
        """Set up the workspace.

        Args:
            slack: The fake Web API whose state the page shows.
            events_url: The bot's request URL (`…/slack/events`).
            signing_secret: The app's signing secret, shared with the bot.
            people: Who can be picked in the page's user switcher.
            channels: The channels the page lists.
            ack_seconds: How long the bot has to acknowledge before Slack gives up.
        """
        self.slack = slack
        self.events_url = events_url
        self.verifier = SignatureVerifier(signing_secret)
        self.people = {person.id: person for person in people}
        self.channels = {channel.id: channel for channel in channels}
        self.ack_seconds = ack_seconds
        self.notes: dict[str, str] = {}
        self._triggers: dict[str, tuple[str, str | None]] = {}
        self._modals: dict[str, _Modal] = {}
        self._lock = threading.Lock()

    def install(self) -> Workspace:
        """Serve the page and its endpoints from the fake Slack's HTTP server."""
        for path, (name, content_type) in STATIC.items():
            self.slack.routes[("GET", path)] = self._static(name, content_type)
        self.slack.routes[("GET", "/ui/state")] = self._get_state
        self.slack.routes[("GET", "/ui/people")] = self._get_people
        self.slack.routes[("POST", "/ui/command")] = self._post(self._command_body)
        self.slack.routes[("POST", "/ui/message")] = self._post(self._message_body)
        self.slack.routes[("POST", "/ui/click")] = self._post(self._click_body)
        self.slack.routes[("POST", "/ui/submit")] = self._post(self._submit_body)
        self.slack.routes[("POST", "/ui/close")] = self._post(self._close_body)
        self.slack.routes[("POST", "/ui/home")] = self._post(self._home_body)
        self.slack.routes[("POST", "/ui/home_click")] = self._post(self._home_click_body)
        # As an app subscribed to `app_mention`: `@agentbot …` typed on the page reaches
        # the bot as a signed event, the same request URL as commands and clicks.
        self.slack.subscribe_events(self.events_url, self.verifier.signing_secret)
        # Everyone is in every channel of the sandbox (what Home's privacy asks Slack).
        for channel in self.channels:
            self.slack.channel_members.setdefault(channel, set()).update(self.people)
        return self

    def note(self, key: str, text: str) -> None:
        """Show a line about the sandbox itself in the page's sidebar (not in Slack)."""
        with self._lock:
            self.notes[key] = text
        self._touch()

    # -- what people do ----------------------------------------------------------------

    def command(self, user: str, channel: str, text: str) -> Delivery:
        """Type `/agent <text>` in a channel.

        Raises:
            UserError: Unknown user or channel.
        """
        person = self._person(user)
        self._channel(channel)
        trigger = self._trigger(user, channel)
        body = urlencode(
            {
                "token": "sandbox-verification-token",
                "team_id": TEAM,
                "team_domain": TEAM_DOMAIN,
                "channel_id": channel,
                "channel_name": self.channels[channel].name,
                "user_id": user,
                "user_name": person.name.lower(),
                "command": COMMAND,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": self.slack.new_response_url(user=user, channel=channel),
                "trigger_id": trigger,
            }
        )
        delivery = self.deliver(body)
        self._show_command_ack(user, channel, text, delivery)
        return delivery

    def say(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> Message:
        """Post a message as a person; one mentioning `@agentbot` also reaches the bot.

        Raises:
            UserError: Unknown user or channel, or an empty message.
        """
        self._person(user)
        self._channel(channel)
        if not text.strip():
            raise UserError("empty message")
        return self.slack.post_message(user, channel, text, thread_ts=thread_ts)

    def click(
        self, user: str, channel: str, ts: str, action_id: str, block_id: str | None = None
    ) -> Delivery:
        """Click a button on a message (or on an ephemeral message) the user can see.

        Raises:
            UserError: Unknown user, message or button.
        """
        person = self._person(user)
        message, ephemeral = self._find_message(user, channel, ts)
        blocks = message["blocks"]
        button, found_block = _find_button(blocks, action_id, block_id)
        thread_ts = message.get("thread_ts")
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": found_block,
            "text": button.get("text"),
            "action_ts": f"{time.time():.6f}",
        }
        for key in ("value", "style", "url"):
            if key in button:
                action[key] = button[key]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_object(person),
            "api_app_id": APP_ID,
            "token": "sandbox-verification-token",
            "container": container,
            "trigger_id": self._trigger(user, channel),
            "team": {"id": TEAM, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self._channel_name(channel)},
            "state": {"values": {}},
            "response_url": self.slack.new_response_url(
                user=user, channel=channel, message_ts=ts, thread_ts=thread_ts
            ),
            "actions": [action],
        }
        if not ephemeral:
            # Slack leaves the message out of payloads from ephemeral messages.
            payload["message"] = {key: value for key, value in message.items() if key != "channel"}
        delivery = self.deliver(urlencode({"payload": json.dumps(payload)}))
        problem = _delivery_problem(delivery, self.ack_seconds)
        if problem:
            self.slack.record_ephemeral(
                user=user,
                channel=channel,
                thread_ts=thread_ts,
                text=f":warning: The app did not respond to that click ({problem}).",
                via="ack",
            )
        return delivery

    def open_home(self, user: str) -> None:
        """The user opens the app's Home tab: the bot gets `app_home_opened`.

        Raises:
            UserError: Unknown user.
        """
        self._person(user)
        self.slack.open_home(user)

    def click_home(self, user: str, action_id: str, block_id: str | None = None) -> Delivery:
        """Click a button on the user's Home tab, as published by the bot.

        Raises:
            UserError: Unknown user, no Home yet, or no such button on it.
        """
        person = self._person(user)
        home = self.slack.snapshot()["homes"].get(user)
        if home is None:
            raise UserError(f"no Home published for {user}")
        button, found_block = _find_button(home["blocks"], action_id, block_id)
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": found_block,
            "text": button.get("text"),
            "action_ts": f"{time.time():.6f}",
        }
        for key in ("value", "style", "url"):
            if key in button:
                action[key] = button[key]
        # What Slack sends for a click on a Home tab: the view, no channel, no response_url.
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_object(person),
            "api_app_id": APP_ID,
            "token": "sandbox-verification-token",
            "container": {"type": "view", "view_id": home["id"]},
            "trigger_id": self._trigger(user, None),
            "team": {"id": TEAM, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": home,
            "actions": [action],
        }
        return self.deliver(urlencode({"payload": json.dumps(payload)}))

    def submit_view(self, user: str, view_id: str, values: dict[str, dict[str, str]]) -> Delivery:
        """Submit an open modal with the values typed into its inputs.

        Args:
            user: Who submits.
            view_id: The modal's id (as `views.open` answered).
            values: `{block_id: {action_id: text}}` for the modal's inputs.

        Raises:
            UserError: No such open modal for this user.
        """
        person = self._person(user)
        view, modal = self._open_modal(user, view_id)
        state: dict[str, dict[str, Any]] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                continue
            element = block.get("element") or {}
            block_id, action_id = str(block.get("block_id")), str(element.get("action_id"))
            value = values.get(block_id, {}).get(action_id)
            state[block_id] = {
                action_id: {"type": element.get("type", "plain_text_input"), "value": value or None}
            }
        submitted = {
            **{key: value for key, value in view.items() if key != "trigger_id"},
            "team_id": TEAM,
            "app_id": APP_ID,
            "bot_id": "BAGENTBOT",
            "root_view_id": view_id,
            "previous_view_id": None,
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "state": {"values": state},
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM, "domain": TEAM_DOMAIN},
            "user": self._user_object(person),
            "api_app_id": APP_ID,
            "token": "sandbox-verification-token",
            "trigger_id": self._trigger(user, modal.channel),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        delivery = self.deliver(urlencode({"payload": json.dumps(payload)}))
        ack = delivery.json() or {}
        with self._lock:
            if delivery.status == 200 and ack.get("response_action") == "errors":
                modal.errors = {str(k): str(v) for k, v in (ack.get("errors") or {}).items()}
            elif delivery.status == 200 and not _delivery_problem(delivery, self.ack_seconds):
                modal.closed = True
            else:
                modal.errors = {"": "The app did not respond; try again."}
        self._touch()
        return delivery

    def close_view(self, user: str, view_id: str) -> None:
        """Dismiss a modal without submitting it (no `view_closed` was asked for).

        Raises:
            UserError: No such open modal for this user.
        """
        _view, modal = self._open_modal(user, view_id)
        with self._lock:
            modal.closed = True
        self._touch()

    # -- delivery ----------------------------------------------------------------------

    def deliver(self, body: str) -> Delivery:
        """POST a signed form body to the bot's request URL, as Slack does."""
        request = signed_request(
            self.events_url, self.verifier, body, "application/x-www-form-urlencoded"
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=max(10.0, self.ack_seconds * 3)) as answer:
                return Delivery(answer.status, answer.read(), time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            return Delivery(exc.code, exc.read(), time.monotonic() - started)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            log.warning("could not reach the bot at %s: %s", self.events_url, exc)
            return Delivery(0, b"", time.monotonic() - started, error=str(exc))

    def _show_command_ack(self, user: str, channel: str, text: str, delivery: Delivery) -> None:
        problem = _delivery_problem(delivery, self.ack_seconds)
        if problem:
            said = f'`{COMMAND} {text}` failed with the error "{problem}"'
            if problem == "operation_timeout":
                # What Slack does; the sandbox also says why, since the bot's log may not.
                said += (
                    f" (the app answered after {delivery.elapsed:.1f} s; Slack waits "
                    f"{self.ack_seconds:.0f} s and drops a later answer)"
                )
            self.slack.record_ephemeral(user=user, channel=channel, text=said, via="ack")
            return
        ack = delivery.json()
        if ack is None:
            words = delivery.body.decode("utf-8", "replace").strip()
            if words:
                self.slack.record_ephemeral(user=user, channel=channel, text=words, via="ack")
            return
        if not ack.get("text") and not ack.get("blocks"):
            return
        if ack.get("response_type") == "in_channel":
            self.slack.post_message(
                BOT_USER, channel, str(ack.get("text") or ""), list(ack.get("blocks") or [])
            )
            return
        self.slack.record_ephemeral(
            user=user,
            channel=channel,
            text=str(ack.get("text") or ""),
            blocks=list(ack.get("blocks") or []),
            via="ack",
        )

    # -- what the page reads -------------------------------------------------------------

    def state(self, user: str) -> dict[str, Any]:
        """Everything the page shows to one user.

        Raises:
            UserError: Unknown user.
        """
        self._person(user)
        snapshot = self.slack.snapshot()
        with self._lock:
            modals = []
            for view in snapshot["views"]:
                modal = self._modal_for(view)
                if modal is not None and modal.user == user and not modal.closed:
                    modals.append({"id": view["id"], "view": view, "errors": dict(modal.errors)})
        return {
            "version": snapshot["version"],
            "me": user,
            "bot": {"id": BOT_USER, "name": "Agentbot"},
            "people": [vars(person) for person in self.people.values()],
            "channels": [vars(channel) for channel in self.channels.values()],
            "messages": snapshot["messages"],
            "ephemerals": [e for e in snapshot["ephemerals"] if e.pop("user", None) == user],
            "modals": modals[-1:],
            "home": snapshot["homes"].get(user),
            "notes": dict(self.notes),
        }

    def _modal_for(self, view: dict[str, Any]) -> _Modal | None:
        modal = self._modals.get(view["id"])
        if modal is None:
            owner = self._triggers.get(str(view.get("trigger_id")))
            if owner is None:
                return None
            modal = self._modals[view["id"]] = _Modal(user=owner[0], channel=owner[1])
        return modal

    # -- helpers -------------------------------------------------------------------------

    def _touch(self) -> None:
        # Workspace-only changes (a modal closing) must wake the page like Slack's do.
        self.slack.record_change("workspace")

    def _person(self, user: str) -> Person:
        person = self.people.get(user)
        if person is None:
            raise UserError(f"unknown user {user!r}")
        return person

    def _channel(self, channel: str) -> Channel:
        found = self.channels.get(channel)
        if found is None:
            raise UserError(f"unknown channel {channel!r}")
        return found

    def _channel_name(self, channel: str) -> str:
        found = self.channels.get(channel)
        return found.name if found else channel

    def _user_object(self, person: Person) -> dict[str, Any]:
        return {
            "id": person.id,
            "username": person.name.lower(),
            "name": person.name.lower(),
            "team_id": TEAM,
        }

    def _trigger(self, user: str, channel: str | None) -> str:
        trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = (user, channel)
        return trigger

    def _find_message(self, user: str, channel: str, ts: str) -> tuple[dict[str, Any], bool]:
        snapshot = self.slack.snapshot()
        for message in snapshot["messages"]:
            if message["channel"] == channel and message["ts"] == ts:
                return message, False
        for ephemeral in snapshot["ephemerals"]:
            if ephemeral["ts"] == ts and ephemeral.get("user") == user:
                return ephemeral, True
        raise UserError(f"no message {ts} in {channel}")

    def _open_modal(self, user: str, view_id: str) -> tuple[dict[str, Any], _Modal]:
        for view in self.slack.snapshot()["views"]:
            if view.get("id") == view_id:
                with self._lock:
                    modal = self._modal_for(view)
                if modal is not None and modal.user == user and not modal.closed:
                    return view, modal
        raise UserError(f"no open modal {view_id} for {user}")

    # -- HTTP endpoints of the page --------------------------------------------------------

    def _static(self, name: str, content_type: str) -> Any:
        def serve(_query: dict[str, str], _body: bytes) -> Response:
            return 200, (UI_DIR / name).read_bytes(), content_type

        return serve

    def _get_state(self, query: dict[str, str], _body: bytes) -> Response:
        try:
            since = int(query.get("since", "-1"))
        except ValueError:
            since = -1
        self.slack.wait_for_change(since, LONG_POLL_SECONDS if since >= 0 else 0)
        try:
            return _json(200, self.state(query.get("user", "")))
        except UserError as exc:
            return _json(400, {"ok": False, "error": str(exc)})

    def _get_people(self, _query: dict[str, str], _body: bytes) -> Response:
        return _json(
            200,
            {
                "people": [vars(person) for person in self.people.values()],
                "channels": [vars(channel) for channel in self.channels.values()],
            },
        )

    def _post(self, handler: Any) -> Any:
        def endpoint(_query: dict[str, str], body: bytes) -> Response:
            try:
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise UserError("expected a JSON object")
                return _json(200, {"ok": True, **handler(data)})
            except (UserError, KeyError, ValueError) as exc:
                return _json(400, {"ok": False, "error": str(exc)})

        return endpoint

    def _command_body(self, data: dict[str, Any]) -> dict[str, Any]:
        text = str(data["text"]).strip()
        if text.startswith(COMMAND):
            text = text[len(COMMAND) :].strip()
        delivery = self.command(str(data["user"]), str(data["channel"]), text)
        return _summary(delivery)

    def _message_body(self, data: dict[str, Any]) -> dict[str, Any]:
        thread = data.get("thread_ts") or None
        message = self.say(str(data["user"]), str(data["channel"]), str(data["text"]), thread)
        return {"ts": message.ts}

    def _click_body(self, data: dict[str, Any]) -> dict[str, Any]:
        delivery = self.click(
            str(data["user"]),
            str(data["channel"]),
            str(data["ts"]),
            str(data["action_id"]),
            data.get("block_id"),
        )
        return _summary(delivery)

    def _submit_body(self, data: dict[str, Any]) -> dict[str, Any]:
        values = data.get("values") or {}
        if not isinstance(values, dict):
            raise UserError("values must be an object")
        delivery = self.submit_view(str(data["user"]), str(data["view_id"]), values)
        return _summary(delivery)

    def _home_body(self, data: dict[str, Any]) -> dict[str, Any]:
        self.open_home(str(data["user"]))
        return {}

    def _home_click_body(self, data: dict[str, Any]) -> dict[str, Any]:
        delivery = self.click_home(
            str(data["user"]), str(data["action_id"]), data.get("block_id") or None
        )
        return _summary(delivery)

    def _close_body(self, data: dict[str, Any]) -> dict[str, Any]:
        self.close_view(str(data["user"]), str(data["view_id"]))
        return {}


def _json(status: int, payload: dict[str, Any]) -> Response:
    return status, json.dumps(payload).encode(), "application/json; charset=utf-8"


def _summary(delivery: Delivery) -> dict[str, Any]:
    return {"status": delivery.status, "elapsed_ms": round(delivery.elapsed * 1000)}


def _delivery_problem(delivery: Delivery, ack_seconds: float) -> str | None:
    """Slack's name for a failed delivery, or None when it went through in time."""
    if delivery.status == 0:
        return "dispatch_failed"
    if delivery.elapsed > ack_seconds:
        return "operation_timeout"
    if delivery.status != 200:
        return "http_service_error"
    return None


def _find_button(
    blocks: list[dict[str, Any]], action_id: str, block_id: str | None
) -> tuple[dict[str, Any], str]:
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates = list(block.get("elements") or [])
        if block.get("accessory"):
            candidates.append(block["accessory"])
        for element in candidates:
            if element.get("type") == "button" and element.get("action_id") == action_id:
                return element, str(block.get("block_id"))
    raise UserError(f"no {action_id} button on that message")
