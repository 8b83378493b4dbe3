"""Reading the fields our buttons and modals put in a payload, refusing any that are junk.

Slack echoes back what the bot wrote (a task id as a button's value, in a modal's
private metadata), so a value that is not one is a stale or forged payload: the user
gets a short refusal and nothing changes, rather than an unexpected error.
"""

from __future__ import annotations

from typing import Any

from jobs.exceptions import BadRequest

# Ids are PostgreSQL integers; anything larger names no task and would only make
# the database raise.
MAX_TASK_ID = 2**31 - 1
NO_TASK = "That button or form no longer names a task; use `/agent list`."


def row_id(value: Any) -> int | None:
    """The database id a value the bot wrote names, or None when it names none."""
    text = value.strip() if isinstance(value, str) else None
    if text and text.isascii() and text.isdigit() and 0 < int(text) <= MAX_TASK_ID:
        return int(text)
    return None


def task_id_of(value: Any) -> int:
    """The task id a button value or modal metadata names.

    Raises:
        BadRequest: The value is not a task id.
    """
    task_id = row_id(value)
    if task_id is None:
        raise BadRequest(NO_TASK)
    return task_id


def plan_ref(value: Any) -> tuple[int, int | None] | None:
    """The task and plan version a plan button's value names (`12:2`, or a bare `12`).

    A bare task id (a button that predates plan versions) means the latest version.
    """
    text = value.strip() if isinstance(value, str) else None
    if not text:
        return None
    head, colon, tail = text.partition(":")
    task_id = row_id(head)
    if task_id is None:
        return None
    if not colon:
        return task_id, None
    version = row_id(tail)
    return None if version is None else (task_id, version)


def plan_ref_of(value: Any) -> tuple[int, int | None]:
    """Like `plan_ref`, refusing a value that names no task.

    Raises:
        BadRequest: The value is not a plan button's.
    """
    ref = plan_ref(value)
    if ref is None:
        raise BadRequest(NO_TASK)
    return ref


def channel_of(body: dict[str, Any]) -> str | None:
    """The channel a click came from (None in a DM-less or malformed payload)."""
    channel = body.get("channel")
    channel_id = channel.get("id") if isinstance(channel, dict) else None
    return channel_id if isinstance(channel_id, str) and channel_id else None


def button_value(body: dict[str, Any]) -> Any:
    """The value of the clicked button (None when the payload carries none)."""
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return actions[0].get("value")
    return None


def user_of(body: dict[str, Any]) -> str:
    """The Slack user who clicked or submitted.

    Raises:
        BadRequest: The payload names no user.
    """
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise BadRequest("Slack did not say who you are; please try again.")
    return user_id


def modal_task_id(view: dict[str, Any]) -> int | None:
    """The task a reason modal is about (first in its metadata), or None when it names none."""
    metadata = view.get("private_metadata")
    return row_id(metadata.split("|", 1)[0]) if isinstance(metadata, str) else None


def modal_plan_version(view: dict[str, Any]) -> int | None:
    """The plan version a modal was opened on (third in its metadata), or None (the latest)."""
    metadata = view.get("private_metadata")
    parts = metadata.split("|") if isinstance(metadata, str) else []
    return row_id(parts[2]) if len(parts) > 2 else None


def modal_input(view: dict[str, Any]) -> tuple[int, str]:
    """The task a reason modal is about, and what was typed in it (stripped).

    Raises:
        BadRequest: The modal's metadata names no task.
    """
    task_id = modal_task_id(view)
    if task_id is None:
        raise BadRequest(NO_TASK)
    value: Any = None
    state = view.get("state")
    if isinstance(state, dict):
        node: Any = state.get("values")
        for key in ("reason", "text"):
            node = node.get(key) if isinstance(node, dict) else None
        value = node.get("value") if isinstance(node, dict) else None
    return task_id, value.strip() if isinstance(value, str) else ""
