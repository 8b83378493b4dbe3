"""The schema of the TOML file named by AGENTBOT_CONFIG.

What does not fit in an environment variable lives here: repos, who may request and
approve, channels, the coding-agent command, and the AWS accounts and regions.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from agents.aws.config import AwsConfig
from agents.aws.cost_config import CostConfig
from agents.env import CarriedEnvironment, is_denied
from agents.mcp import SERVER_NAME, McpServerConfig
from agents.sandbox import Endpoint, HostPorts, parse_endpoint

REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# https://github.com/o/n(.git), git@github.com:o/n(.git), ssh://git@github.com/o/n(.git)
GITHUB_URL = re.compile(
    r"^(?:https://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)
EVERYONE = "*"
DEFAULT_WORKSPACE_DIR = ".agentbot/workspaces"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Variables build tools need that hold no secret of the bot: CA bundles, proxies, and
# the homes and caches of rustup, cargo, npm, uv, pip and go. `toolchain = true` passes
# them through; the README lists them.
TOOLCHAIN_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "PIP_CERT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "RUSTUP_HOME",
    "CARGO_HOME",
    "RUSTUP_TOOLCHAIN",
    "NPM_CONFIG_CACHE",
    "npm_config_cache",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "UV_CACHE_DIR",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_NATIVE_TLS",
    "UV_PYTHON_INSTALL_DIR",
    "PIP_INDEX_URL",
    "PIP_CACHE_DIR",
    "GOPATH",
    "GOMODCACHE",
    "GOCACHE",
    "GOPROXY",
    "JAVA_HOME",
)
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvironmentConfig(_Strict):
    """What a repository's test command and the coding agent may carry.

    Both start from a short allowlist (PATH, locale, terminal); this adds names passed
    through from the worker's own environment and fixed values. The bot's own secrets
    and service addresses are refused by name here, and by value when the settings load.
    """

    toolchain: bool = Field(False, description="pass the standard toolchain variables")
    pass_through: tuple[str, ...] = Field(
        (), description="names copied from the worker's environment when set there"
    )
    set: dict[str, str] = Field(default_factory=dict, description="fixed values")

    @field_validator("pass_through", "set")
    @classmethod
    def _names_not_the_bots(cls, value: Any) -> Any:
        for name in value:
            if not VARIABLE_NAME.match(name):
                raise ValueError(f"{name!r} is not a variable name")
            if is_denied(name):
                raise ValueError(f"{name} is the bot's own; it never reaches tests or the agent")
        return value

    @property
    def names(self) -> tuple[str, ...]:
        """Every name passed through from the worker's environment."""
        return (*(TOOLCHAIN_VARIABLES if self.toolchain else ()), *self.pass_through)

    def carried(self) -> CarriedEnvironment:
        """The same, as the processes that start children take it."""
        return CarriedEnvironment(names=self.names, values=dict(self.set))

    def under(self, default: EnvironmentConfig) -> EnvironmentConfig:
        """This repository's environment on top of the default one: names add up, and a
        value set here wins over the default's."""
        return EnvironmentConfig(
            toolchain=self.toolchain or default.toolchain,
            pass_through=tuple(dict.fromkeys((*default.pass_through, *self.pass_through))),
            set={**default.set, **self.set},
        )


