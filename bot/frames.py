"""Whether a Slack request body has the shape Slack gives its payloads.

Slack sends objects where Bolt and the listeners read objects (`user`, `channel`,
`view`, each of `actions`, ...). A body that breaks that shape never comes from Slack;
it is refused with a short answer rather than failing somewhere inside Bolt.
"""

from __future__ import annotations

from typing import Any

# Fields Bolt reads as objects as soon as they are present (a view, an event).
PRESENT_OBJECTS = ("view", "event")
# Fields that are objects whenever Slack sends them.
OBJECTS = ("user", "channel", "container", "view", "message", "event", "state")
# Fields Bolt also accepts as a bare id.
OBJECTS_OR_IDS = ("team", "enterprise")
# Fields that are lists of objects.
LISTS_OF_OBJECTS = ("actions", "authorizations")
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
    return None
