"""Events: a mention of the bot takes the same words as `/agent`, answered in its thread.

`@agentbot run fix the totals --repo acme/calc`, `@agentbot status T-3`,
`@agentbot help`. Bolt acknowledges an event before its listener runs; the listener
validates, writes and enqueues as the slash command does, and a worker posts the
answer in the mention's thread. An answer the slash command would give privately
(a listing, a task's card, a refusal) is shown to the mention's author alone: a
channel must not read what its members may not all see.
"""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt import Ack, App

from bot.listeners import thread_replies
from bot.listeners.commands import perform
from bot.services import Services
from jobs.thread_reply import enqueue_reply

# The bot's own mention (and any before it) opens the text: `<@U0BOT> run …`.
LEADING_MENTIONS = re.compile(r"^\s*(?:<@[A-Z0-9]+(?:\|[^>]*)?>[\s,:]*)+")
# Slack escapes these three in message text; the command parser wants what was typed.
ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def command_text(text: str) -> str:
    """The words after the leading mention of the bot, unescaped."""
    words = LEADING_MENTIONS.sub("", text or "", count=1)
    for escaped, plain in ESCAPES:
        words = words.replace(escaped, plain)
    return words.strip()


def thread_of(event: dict[str, Any]) -> str:
    """The thread a reply to this message belongs in (its own, or the one it is in)."""
    return str(event.get("thread_ts") or event["ts"])


def blocks_as_text(blocks: list[dict[str, Any]]) -> str:
    """The readable text of Block Kit blocks (headers, sections, fields, context), as mrkdwn."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        text = (block.get("text") or {}).get("text")
        if kind == "header" and text:
            lines.append(f"*{text}*")
        elif kind == "section":
            if text:
                lines.append(str(text))
            fields = [str(f.get("text", "")) for f in block.get("fields") or []]
            if fields:
                lines.append(" · ".join(fields).replace("*\n", "*: ").replace("\n", " "))
        elif kind == "context":
            parts = [str(e.get("text", "")) for e in block.get("elements") or [] if "text" in e]
            if parts:
                lines.append(" ".join(parts))
    return "\n".join(lines)


def answer_of(ack: Ack) -> tuple[str, bool] | None:
    """What a command handler answered through `ack`, as text for a thread reply.

    Returns:
        The text, and whether it is for everyone (`in_channel`) rather than only the
        one who asked; None when nothing was answered.
    """
    if ack.response is None or not ack.response.body:
        return None
    payload = json.loads(ack.response.body)
    blocks = payload.get("blocks") or []
    text = blocks_as_text(blocks) if blocks else str(payload.get("text") or "")
    return (text, payload.get("response_type") == "in_channel") if text else None


def reply_to_mention(
    services: Services, event: dict[str, Any], text: str, *, public: bool = False
) -> None:
    """Queue an answer to a mention in its thread, seen by its author alone unless `public`."""
    enqueue_reply(
        services.queues,
        channel=str(event["channel"]),
        thread_ts=thread_of(event),
        text=text,
        user=None if public else str(event["user"]),
    )


def register(app: App, services: Services) -> None:
    """Register the event listeners."""

    @app.event("app_mention")
    def app_mention(event: dict[str, Any]) -> None:
        if event.get("bot_id"):
            return  # another app's message; never answer bots (no loops)
        words = command_text(str(event.get("text") or ""))
        if thread_replies.route(services, event, words):
            return  # a reply to a task in its thread, routed by the task's state
        answer = Ack()  # type: ignore[no-untyped-call]
        perform(services, answer, words, str(event["user"]), str(event["channel"]))
        said = answer_of(answer)
        if said is not None:
            text, public = said
            reply_to_mention(services, event, text, public=public)