class RepoConfig(_Strict):
    """One repository the agents may work on."""

    name: str = Field(description="owner/name, as users type it after --repo")
    git_url: str
    default_branch: str = "main"
    test_command: str = "pytest -q"
    channel: str | None = Field(None, description="channel whose default repo this is")
    github_repo: str | None = Field(
        None,
        description="owner/name on GitHub for pull requests; detected from a github.com "
        "git_url, set it for GitHub Enterprise",
    )
    environment: EnvironmentConfig = Field(
        default_factory=EnvironmentConfig,
        description="more for this repo's test command and agent, on top of [environment]",
    )
    agent_egress: HostPorts = Field(
        (), description="host:port pairs the agent may reach for this repo (package registries)"
    )
    test_egress: HostPorts = Field(
        (), description="host:port pairs the test command may reach; none means no network"
    )

    @property
    def agent_endpoints(self) -> frozenset[Endpoint]:
        """Where the agent may connect while it works on this repo, besides its model."""
        return frozenset(parse_endpoint(entry) for entry in self.agent_egress)

    @property
    def test_endpoints(self) -> frozenset[Endpoint]:
        """Where this repo's test command may connect."""
        return frozenset(parse_endpoint(entry) for entry in self.test_egress)

    @field_validator("name")
    @classmethod
    def _owner_slash_name(cls, value: str) -> str:
        if not REPO_NAME.match(value):
            raise ValueError("must look like owner/name")
        return value

    @field_validator("github_repo")
    @classmethod
    def _github_owner_slash_name(cls, value: str | None) -> str | None:
        if value is not None and not REPO_NAME.match(value):
            raise ValueError("must look like owner/name")
        return value

    @property
    def pull_request_repo(self) -> str | None:
        """The GitHub repository pull requests go to, if the repo is on GitHub."""
        if self.github_repo:
            return self.github_repo
        match = GITHUB_URL.match(self.git_url)
        return f"{match['owner']}/{match['name']}" if match else None


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


class AgentRoleConfig(_Strict):
    """What one agent (planner or executor) may do, in each CLI's own terms."""

    permission_mode: Literal["default", "acceptEdits", "plan", "dontAsk", "bypassPermissions"] = (
        Field(description="Claude Code's --permission-mode")
    )
    allowed_tools: tuple[str, ...] = Field((), description="Claude Code's --allowedTools")
    disallowed_tools: tuple[str, ...] = Field((), description="Claude Code's --disallowedTools")
    sandbox: Literal["read-only", "workspace-write", "danger-full-access"] = Field(
        description="Codex's --sandbox"
    )


PLANNER_ROLE = AgentRoleConfig(
    permission_mode="dontAsk",
    allowed_tools=("Read", "Glob", "Grep"),
    disallowed_tools=("Bash", "Write", "Edit", "MultiEdit", "NotebookEdit"),
    # Codex's own sandbox cannot start inside the bot's; see the README.
    sandbox="danger-full-access",
)
EXECUTOR_ROLE = AgentRoleConfig(
    permission_mode="acceptEdits",
    allowed_tools=("Read", "Glob", "Grep", "Write", "Edit", "MultiEdit", "Bash"),
    # Codex's own sandbox cannot start inside the bot's; see the README.
    sandbox="danger-full-access",
)


