"""Calls the sandbox page's own endpoints, as its JavaScript does."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode


class Page:
    """The sandbox page's HTTP endpoints at `root` (no trailing slash)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def post(self, path: str, **body: Any) -> tuple[int, dict[str, Any]]:
        """POST JSON to a page endpoint; returns (HTTP status, JSON answer)."""
        request = urllib.request.Request(
            self.root + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def state(self, user: str, since: int = -1) -> dict[str, Any]:
        """What the page shows `user` (waits for a change newer than `since`)."""
        query = urlencode({"user": user, "since": since})
        with urllib.request.urlopen(f"{self.root}/ui/state?{query}", timeout=60) as answer:
            return dict(json.loads(answer.read()))

    def wait(
        self, user: str, predicate: Callable[[dict[str, Any]], Any], timeout: float = 60
    ) -> dict[str, Any]:
        """Long-poll the state until `predicate(state)` holds."""
        deadline = time.monotonic() + timeout
        version = -1
        while True:
            state = self.state(user, version)
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed what was expected to {user}")
            version = state["version"]


def visible_text(item: dict[str, Any]) -> str:
    """The text and block texts of a message or ephemeral, for assertions."""
    parts = [str(item.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(item.get("blocks", []))
    return "\n".join(parts)


def find(state: dict[str, Any], words: str, *, thread: bool | None = None) -> dict[str, Any] | None:
    """The latest message whose visible text contains `words` (in threads or not)."""
    for message in reversed(state["messages"]):
        in_thread = message.get("thread_ts") is not None
        if thread is not None and in_thread != thread:
            continue
        if words in visible_text(message):
            return message
    return None


def button_block(message: dict[str, Any], action_id: str) -> str:
    """The block id of the button `action_id` on a message."""
    for block in message.get("blocks", []):
        for element in block.get("elements", []) or []:
            if element.get("action_id") == action_id:
                return str(block["block_id"])
    raise AssertionError(f"no {action_id} button on the message")
