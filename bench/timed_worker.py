"""`agentbot worker`, with stopwatches on each job and each agent call.

The throughput and pickup benchmarks need to split a task's time into the agent's,
the test runs' and the bot's own. The test runs time themselves (their durations
are in the task's result); this entry point adds the other two without changing
what the worker does:

- every job the worker runs (fork, horse, bookkeeping, as the worker sees it) is
  timed and pushed to the Redis list `bench:jobs`;
- every planner and executor call is timed and pushed to `bench:agent`.

Run: python bench/timed_worker.py [queues…]   (arguments as for `agentbot worker`)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis
from rq.job import Job
from rq.queue import Queue

import bot.runtime
import jobs.worker
from agents.base import AgentPair, AgentRun, CancelCheck, Plan, PlanOutcome, Progress, TaskBrief
from agents.config import AgentConfig
from agents.sandbox import Sandbox
from bot import cli
from bot.settings import get_settings
from jobs.config import RepoConfig

JOBS_KEY = "bench:jobs"
AGENT_KEY = "bench:agent"

_redis: list[Redis] = []


def _record(key: str, **entry: Any) -> None:
    if not _redis:
        _redis.append(Redis.from_url(get_settings().redis_url))
    _redis[0].rpush(key, json.dumps(entry))


class TimedWorker(jobs.worker.AgentbotWorker):
    """The Agentbot worker, timing each job from dequeue to the horse's end."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job as usual and record how long it took."""
        started = time.perf_counter()
        try:
            super().execute_job(job, queue)
        finally:
            _record(
                JOBS_KEY,
                task_id=job.args[0] if job.args else None,
                func=job.func_name,
                seconds=time.perf_counter() - started,
            )


class TimedPlanner:
    """Times a planning agent's calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.scripted = inner.scripted

    def plan(
        self, brief: TaskBrief, workspace: Path, progress: Progress, cancelled: CancelCheck
    ) -> PlanOutcome:
        """Plan, and record how long it took."""
        started = time.perf_counter()
        try:
            outcome: PlanOutcome = self.inner.plan(brief, workspace, progress, cancelled)
            return outcome
        finally:
            _record(AGENT_KEY, task=brief.key, phase="plan", seconds=time.perf_counter() - started)


class TimedExecutor:
    """Times an executor agent's calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.scripted = inner.scripted

    def _timed(self, phase: str, brief: TaskBrief, call: Any, *args: Any) -> AgentRun:
        started = time.perf_counter()
        try:
            run: AgentRun = call(brief, *args)
            return run
        finally:
            _record(AGENT_KEY, task=brief.key, phase=phase, seconds=time.perf_counter() - started)

    def write_failing_test(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
    ) -> AgentRun:
        """Write the failing test, and record how long it took."""
        return self._timed(
            "red", brief, self.inner.write_failing_test, plan, workspace, progress, cancelled
        )

    def implement_fix(
        self,
        brief: TaskBrief,
        plan: Plan,
        workspace: Path,
        progress: Progress,
        cancelled: CancelCheck,
    ) -> AgentRun:
        """Make the fix, and record how long it took."""
        return self._timed(
            "green", brief, self.inner.implement_fix, plan, workspace, progress, cancelled
        )


_plain_factory = bot.runtime.agent_factory


def timed_factory(
    config: AgentConfig, sandbox: Sandbox | None = None, repo: RepoConfig | None = None
) -> AgentPair:
    """The configured agents, each call timed."""
    pair = _plain_factory(config, sandbox, repo)
    return AgentPair(planner=TimedPlanner(pair.planner), executor=TimedExecutor(pair.executor))


def main(argv: list[str]) -> int:
    """Run `agentbot worker` with the timing hooks installed."""
    bot.runtime.agent_factory = timed_factory
    jobs.worker.AgentbotWorker = TimedWorker  # type: ignore[misc]
    return cli.main(["worker", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
