"""The RQ worker Agentbot runs: kills agent process groups along with the work horse.

Agents run as the worker's own OS user, and a process may read another's
`/proc/<pid>/environ` (and attach a debugger to it) when both have the same user, so
an agent could read the worker's SLACK_BOT_TOKEN or DATABASE_URL. The worker marks
itself non-dumpable before its work loop starts (`deny_same_user_inspection`): the
kernel then lets only root read those files, and the work horses it forks inherit
that. An agent or test command is started with exec, which makes it dumpable again,
so tools inside it work as usual.

On ECS the worker also protects its task from scale-in while a job runs (see
`jobs.ecs_protection`): the autoscaler may then remove idle workers but never a busy one.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import Any

from rq import Queue, Worker
from rq.job import Job
from rq.worker.base import SHUTDOWN_SIGNAL

# The job functions, imported once by the worker so every forked work horse inherits
# them; otherwise RQ imports them by dotted path again in each new horse, per job.
import jobs.work  # noqa: F401
from agents.processes import kill_children_of
from jobs.context import current
from jobs.ecs_protection import TaskProtection, protection_minutes

log = logging.getLogger(__name__)

# <linux/prctl.h>
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def deny_same_user_inspection() -> bool:
    """Close this process's `/proc` entries (environ, mem, fds) to other non-root processes.

    Sets the process non-dumpable with `prctl(PR_SET_DUMPABLE, 0)`: processes of the
    same user can no longer read its environment or memory, nor trace it. Children
    it forks inherit the flag; a program it execs starts dumpable again. Root can
    still read everything, which is why the image runs as a non-root user.

    Returns:
        Whether the flag was set: False where there is no prctl (not Linux), or
        when the call failed (logged).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        log.warning("could not make the worker non-dumpable: %s", os.strerror(error))
        return False
    return True


class AgentbotWorker(Worker):
    """A forking worker that leaves no agent or test process behind.

    Agents and test commands run in process groups of their own (so their own
    timeouts can kill them); RQ's stop-job command kills only the horse's group, so
    this worker also kills every group the horse registered.

    Args:
        *args: RQ's `Worker` arguments (queues first).
        task_protection: The ECS task's scale-in protection, held while a job runs;
            None (as outside ECS) for none.
        **kwargs: RQ's `Worker` keyword arguments (`connection`, ...).
    """

    def __init__(
        self, *args: Any, task_protection: TaskProtection | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.task_protection = task_protection or TaskProtection(None)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """Run the work loop, with this process and its horses closed to the agents."""
        deny_same_user_inspection()
        return bool(super().work(*args, **kwargs))

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run one job in a horse, with the ECS task protected from scale-in meanwhile.

        This runs in the worker process, around the horse's whole life: the protection
        holds through the job's timeout, a horse killed by the monitor or by a stop
        command, and the failure handling after it. Should the worker itself die, ECS
        drops the protection when it expires (the job's timeout plus a margin).
        """
        self.task_protection.protect(protection_minutes(job.timeout))
        try:
            super().execute_job(job, queue)
        finally:
            # Released after every job, even one whose protection was refused: a refusal
            # may have come after ECS applied it. The next job protects the task again.
            self.task_protection.release()

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
