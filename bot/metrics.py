"""Prometheus metrics, derived at scrape time from the database and Redis.

RQ forks a process per job, so per-process counters would be lost with each horse;
what can be read from shared state is read from it when Prometheus asks.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.services import Services
from jobs.states import TaskState
from jobs.tasks import count_by_state

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render(services: Services) -> bytes:
    """The current metrics in Prometheus' text format."""
    registry = CollectorRegistry()
    tasks = Gauge("agentbot_tasks", "Tasks by state", ["state"], registry=registry)
    queue = Gauge("agentbot_queue_length", "Jobs waiting per queue", ["queue"], registry=registry)
    up = Gauge(
        "agentbot_backend_up", "Whether a backing service answers", ["backend"], registry=registry
    )
    try:
        with services.db.session() as session:
            counts = count_by_state(session)
        for state in TaskState:
            tasks.labels(state=state.value).set(counts.get(state.value, 0))
        up.labels(backend="database").set(1)
    except Exception:
        log.warning("metrics: database unreachable", exc_info=True)
        up.labels(backend="database").set(0)
    try:
        for name, length in services.queues.lengths().items():
            queue.labels(queue=name).set(length)
        up.labels(backend="redis").set(1)
    except Exception:
        log.warning("metrics: redis unreachable", exc_info=True)
        up.labels(backend="redis").set(0)
    return generate_latest(registry)
