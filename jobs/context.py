"""What job functions run with, built once per worker process.

RQ imports job functions by dotted path and calls them with primitives, so they
cannot take collaborators as arguments. The worker's entry point builds a
`JobContext` from its settings and installs it before it starts working; job
functions fetch it with `current()`. Nothing else in the code reaches for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis import Redis

from agents.base import AgentPair
from agents.github import GitHub
from agents.sandbox import Sandbox
from agents.workspace import Workspaces
from jobs.config import AgentbotConfig, RepoConfig
from jobs.db import Database
from jobs.fence import Fence
from jobs.notify import AwsStatusReporter, Notifier
from jobs.queues import Queues

if TYPE_CHECKING:
    import boto3

AgentFactory = Callable[[RepoConfig], AgentPair]


@dataclass
class JobContext:
    """The collaborators of every job function."""

    db: Database
    redis: Redis
    queues: Queues
    config: AgentbotConfig
    notifier: Notifier
    agents: AgentFactory
    workspaces: Workspaces
    # Pull requests go through this client; None means branches only.
    github: GitHub | None = None
    # The bot's own AWS session (a fresh one per call) and where AWS reports are shown.
    aws_session: Callable[[], boto3.Session] | None = None
    aws_reporter: AwsStatusReporter | None = None
    # Where test commands run (each repo adds its `test_egress`); agents get theirs
    # through `agents`.
    sandbox: Sandbox = field(default_factory=Sandbox)
    # Set while a job works on a task: what it does is done only while the task is its.
    fence: Fence | None = None


_installed: list[JobContext] = []


def install(context: JobContext) -> None:
    """Make `context` the one job functions in this process use."""
    _installed[:] = [context]


def current() -> JobContext:
    """The installed context.

    Raises:
        RuntimeError: When the process was not started through `agentbot worker`.
    """
    if not _installed:
        raise RuntimeError("no job context installed; start workers with `agentbot worker`")
    return _installed[0]
