"""The floor for ack latency: a Bolt app that only verifies and acknowledges `/agent`.

Served the way `agentbot serve` serves its own app (gunicorn's processes running
uvicorn's worker, whole bodies read before a thread of the same size of pool sees
them), it pays for everything Agentbot cannot avoid (HTTP, the server, Bolt's request
parsing and signature check) and nothing Agentbot adds (de-duplication, the task
row, the queue). The difference between the two is Agentbot's own cost.

Run by `bench/ack_latency.py` as
`python -m gunicorn 'bench.minimal_app:asgi_app(8)' -k uvicorn_worker.UvicornWorker …`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

bolt = App(
    client=WebClient(
        token=os.environ.get("SLACK_BOT_TOKEN"),
        base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    ),
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    token_verification_enabled=False,
    logger=logging.getLogger("floor"),
)


@bolt.command("/agent")
def acknowledge(ack: Ack) -> None:
    """Acknowledge with an ephemeral line, as `/agent run` does, and do nothing else."""
    ack(text=":inbox_tray: queued", response_type="ephemeral")


app = SlackRequestHandler(bolt)


def asgi_app(threads: int) -> Any:
    """`app` behind the same ASGI layers as `agentbot serve`'s, `threads` threads."""
    from a2wsgi import WSGIMiddleware

    from bot.server import WholeBody

    return WholeBody(WSGIMiddleware(app, workers=threads), deadline=10.0)
