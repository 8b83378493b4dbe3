"""The `[agent]` and `[environment]` sections of the TOML file named by AGENTBOT_CONFIG.

They live here, in the lowest layer that reads them: the runners take the validated
`[agent]` table as it is (`agents.runner.CliOptions` wraps it), and `jobs.config`
composes both into the model of the whole file. Nothing is copied out field by field.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.env import CarriedEnvironment, is_denied
from agents.mcp import SERVER_NAME, McpServerConfig
from agents.sandbox import Endpoint, HostPorts, parse_endpoint

DEFAULT_WORKSPACE_DIR = ".agentbot/workspaces"
# The command each CLI kind runs when `[agent] command` does not name one.
DEFAULT_COMMANDS = {"claude-code": "claude", "codex": "codex"}


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
    stall_minutes: float = Field(
        10, gt=0, description="minutes without a sign of life before the thread hears of it"
    )
    max_cost_usd: float = Field(
        5.0, gt=0, description="dollars a task's agent runs may spend before approvers decide"
    )
    scope: Literal["warn", "refuse"] = Field(
        "warn",
        description="files changed outside the approved plan's: listed, or nothing pushed",
    )

    @property
    def sandboxed(self) -> bool:
        """Whether agents and test commands run in the sandbox."""
        return self.sandbox != "off"

    @property
    def cli_command(self) -> str:
        """The agent CLI to run: `command`, else the kind's own name on PATH."""
        return self.command or DEFAULT_COMMANDS[self.kind]

    @property
    def endpoints(self) -> frozenset[Endpoint]:
        """Where every agent run may connect besides its model's endpoint (`egress`)."""
        return frozenset(parse_endpoint(entry) for entry in self.egress)

    @property
    def mcp_dir(self) -> str:
        """Where each run's MCP configuration file is written: beside the worktrees and
        the agents' homes, never inside a worktree."""
        return str(PurePath(self.workspace_dir) / "mcp")

    def with_environment(self, environment: EnvironmentConfig) -> AgentConfig:
        """This table with a repository's environment added; what `env` sets here wins."""
        return self.model_copy(
            update={
                "env": {**environment.set, **self.env},
                "env_allow": tuple(dict.fromkeys((*self.env_allow, *environment.names))),
            }
        )

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
