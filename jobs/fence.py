"""A job acts on its task only while it still owns it, checked at the moment of each act.

A job can outlive its claim: its worker is killed but the work horse runs on, and the
reconciler fails the task; or a retry hands the task to a newer job. Such a job must
go quiet. Every side effect it has (a Slack post or edit, a commit, a push, a change
to a pull request) goes through a `Fence`, which asks the database first whether the
task is still this job's: the same job id, and the state this job last put it in.
When it is not, `TaskLost` is raised instead of the effect, and the job stops.

State changes are fenced by their own compare-and-set: a move from a state the task
has left does nothing. `Notifier.sync` is not fenced either: it only makes Slack show
what the database holds, which is true whoever runs it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from typing import Any, TypeVar, cast

from jobs.db import Database
from jobs.models import Task
from jobs.states import TaskState

log = logging.getLogger(__name__)

T = TypeVar("T")

# What each collaborator does that others can see; everything else it does is a read.
NOTIFIER_EFFECTS = frozenset(
    {
        "progress",
        "say",
        "ask_stalled",
        "ask_budget",
        "post_text",
        "post_ephemeral",
        "cost_report",
        "savings_report",
    }
)
WORKSPACE_EFFECTS = frozenset({"commit_all", "push"})
GITHUB_EFFECTS = frozenset({"open_pull", "update_pull", "mark_ready", "comment"})


class TaskLost(Exception):
    """The job no longer owns its task; it stops without another effect."""

    def __init__(self, task_id: int, effect: str) -> None:
        super().__init__(f"T-{task_id} is no longer this job's; {effect} not done")
        self.task_id = task_id
        self.effect = effect


class Fence:
    """Whether one job still owns one task.

    Args:
        db: The task database.
        task_id: The task.
        job_id: The job (None outside RQ, where nothing else can own the task).
        state: The state the job claimed the task in.
    """

    def __init__(self, db: Database, task_id: int, job_id: str | None, state: TaskState) -> None:
        self.db = db
        self.task_id = task_id
        self.job_id = job_id
        self.state = state

    def owns(self, task: Task) -> bool:
        """Whether `task`, as just read, is still in the job's state and names no other job."""
        mine = self.job_id is None or task.job_id in (None, self.job_id)
        return mine and task.task_state == self.state

    def holds(self) -> bool:
        """Whether the task, read now, is still the job's."""
        with self.db.session() as session:
            task = session.get(Task, self.task_id)
            return task is not None and self.owns(task)

    def follow(self, state: TaskState) -> None:
        """The job itself moved the task to `state`: what it says about that is its own."""
        self.state = state

    def check(self, effect: str) -> None:
        """Raise `TaskLost` unless the job still owns the task.

        Raises:
            TaskLost: The task moved on without this job, or belongs to another.
        """
        if not self.holds():
            raise TaskLost(self.task_id, effect)

    def guard(self, target: T, effects: Collection[str]) -> T:
        """`target`, with each method named in `effects` checked before it runs."""
        return cast("T", _Guarded(target, self, frozenset(effects)))


class _Guarded:
    """Stands in for a collaborator; its effects pass the fence first."""

    def __init__(self, target: Any, fence: Fence, effects: frozenset[str]) -> None:
        self._target = target
        self._fence = fence
        self._effects = effects

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._effects:
            return attribute

        @functools.wraps(attribute)
        def fenced(*args: Any, **kwargs: Any) -> Any:
            self._fence.check(name)
            return attribute(*args, **kwargs)

        return fenced


def stops_when_lost(func: Callable[..., None]) -> Callable[..., None]:
    """A job function that ends quietly, as finished, once its task is lost."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except TaskLost as lost:
            log.info("%s; stopping", lost)

    return run
