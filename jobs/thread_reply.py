"""Answers posted in a thread by a worker, for requests that arrive as messages.

A mention of the bot is acknowledged by the web process at once; what the bot has to
say about it (the task it queued, a task's state, why it refused) is posted here, on
the `default` queue, like every other message the product posts. Most answers are
meant for the one who asked (as a slash command's are) and are shown only to them.
"""

from __future__ import annotations

from jobs.context import current
from jobs.default_jobs import enqueue_default
from jobs.queues import Queues

# Slack accepts far more, but a reply in a thread is meant to be read at a glance.
MAX_REPLY = 3000


def enqueue_reply(
    queues: Queues, *, channel: str, thread_ts: str, text: str, user: str | None = None
) -> None:
    """Queue `text` as a reply in the thread `thread_ts` of `channel`.

    Args:
        queues: The queues.
        channel: The channel of the thread.
        thread_ts: The thread's parent message.
        text: What to say (cut to `MAX_REPLY` characters).
        user: When given, only this user sees the reply; otherwise the channel does.
    """
    if len(text) > MAX_REPLY:
        text = text[: MAX_REPLY - 20].rstrip() + "… _(truncated)_"
    enqueue_default(
        queues,
        "jobs.thread_reply.post_reply",
        channel,
        thread_ts,
        text,
        user,
        description=f"reply in {channel}",
    )


def post_reply(channel: str, thread_ts: str, text: str, user: str | None = None) -> None:
    """Post one queued reply, to `user` alone when given (runs in a worker)."""
    notifier = current().notifier
    if user:
        notifier.post_ephemeral(channel, user, text, thread_ts=thread_ts)
    else:
        notifier.post_text(channel, text, thread_ts=thread_ts)
