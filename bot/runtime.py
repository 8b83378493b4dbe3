"""Composition roots: what `serve`, `socket` and `worker` build at start."""

from __future__ import annotations

from pathlib import Path

from agents.base import AgentPair
from agents.scripted import ScriptedExecutor, ScriptedPlanner
from agents.workspace import Workspaces
from bot.notifier import SlackNotifier
from bot.services import Services
from jobs.config import AgentConfig, RepoConfig
from jobs.context import JobContext


def agent_factory(config: AgentConfig) -> AgentPair:
    """The planner and executor the configuration asks for."""
    if config.kind == "scripted":
        return AgentPair(planner=ScriptedPlanner(), executor=ScriptedExecutor())
    raise NotImplementedError(f"agent kind {config.kind} is not available in this build")


def job_context(services: Services) -> JobContext:
    """Everything job functions need, wired for this process."""
    agent_config = services.config.agent
    pair = agent_factory(agent_config)

    def agents(_repo: RepoConfig) -> AgentPair:
        return pair

    return JobContext(
        db=services.db,
        redis=services.redis,
        queues=services.queues,
        config=services.config,
        notifier=SlackNotifier(services.db, services.slack, services.redis, services.config),
        agents=agents,
        workspaces=Workspaces(Path(agent_config.workspace_dir)),
    )
