"""Answers posted in a thread by a worker, for requests that arrive as messages.

A mention of the bot is acknowledged by the web process at once; what the bot has to
say about it (the task it queued, a task's state, why it refused) is posted here, on
the `default` queue, like every other message the product posts.
"""

from __future__ import annotations

from rq import Retry

from jobs.context import current
from jobs.queues import DEFAULT, SYNC_TIMEOUT_SECONDS, Queues

# Slack accepts far more, but a reply in a thread is meant to be read at a glance.
MAX_REPLY = 3000


def enqueue_reply(queues: Queues, *, channel: str, thread_ts: str, text: str) -> None:
    """Queue `text` as a reply in the thread `thread_ts` of `channel`."""
    if len(text) > MAX_REPLY:
        text = text[: MAX_REPLY - 20].rstrip() + "… _(truncated)_"
    queues.queue(DEFAULT).enqueue(
        "jobs.thread_reply.post_reply",
        channel,
        thread_ts,
        text,
        job_timeout=SYNC_TIMEOUT_SECONDS,
        retry=Retry(max=3, interval=[2, 10, 30]),
        result_ttl=60,
        description=f"reply in {channel}",
    )


def post_reply(channel: str, thread_ts: str, text: str) -> None:
    """Post one queued reply (runs in a worker)."""
    current().notifier.post_text(channel, text, thread_ts=thread_ts)
