"""Short jobs on the `default` queue: messages and comments a worker posts for a request.

Each takes a few seconds at most; a failure is most likely the other side (Slack,
GitHub) being briefly unreachable, so each is retried a few times with backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rq import Retry

from jobs.queues import DEFAULT, SYNC_TIMEOUT_SECONDS, Queues

SLACK_BACKOFF = (2, 10, 30)


def enqueue_default(
    queues: Queues,
    func: str,
    *args: Any,
    description: str,
    backoff: Sequence[int] = SLACK_BACKOFF,
) -> None:
    """Queue `func(*args)` on the default queue, retried once per `backoff` interval.

    Args:
        queues: The queues.
        func: The job function, by dotted path (the web process never imports it).
        *args: Its arguments (ids and primitives).
        description: What the job is, for RQ's listings.
        backoff: Seconds to wait before each retry.
    """
    queues.queue(DEFAULT).enqueue(
        func,
        *args,
        job_timeout=SYNC_TIMEOUT_SECONDS,
        retry=Retry(max=len(backoff), interval=list(backoff)),
        result_ttl=60,
        description=description,
    )
