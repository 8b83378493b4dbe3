"""The schema of the TOML file named by AGENTBOT_CONFIG.

What does not fit in an environment variable lives here: repos, who may request and
approve, channels, and the coding-agent command.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
EVERYONE = "*"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepoConfig(_Strict):
    """One repository the agents may work on."""

    name: str = Field(description="owner/name, as users type it after --repo")
    git_url: str
    default_branch: str = "main"
    test_command: str = "pytest -q"
    channel: str | None = Field(None, description="channel whose default repo this is")

    @field_validator("name")
    @classmethod
    def _owner_slash_name(cls, value: str) -> str:
        if not REPO_NAME.match(value):
            raise ValueError("must look like owner/name")
        return value


class AccessConfig(_Strict):
    """Who may ask for work and who may let it happen.

    Entries are Slack user ids (`U…`/`W…`) or user-group ids (`S…`); `"*"` means
    anyone in an accepted channel.
    """

    requesters: tuple[str, ...] = (EVERYONE,)
    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = False
    approvals_required: int = Field(1, ge=1, le=10)


class SlackConfig(_Strict):
    """Where the bot listens and where it announces."""

    channels: tuple[str, ...] = Field(
        (), description="channel ids that accept commands; empty accepts any"
    )
    notification_channel: str | None = None


class AgentConfig(_Strict):
    """Which coding agent plans and executes tasks, and its limits."""

    kind: Literal["scripted", "claude-code", "codex"] = "scripted"
    command: str | None = Field(None, description="path of the agent CLI; default on PATH")
    model: str | None = None
    extra_args: tuple[str, ...] = ()
    max_turns: int = Field(40, ge=1)
    timeout_seconds: int = Field(1800, ge=5)
    workspace_dir: str = ".agentbot/workspaces"


class JobConfig(_Strict):
    """Queue timeouts and retries."""

    plan_timeout_seconds: int = Field(1800, ge=5)
    execute_timeout_seconds: int = Field(3600, ge=5)
    max_retries: int = Field(2, ge=0, le=10)
    retry_backoff_seconds: tuple[int, ...] = (10, 60)


class AgentbotConfig(_Strict):
    """The whole configuration file."""

    repos: tuple[RepoConfig, ...] = ()
    access: AccessConfig = AccessConfig()
    slack: SlackConfig = SlackConfig()
    agent: AgentConfig = AgentConfig()
    jobs: JobConfig = JobConfig()

    @model_validator(mode="after")
    def _unique_repo_names(self) -> AgentbotConfig:
        names = [repo.name for repo in self.repos]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"repos: {name} is listed twice")
        return self

    def repo(self, name: str) -> RepoConfig | None:
        """The configured repo called `name` (case-insensitive), if any."""
        for repo in self.repos:
            if repo.name.lower() == name.lower():
                return repo
        return None

    def default_repo(self, channel: str | None) -> RepoConfig | None:
        """The repo a task gets without `--repo`: the channel's, or the only one."""
        for repo in self.repos:
            if channel is not None and repo.channel == channel:
                return repo
        return self.repos[0] if len(self.repos) == 1 else None
