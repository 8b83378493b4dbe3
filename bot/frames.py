"""Whether a Slack request body has the shape Slack gives its payloads.

Slack sends objects where Bolt and the listeners read objects (`user`, `channel`,
`view`, each of `actions`, ...). A body that breaks that shape never comes from Slack;
it is refused with a short answer rather than failing somewhere inside Bolt.
"""

from __future__ import annotations

import re
from typing import Any

# Fields Bolt reads as objects as soon as they are present (a view, an event).
PRESENT_OBJECTS = ("view", "event")
# Fields that are objects whenever Slack sends them.
OBJECTS = ("user", "channel", "container", "view", "message", "event", "state")
# Fields Bolt also accepts as a bare id.
OBJECTS_OR_IDS = ("team", "enterprise")
# Fields that are lists of objects.
LISTS_OF_OBJECTS = ("actions", "authorizations")
# Slack's ids are short ASCII words (`U0123ABC`, `C0456DEF`, `1334.7384.80889…`), and
# the tables that keep them have room for no more.
SLACK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ID_LIMITS = {"user_id": 64, "channel_id": 64, "team_id": 64, "trigger_id": 128, "event_id": 128}
NESTED_ID_LIMITS = (("user", "id", 64), ("channel", "id", 64), ("event", "user", 64))
# A click's `action_ts` (`1712345678.123456`) keys its de-duplication record.
ACTION_TS_LIMIT = 64
# The only payloads Slack posts as JSON (the Events API); commands and interactivity
# come as forms.
JSON_TYPES = frozenset({"event_callback", "url_verification", "app_rate_limited"})
# Fields that are text whenever Slack sends them.
TEXTS = ("type", "trigger_id", "response_url", "event_id", "command", "text", "token")


def frame_problem(body: Any) -> str | None:
    """What is wrong with the shape of a parsed Slack body, or None when nothing is.

    Args:
        body: The body as Bolt parsed it (JSON payload or form fields).

    Returns:
        A few words naming the first misshapen field, fit for a log line.
    """
    if not isinstance(body, dict):
        return f"the body is a {type(body).__name__}, not an object"
    # Bolt reads these whenever the key is there, null or not.
    for name in PRESENT_OBJECTS:
        if name in body and not isinstance(body[name], dict):
            return f"`{name}` is not an object"
    if "actions" in body and not (isinstance(body["actions"], list) and body["actions"]):
        return "`actions` is not a list of actions"
    for name in OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            return f"`{name}` is not an object"
    for name in OBJECTS_OR_IDS:
        if body.get(name) is not None and not isinstance(body[name], dict | str):
            return f"`{name}` is neither an object nor an id"
    for name in LISTS_OF_OBJECTS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            return f"`{name}` is not a list of objects"
    for name in TEXTS:
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"`{name}` is not text"
    for action in body.get("actions") or ():
        if not isinstance(action.get("action_id"), str):
            return "an action has no `action_id`"
    view = body.get("view") or {}
    if "callback_id" in view and not isinstance(view["callback_id"], str):
        return "`view.callback_id` is not text"
    event = body.get("event") or {}
    if event and not isinstance(event.get("type"), str):
        return "`event.type` is not text"
    return _id_problem(body)


def _id_problem(body: dict[str, Any]) -> str | None:
    """What is wrong with the ids of a well-framed body, or None."""
    found = [(name, body.get(name), limit) for name, limit in ID_LIMITS.items()]
    found += [
        (f"{outer}.{inner}", (body.get(outer) or {}).get(inner), limit)
        for outer, inner, limit in NESTED_ID_LIMITS
        if isinstance(body.get(outer), dict)
    ]
    found += [
        ("actions.action_ts", action.get("action_ts"), ACTION_TS_LIMIT)
        for action in body.get("actions") or ()
    ]
    for name, value, limit in found:
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit or not SLACK_ID.fullmatch(value):
            return f"`{name}` is not a Slack id"
    return None


def content_problem(content_type: str | None, body: Any) -> str | None:
    """What is wrong with a body for the way it was posted, or None.

    Args:
        content_type: The request's Content-Type.
        body: The body as Bolt parsed it.
    """
    posted_as_json = (content_type or "").startswith("application/json")
    if posted_as_json and isinstance(body, dict) and body.get("type") not in JSON_TYPES:
        return "a JSON body that is not an Events API payload"
    return None
