"""The RQ worker Agentbot runs: kills agent process groups along with the work horse."""

from __future__ import annotations

import signal
from typing import Any

from rq import Worker
from rq.worker.base import SHUTDOWN_SIGNAL

# The job functions, imported once by the worker so every forked work horse inherits
# them; otherwise RQ imports them by dotted path again in each new horse, per job.
import jobs.work  # noqa: F401
from agents.processes import kill_children_of
from jobs.context import current


class AgentbotWorker(Worker):
    """A forking worker that leaves no agent or test process behind.

    Agents and test commands run in process groups of their own (so their own
    timeouts can kill them); RQ's stop-job command kills only the horse's group, so
    this worker also kills every group the horse registered.
    """

    def kill_horse(self, sig: signal.Signals = SHUTDOWN_SIGNAL) -> None:
        """Kill the horse's agent processes, then the horse."""
        if self.horse_pid:
            kill_children_of(self.horse_pid)
        super().kill_horse(sig)

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        """In the forked horse: drop the parent's pooled connections before any work."""
        current().db.engine.dispose(close=False)
        super().main_work_horse(*args, **kwargs)

    def handle_job_failure(self, *args: Any, **kwargs: Any) -> None:
        """Clean up after a horse that died without cleaning up after itself."""
        if self.horse_pid:
            kill_children_of(self.horse_pid)
        super().handle_job_failure(*args, **kwargs)
