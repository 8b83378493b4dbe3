"""Prometheus metrics, derived at scrape time from the database and Redis.

RQ forks a process per job, so per-process counters would be lost with each horse;
what can be read from shared state is read from it when Prometheus asks:

- the database: tasks by state, transitions, requeues and the time spent in each
  phase (from `task_events`), agent cost (`tasks.agent_cost_usd`);
- RQ's keys in Redis: queue lengths, started and failed jobs, workers;
- counters that any process adds to in Redis:
  `agentbot:metrics:slack_api_errors` (a hash of ``"<method>|<error>"`` -> count,
  written by the Slack client, see `bot.services.SlackErrorCounter`) and
  `agentbot:metrics:ce_calls` (an integer: whoever calls AWS Cost Explorer runs
  ``INCR agentbot:metrics:ce_calls`` once per billed API call), and
  `agentbot:metrics:limit_refusals` (a hash of limit name -> count, see `jobs.limits`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from rq import Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from bot.services import SLACK_ERRORS_KEY, Services
from jobs.limits import REFUSALS_KEY
from jobs.models import Task, TaskEvent
from jobs.queues import ALL_QUEUES
from jobs.states import TaskState
from jobs.steering import STALLS_KEY
from jobs.tasks import count_by_state

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
CE_CALLS_KEY = "agentbot:metrics:ce_calls"

# Phases run from seconds (queued) to days (awaiting approval).
PHASE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 604800)
PHASES = tuple(state for state in TaskState if not state.is_terminal)


def _seconds_between(db_dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    if db_dialect == "postgresql":
        return func.extract("epoch", end - start)
    # SQLite keeps timestamps as text; julianday() counts days.
    return (func.julianday(end) - func.julianday(start)) * 86400.0


# Events from a state to the same one are notes (the reconciler queuing a task's job
# again), not state changes: they neither end a phase nor count as a transition.
STATE_CHANGE = or_(TaskEvent.from_state.is_(None), TaskEvent.from_state != TaskEvent.to_state)


def phase_durations(session: Session) -> dict[str, tuple[list[int], int, float]]:
    """Per phase: cumulative counts for PHASE_BUCKETS, the count and the sum of seconds.

    A phase lasts from the event that entered a state to the task's next state change;
    phases not yet left are not counted (they are visible in `agentbot_tasks`).
    """
    dialect = session.get_bind().dialect.name
    left_at = (
        func.lead(TaskEvent.created_at)
        .over(partition_by=TaskEvent.task_id, order_by=TaskEvent.id)
        .label("left_at")
    )
    spans = (
        select(TaskEvent.to_state.label("phase"), TaskEvent.created_at.label("entered_at"), left_at)
        .where(STATE_CHANGE)
        .subquery()
    )
    seconds = _seconds_between(dialect, spans.c.entered_at, spans.c.left_at)
    columns = [func.count(), func.coalesce(func.sum(seconds), 0.0)]
    columns += [func.sum(case((seconds <= bound, 1), else_=0)) for bound in PHASE_BUCKETS]
    rows = session.execute(
        select(spans.c.phase, *columns)
        .where(spans.c.left_at.is_not(None), spans.c.phase.in_([p.value for p in PHASES]))
        .group_by(spans.c.phase)
    ).all()
    return {
        str(row[0]): ([int(n or 0) for n in row[3:]], int(row[1]), float(row[2])) for row in rows
    }


class SharedStateCollector(Collector):
    """Reads every metric from the database and Redis when collected."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families; a backend that does not answer is reported down."""
        up = GaugeMetricFamily(
            "agentbot_backend_up", "Whether a backing service answers", labels=["backend"]
        )
        try:
            database = list(self._from_database())
            up.add_metric(["database"], 1)
        except Exception:
            log.warning("metrics: database unreachable", exc_info=True)
            database = []
            up.add_metric(["database"], 0)
        try:
            redis = list(self._from_redis())
            up.add_metric(["redis"], 1)
        except Exception:
            log.warning("metrics: redis unreachable", exc_info=True)
            redis = []
            up.add_metric(["redis"], 0)
        yield up
        yield from database
        yield from redis

    def _from_database(self) -> Iterable[Metric]:
        with self.services.db.session() as session:
            counts = count_by_state(session)
            transitions = session.execute(
                select(TaskEvent.from_state, TaskEvent.to_state, func.count())
                .where(STATE_CHANGE)
                .group_by(TaskEvent.from_state, TaskEvent.to_state)
            ).all()
            requeues = session.execute(
                select(TaskEvent.to_state, func.count())
                .where(TaskEvent.from_state == TaskEvent.to_state)
                .group_by(TaskEvent.to_state)
            ).all()
            durations = phase_durations(session)
            costs = session.execute(
                select(Task.repo, func.coalesce(func.sum(Task.agent_cost_usd), 0.0)).group_by(
                    Task.repo
                )
            ).all()
        tasks = GaugeMetricFamily("agentbot_tasks", "Tasks by state", labels=["state"])
        for state in TaskState:
            tasks.add_metric([state.value], counts.get(state.value, 0))
        yield tasks

        moved = CounterMetricFamily(
            "agentbot_task_transitions",
            "State changes recorded in the audit trail (from=none: task created)",
            labels=["from", "to"],
        )
        for source, target, count in transitions:
            moved.add_metric([source or "none", target], count)
        yield moved

        again = CounterMetricFamily(
            "agentbot_task_requeues",
            "Jobs the reconciler queued again after they were lost, by the task's state",
            labels=["state"],
        )
        for waiting, count in requeues:
            again.add_metric([waiting], count)
        yield again

        phases = HistogramMetricFamily(
            "agentbot_task_phase_duration_seconds",
            "Time tasks spent in each lifecycle phase, from the audit trail",
            labels=["phase"],
        )
        for phase in PHASES:
            cumulative, count, total = durations.get(phase.value, ([0] * len(PHASE_BUCKETS), 0, 0))
            buckets = [(str(float(b)), n) for b, n in zip(PHASE_BUCKETS, cumulative, strict=True)]
            phases.add_metric([phase.value], [*buckets, ("+Inf", count)], total)
        yield phases

        cost = CounterMetricFamily(
            "agentbot_agent_cost_usd",
            "Coding-agent cost in US dollars, as the agent CLI reported it",
            labels=["repo"],
        )
        for repo, dollars in costs:
            cost.add_metric([repo], float(dollars))
        yield cost

    def _from_redis(self) -> Iterable[Metric]:
        redis = self.services.redis
        waiting = GaugeMetricFamily(
            "agentbot_queue_length", "Jobs waiting per queue", labels=["queue"]
        )
        started = GaugeMetricFamily(
            "agentbot_jobs_started", "Jobs a worker is running, per queue", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "agentbot_jobs_failed",
            "Jobs in RQ's failed-job registry (failed with no retries left), per queue",
            labels=["queue"],
        )
        for name, length in self.services.queues.lengths().items():
            waiting.add_metric([name], length)
        for name in ALL_QUEUES:
            queue = self.services.queues.queue(name)
            started.add_metric([name], StartedJobRegistry(queue=queue).count)
            failed.add_metric([name], FailedJobRegistry(queue=queue).count)
        yield waiting
        yield started
        yield failed
        yield GaugeMetricFamily(
            "agentbot_workers", "RQ workers registered", value=Worker.count(connection=redis)
        )

        slack = CounterMetricFamily(
            "agentbot_slack_api_errors",
            "Failed Slack Web API attempts (rate limits, HTTP errors, ok=false, connection)",
            labels=["method", "error"],
        )
        raw: dict[bytes, bytes] = redis.hgetall(SLACK_ERRORS_KEY)  # type: ignore[assignment]
        for field, value in sorted(raw.items()):
            method, _, error = field.decode().partition("|")
            slack.add_metric([method, error], int(value))
        yield slack

        refusals = CounterMetricFamily(
            "agentbot_limit_refusals",
            "Requests for tasks refused by a limit of [limits]",
            labels=["limit"],
        )
        counted: dict[bytes, bytes] = redis.hgetall(REFUSALS_KEY)  # type: ignore[assignment]
        for limit, value in sorted(counted.items()):
            refusals.add_metric([limit.decode()], int(value))
        yield refusals

        ce_calls = redis.get(CE_CALLS_KEY)
        yield CounterMetricFamily(
            "agentbot_cost_explorer_calls",
            "AWS Cost Explorer API calls made (each one is billed)",
            value=int(ce_calls) if ce_calls else 0,
        )

        stalls = redis.get(STALLS_KEY)
        yield CounterMetricFamily(
            "agentbot_agent_stalls",
            "Agent runs that showed no sign of life for [agent] stall_minutes",
            value=int(stalls) if stalls else 0,
        )


def render(services: Services) -> bytes:
    """The current metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SharedStateCollector(services))
    return generate_latest(registry)