class AgentConfig(_Strict):
    """Which coding agent plans and executes tasks, and its limits."""

    kind: Literal["scripted", "claude-code", "codex"] = "scripted"
    command: str | None = Field(None, description="path of the agent CLI; default on PATH")
    model: str | None = None
    extra_args: tuple[str, ...] = ()
    max_turns: int = Field(40, ge=1)
    timeout_seconds: int = Field(1800, ge=5)
    max_plan_revisions: int = Field(
        5, ge=0, le=50, description="how many times Request changes may revise one task's plan"
    )
    workspace_dir: str = DEFAULT_WORKSPACE_DIR
    env: dict[str, str] = Field(
        default_factory=dict, description="variables set for the agent CLI, e.g. its base URL"
    )
    env_allow: tuple[str, ...] = Field(
        (), description="more variable names the agent CLI may inherit (never bot secrets)"
    )
    home: str | None = Field(
        None,
        description="where each task's agent HOME goes (`<home>/<task key>`); a private "
        "`home` under workspace_dir by default, never the bot's own (whose ~/.aws, "
        "~/.netrc and ~/.config the agent must not read)",
    )
    planner: AgentRoleConfig = PLANNER_ROLE
    executor: AgentRoleConfig = EXECUTOR_ROLE
    sandbox: Literal["bubblewrap", "off"] = Field(
        "bubblewrap",
        description='where agents and test commands run; "off" runs them unsandboxed, '
        "and every card of their tasks says so",
    )
    egress: HostPorts = Field(
        (), description="host:port pairs every agent run may reach besides its model's endpoint"
    )
    sandbox_read_only: tuple[str, ...] = Field(
        (), description="toolchain directories the sandbox shows read-only, besides the system's"
    )
    sandbox_writable: tuple[str, ...] = Field(
        (), description="directories sandboxed runs may write besides the worktree and HOME"
    )
    mcp: dict[str, McpServerConfig] = Field(
        default_factory=dict, description="MCP servers the agents may use, by name"
    )

    @property
    def sandboxed(self) -> bool:
        """Whether agents and test commands run in the sandbox."""
        return self.sandbox != "off"

    @field_validator("mcp")
    @classmethod
    def _server_names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            if not SERVER_NAME.match(name):
                raise ValueError(f"{name!r}: a server name is letters, digits, - and single _")
        return value

    @model_validator(mode="after")
    def _mcp_needs_claude_code(self) -> AgentConfig:
        if self.mcp and self.kind == "codex":
            raise ValueError("mcp: MCP servers are given to Claude Code only; Codex gets none")
        return self

    @model_validator(mode="before")
    @classmethod
    def _role_defaults(cls, data: Any) -> Any:
        # `[agent.planner]` may change one key; the others keep the role's defaults.
        if isinstance(data, dict):
            data = dict(data)
            if data.get("home") is None:
                workspace_dir = data.get("workspace_dir") or DEFAULT_WORKSPACE_DIR
                data["home"] = str(PurePath(workspace_dir) / "home")
            for role, defaults in (("planner", PLANNER_ROLE), ("executor", EXECUTOR_ROLE)):
                if isinstance(data.get(role), dict):
                    data[role] = {**defaults.model_dump(), **data[role]}
        return data

    @field_validator("env", "env_allow")
    @classmethod
    def _no_bot_secrets(cls, value: Any) -> Any:
        for name in value:
            if is_denied(name):
                raise ValueError(f"{name} is the bot's own; it never reaches the agent")
        return value


class JobConfig(_Strict):
    """Queue timeouts and retries."""

    plan_timeout_seconds: int = Field(1800, ge=5)
    execute_timeout_seconds: int = Field(3600, ge=5)
    max_retries: int = Field(2, ge=0, le=10)
    retry_backoff_seconds: tuple[int, ...] = (10, 60)


SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")


class GitHubWebhookConfig(_Strict):
    """`POST /webhooks/github`: issues labelled for the agent, and approvals by comment."""

    secret: SecretStr | None = Field(
        None, description="webhook secret; GITHUB_WEBHOOK_SECRET takes precedence"
    )
    label: str = Field("agent", min_length=1, description="the label that hands an issue over")
    repos: tuple[str, ...] = Field(
        (), description="configured repos whose issues may start tasks; empty allows all"
    )


class SentryWebhookConfig(_Strict):
    """`POST /webhooks/sentry`: issue alerts from a Sentry internal integration."""

    secret: SecretStr | None = Field(
        None, description="the integration's client secret; SENTRY_CLIENT_SECRET takes precedence"
    )
    projects: dict[str, str] = Field(
        default_factory=dict, description="Sentry project slug or id -> configured repo"
    )


class JiraWebhookConfig(_Strict):
    """`POST /webhooks/jira`: issues created or updated with a label."""

    secret: SecretStr | None = Field(
        None, description="the admin webhook's secret; JIRA_WEBHOOK_SECRET takes precedence"
    )
    label: str = Field("AI-Fix", min_length=1, description="the label that hands an issue over")
    projects: dict[str, str] = Field(
        default_factory=dict, description="Jira project key -> configured repo"
    )


