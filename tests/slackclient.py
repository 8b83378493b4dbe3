"""Plays the part of Slack's servers: signed requests into a real Bolt app."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from rq import Queue
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot.services import Services
from jobs.queues import ALL_QUEUES
from jobs.worker import AgentbotWorker
from sandbox.fakeslack import FakeSlack, Message

REQUESTER = "UREQUESTER"
CHANNEL = "CDEV"


class SlackUser:
    """Sends what Slack would send when people type and click, and runs workers."""

    def __init__(self, app: App, signing_secret: str, slack: FakeSlack, services: Services):
        self.app = app
        self.verifier = SignatureVerifier(signing_secret)
        self.slack = slack
        self.services = services

    # -- raw delivery ----------------------------------------------------------------

    def deliver(
        self,
        body: str,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> BoltResponse:
        """Dispatch a raw body with a valid signature unless one is given."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        if signature is None:
            signature = self.verifier.generate_signature(timestamp=ts, body=body)
        all_headers = {
            "content-type": [content_type],
            "x-slack-request-timestamp": [ts],
            "x-slack-signature": [signature],
        }
        for name, value in (headers or {}).items():
            all_headers[name.lower()] = [value]
        return self.app.dispatch(BoltRequest(body=body, headers=all_headers))

    # -- what people do --------------------------------------------------------------

    def command_body(
        self,
        text: str,
        user: str = REQUESTER,
        channel: str = CHANNEL,
        trigger_id: str | None = None,
    ) -> str:
        """The form body Slack posts for `/agent <text>`."""
        trigger = trigger_id or f"trig-{uuid.uuid4().hex}"
        return urlencode(
            {
                "token": "legacy",
                "team_id": "TSANDBOX",
                "team_domain": "sandbox",
                "channel_id": channel,
                "channel_name": "dev",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/agent",
                "text": text,
                "api_app_id": "AAGENTBOT",
                "response_url": self.slack.new_response_url(user=user, channel=channel),
                "trigger_id": trigger,
            }
        )

    def command(self, text: str, user: str = REQUESTER, channel: str = CHANNEL) -> BoltResponse:
        """Type `/agent <text>`."""
        return self.deliver(self.command_body(text, user, channel))

    @staticmethod
    def reply_text(response: BoltResponse) -> str:
        """The ephemeral text an acknowledgement carried (empty if none)."""
        if not response.body:
            return ""
        try:
            payload = json.loads(response.body)
        except ValueError:
            return str(response.body)
        return str(payload.get("text", ""))

    def click(self, message: Message, action_id: str, user: str) -> BoltResponse:
        """Click the button `action_id` on a message."""
        button, block_id = find_button(message, action_id)
        body = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": "TSANDBOX"},
            "api_app_id": "AAGENTBOT",
            "team": {"id": "TSANDBOX", "domain": "sandbox"},
            "channel": {"id": message.channel, "name": "dev"},
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "message": message.to_dict(),
            "trigger_id": f"trig-{uuid.uuid4().hex}",
            "response_url": self.slack.new_response_url(
                user=user, channel=message.channel, message_ts=message.ts
            ),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": button.get("value"),
                    "text": button.get("text"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self.deliver(urlencode({"payload": json.dumps(body)}))

    def open_home(self, user: str) -> BoltResponse:
        """Open the app's Home tab: the signed `app_home_opened` event Slack sends."""
        body = {
            "token": "legacy",
            "team_id": "TSANDBOX",
            "api_app_id": "AAGENTBOT",
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": f"D{user[1:]}",
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            },
        }
        return self.deliver(json.dumps(body), "application/json")

    def home(self, user: str) -> dict[str, Any]:
        """The Home view last published for `user`."""
        view = self.slack.homes.get(user)
        assert view is not None, f"no Home was published for {user}"
        return view

    def click_home(
        self, user: str, action_id: str, value: str, *, body_of: dict[str, Any] | None = None
    ) -> BoltResponse:
        """Click the button `action_id` whose value is `value` on `user`'s Home."""
        view = self.home(user)
        button, block_id = find_block_button(view["blocks"], action_id, value)
        body = body_of or self.home_click_body(user, view, button, block_id)
        return self.deliver(urlencode({"payload": json.dumps(body)}))

    def home_click_body(
        self, user: str, view: dict[str, Any], button: dict[str, Any], block_id: str
    ) -> dict[str, Any]:
        """What Slack posts for a click on a Home tab: the view, and no response_url."""
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": "TSANDBOX"},
            "api_app_id": "AAGENTBOT",
            "team": {"id": "TSANDBOX", "domain": "sandbox"},
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
            "trigger_id": f"trig-{uuid.uuid4().hex}",
            "actions": [
                {
                    "type": "button",
                    "action_id": button["action_id"],
                    "block_id": block_id,
                    "value": button.get("value"),
                    "text": button.get("text"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    def submit_view(self, view: dict[str, Any], user: str, value: str | None) -> BoltResponse:
        """Submit a modal whose single input is `reason`."""
        body = {
            "type": "view_submission",
            "user": {"id": user, "username": user.lower(), "team_id": "TSANDBOX"},
            "api_app_id": "AAGENTBOT",
            "team": {"id": "TSANDBOX", "domain": "sandbox"},
            "trigger_id": f"trig-{uuid.uuid4().hex}",
            "view": {
                **view,
                "state": {
                    "values": {"reason": {"text": {"type": "plain_text_input", "value": value}}}
                },
            },
        }
        return self.deliver(urlencode({"payload": json.dumps(body)}))

    # -- workers ---------------------------------------------------------------------

    def work(self, *queues: str) -> None:
        """Run a real (forking) burst worker until the queues are empty."""
        names = queues or ALL_QUEUES
        worker = AgentbotWorker(
            [Queue(name, connection=self.services.redis) for name in names],
            connection=self.services.redis,
        )
        worker.work(burst=True, logging_level="WARNING")

    # -- reading Slack ---------------------------------------------------------------

    def card(self, channel: str = CHANNEL) -> Message:
        """The latest status card in the channel."""
        cards = self.slack.channel_messages(channel)
        assert cards, "no card was posted"
        return cards[-1]

    def thread(self, channel: str = CHANNEL) -> list[Message]:
        """The latest card's thread."""
        return self.slack.thread(channel, self.card(channel).ts)

    def ephemeral_texts(self, user: str) -> list[str]:
        """What one user has been told privately."""
        return [e.text for e in self.slack.ephemerals if e.user == user]


def find_button(message: Message, action_id: str) -> tuple[dict[str, Any], str]:
    """The button with `action_id` in a message, and its block id."""
    for block in message.blocks:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("action_id") == action_id:
                    return element, str(block.get("block_id"))
    raise AssertionError(f"no {action_id} button on the message")


def find_block_button(
    blocks: list[dict[str, Any]], action_id: str, value: str
) -> tuple[dict[str, Any], str]:
    """The button with `action_id` and `value` among blocks, and its block id."""
    for block in blocks:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("action_id") == action_id and element.get("value") == value:
                    return element, str(block.get("block_id"))
    raise AssertionError(f"no {action_id} button for {value}")


def view_text(view: dict[str, Any]) -> str:
    """All visible text of a view's blocks, for assertions."""
    return texts(Message(channel="", ts="", text="", blocks=list(view.get("blocks") or [])))


def texts(message: Message) -> str:
    """All visible text of a message, for assertions."""
    parts = [message.text]
    for block in message.blocks:
        for key in ("text",):
            value = block.get(key)
            if isinstance(value, dict):
                parts.append(str(value.get("text", "")))
        for field in block.get("fields", []) or []:
            parts.append(str(field.get("text", "")))
        for element in block.get("elements", []) or []:
            text = element.get("text")
            if isinstance(text, dict):
                parts.append(str(text.get("text", "")))
            elif isinstance(text, str):
                parts.append(text)
    return "\n".join(parts)