class WebhooksConfig(_Strict):
    """Triggers from GitHub, Sentry and Jira, feeding the same approval pipeline."""

    github: GitHubWebhookConfig = GitHubWebhookConfig()
    sentry: SentryWebhookConfig = SentryWebhookConfig()
    jira: JiraWebhookConfig = JiraWebhookConfig()
    github_users: dict[str, str] = Field(
        default_factory=dict,
        description="GitHub login -> Slack user id, for people acting from GitHub",
    )

    @field_validator("github_users")
    @classmethod
    def _slack_user_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for login, user in value.items():
            if not SLACK_USER.match(user):
                raise ValueError(f"{login}: {user!r} is not a Slack user id (U… or W…)")
        return value

    def slack_user(self, login: str) -> str | None:
        """The Slack user a GitHub login is linked to (logins are case-insensitive)."""
        for known, user in self.github_users.items():
            if known.lower() == login.lower():
                return user
        return None


class LimitsConfig(_Strict):
    """`[limits]`: how much work one person, everyone, and each webhook may start.

    The defaults protect a fresh install: each task is a paid agent run and a card in
    a channel, so a flood of requests is refused before it costs anything.
    """

    open_tasks_per_requester: int = Field(
        5, ge=1, description="unfinished tasks one requester may have at once"
    )
    open_tasks_total: int = Field(50, ge=1, description="unfinished tasks in all, at once")
    webhook_tasks_per_hour: int = Field(
        20, ge=1, description="tasks each webhook source (GitHub, Sentry, Jira) starts per hour"
    )


class AgentbotConfig(_Strict):
    """The whole configuration file."""

    repos: tuple[RepoConfig, ...] = ()
    access: AccessConfig = AccessConfig()
    slack: SlackConfig = SlackConfig()
    agent: AgentConfig = AgentConfig()
    jobs: JobConfig = JobConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    # None until an operator adds an `[aws]` table: `/agent aws …` then says it is not set up.
    aws: AwsConfig | None = None
    cost: CostConfig = CostConfig()
    environment: EnvironmentConfig = Field(
        default_factory=EnvironmentConfig,
        description="what every repo's test command and agent may carry",
    )
    limits: LimitsConfig = LimitsConfig()

    @model_validator(mode="after")
    def _unique_repo_names(self) -> AgentbotConfig:
        names = [repo.name for repo in self.repos]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"repos: {name} is listed twice")
        return self

    @model_validator(mode="after")
    def _webhook_repos_are_configured(self) -> AgentbotConfig:
        hooks = self.webhooks
        mapped = [
            *(("webhooks.github.repos", name) for name in hooks.github.repos),
            *(("webhooks.sentry.projects", name) for name in hooks.sentry.projects.values()),
            *(("webhooks.jira.projects", name) for name in hooks.jira.projects.values()),
        ]
        for where, name in mapped:
            if self.repo(name) is None:
                raise ValueError(f"{where}: {name} is not one of the configured repos")
        return self

    def environment_for(self, repo: RepoConfig) -> EnvironmentConfig:
        """What `repo`'s test command and agent may carry: the default and its own."""
        return repo.environment.under(self.environment)

    def environments(self) -> list[tuple[str, EnvironmentConfig]]:
        """Every environment the file configures, by where it is written."""
        return [
            ("environment", self.environment),
            *((f"repos.{repo.name}.environment", repo.environment) for repo in self.repos),
            ("agent.env", EnvironmentConfig(pass_through=self.agent.env_allow, set=self.agent.env)),
        ]

    @model_validator(mode="after")
    def _mcp_repos_are_configured(self) -> AgentbotConfig:
        for server_name, server in self.agent.mcp.items():
            for name in server.repos:
                if self.repo(name) is None:
                    raise ValueError(
                        f"agent.mcp.{server_name}.repos: {name} is not one of the configured repos"
                    )
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
