"""MCP servers the coding agents may use: their configuration and each run's view of them.

An `[agent.mcp.<name>]` table names one server: a local program the agent CLI starts and
talks to over stdio, or a remote one it reaches over HTTP. Each server says which roles
get it and which of its tools they may call; Claude Code names those tools
`mcp__<server>__<tool>`. A role without a server has no such tools at all.

Secrets are written by reference to the bot's environment, `env:NAME` (or `{env:NAME}`
inside a longer value, such as a header's `Bearer {env:NAME}`). They are resolved for
one run only, into the file that run's CLI reads its servers from: a file outside the
worktree, readable by its owner only, removed when the run ends. The agent's own
environment never holds them, and no message or log line shows them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agents.base import AgentError
from agents.env import bot_environment, is_denied
from agents.sandbox import HostPorts, parse_endpoint

McpRole = Literal["planner", "executor"]
TaskSource = Literal["sentry", "jira", "github"]

# Claude Code joins server and tool with "__", so a double underscore in either would
# make a tool name ambiguous.
SERVER_NAME = re.compile(r"^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$")
TOOL_NAME = re.compile(r"^[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*$")
ALL_TOOLS = "*"
_VARIABLE = r"[A-Za-z_][A-Za-z0-9_]*"
WHOLE_REFERENCE = re.compile(rf"^env:({_VARIABLE})$")
INNER_REFERENCE = re.compile(rf"\{{env:({_VARIABLE})\}}")
# Anything that looks like a reference but is not one is a typo the operator should hear of.
_LOOKS_LIKE_REFERENCE = re.compile(r"env:")
# How people know these servers, for progress lines ("Sentry: get_issue_events 4211").
KNOWN_LABELS = {"github": "GitHub", "sentry": "Sentry", "jira": "Jira", "atlassian": "Atlassian"}
KNOWN_SOURCES: dict[str, TaskSource] = {
    "sentry": "sentry",
    "jira": "jira",
    "atlassian": "jira",
    "github": "github",
}
ARGUMENT_LIMIT = 40
# `id`, `issue_id`, `issueId`, `issueIdOrKey`, `number`; not `paid` or `grid`.
_IDENTIFIER = re.compile(r"(?:^|_)(?:id|key|number)$|(?<=[a-z])(?:Id|ID|Key|Number)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def references(value: str) -> list[str]:
    """The environment variables a configured value refers to."""
    whole = WHOLE_REFERENCE.match(value)
    return [whole[1]] if whole else INNER_REFERENCE.findall(value)


def _check_references(values: Mapping[str, str], where: str) -> None:
    for key, value in values.items():
        names = references(value)
        if not names and _LOOKS_LIKE_REFERENCE.search(value):
            raise ValueError(
                f"{where}.{key}: write a secret as env:NAME, or {{env:NAME}} inside a value"
            )
        for name in names:
            if is_denied(name):
                raise ValueError(
                    f"{where}.{key}: {name} is the bot's own; give the server a token of its own"
                )


class McpRepoOverride(_Strict):
    """What one repository changes about a server (`[agent.mcp.<name>.repos."o/n"]`)."""

    enabled: bool = True
    roles: tuple[McpRole, ...] | None = None
    tools: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: dict[str, str] | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    egress: tuple[str, ...] | None = None


class McpServerConfig(_Strict):
    """One MCP server: how to reach it, who gets it, and which of its tools they may call."""

    command: str | None = Field(None, description="a stdio server: the program to start")
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(
        default_factory=dict,
        description="the stdio server's own variables; secrets as env:NAME from the bot's",
    )
    url: str | None = Field(None, description="a remote server: its http(s) URL")
    transport: Literal["http", "sse"] = "http"
    headers: dict[str, str] = Field(
        default_factory=dict, description="sent to a remote server; secrets as {env:NAME}"
    )
    egress: HostPorts = Field(
        (),
        description="host:port pairs a stdio server itself calls (its service's API); they "
        "join the runs of the roles that get it",
    )
    roles: tuple[McpRole, ...] = Field(("planner",), description="which agents get the server")
    tools: tuple[str, ...] = Field(
        min_length=1, description='the tools those agents may call; "*" for all of them'
    )
    label: str | None = Field(None, max_length=40, description="its name in progress lines")
    serves: TaskSource | None = Field(
        None, description="the task source it can look up; known from the server's name"
    )
    repos: dict[str, McpRepoOverride] = Field(
        default_factory=dict, description="per-repo changes, by owner/name"
    )

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tool in value:
            if tool != ALL_TOOLS and not TOOL_NAME.match(tool):
                raise ValueError(f"{tool!r} is not a tool name")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (a stdio server) or url (a remote one)")
        if self.command is not None and self.headers:
            raise ValueError("headers are for a remote server (url); a stdio one takes env")
        if self.url is not None:
            if self.env or self.args:
                raise ValueError("env and args are for a stdio server (command)")
            _endpoint(self.url)
        _check_references(self.env, "env")
        _check_references(self.headers, "headers")
        for repo in self.repos:
            try:
                self.override(repo)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"])
                what = str(error["msg"]).removeprefix("Value error, ")
                raise ValueError(
                    f"repos.{repo}: " + (f"{where}: {what}" if where else what)
                ) from None
        return self

    def override(self, repo: str) -> McpServerConfig | None:
        """The server as one repository sees it; None when the repository turns it off."""
        change = next((o for name, o in self.repos.items() if name.lower() == repo.lower()), None)
        if change is None:
            return self
        if not change.enabled:
            return None
        values = change.model_dump(exclude={"enabled"}, exclude_none=True)
        return McpServerConfig.model_validate({**self.model_dump(exclude={"repos"}), **values})

    def display_label(self, name: str) -> str:
        """How progress lines name the server."""
        return self.label or KNOWN_LABELS.get(name.lower(), name)

    def task_source(self, name: str) -> TaskSource | None:
        """The kind of task whose ids the server can look up."""
        return self.serves or KNOWN_SOURCES.get(name.lower())


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an http(s) URL with a host, not {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"url has a bad port: {url!r}") from None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


McpServers = Mapping[str, McpServerConfig]


def for_repo(servers: McpServers, repo: str) -> dict[str, McpServerConfig]:
    """The servers one repository's tasks get, with its overrides applied."""
    chosen = {name: server.override(repo) for name, server in servers.items()}
    return {name: server for name, server in chosen.items() if server is not None}


def for_role(servers: McpServers, role: McpRole) -> dict[str, McpServerConfig]:
    """The servers one role is given."""
    return {name: server for name, server in servers.items() if role in server.roles}


def allowed_tools(servers: McpServers) -> tuple[str, ...]:
    """Claude Code permission rules for the servers' allowed tools (`mcp__sentry__x`)."""
    rules: list[str] = []
    for name, server in servers.items():
        if ALL_TOOLS in server.tools:
            rules.append(f"mcp__{name}")
        else:
            rules += [f"mcp__{name}__{tool}" for tool in server.tools]
    return tuple(rules)


def egress_hosts(servers: McpServers) -> tuple[tuple[str, int], ...]:
    """The (host, port) pairs the servers' run must reach, and no others.

    A remote server's own host; for a stdio server, which runs inside the agent's
    sandbox as the CLI's child, the hosts it is configured to call (`egress`).
    """
    hosts = {_endpoint(server.url) for server in servers.values() if server.url is not None}
    for server in servers.values():
        hosts |= {(e.host, e.port) for e in map(parse_endpoint, server.egress)}
    return tuple(sorted(hosts))


def labels(servers: McpServers) -> dict[str, str]:
    """Server name -> how progress lines name it."""
    return {name: server.display_label(name) for name, server in servers.items()}


def secret_values(servers: McpServers, source: Mapping[str, str] | None = None) -> list[str]:
    """The values the servers' references resolve to, for masking wherever text leaves."""
    source = bot_environment() if source is None else source
    return [
        source[name]
        for server in servers.values()
        for table in _tables(server)
        for value in table.values()
        for name in references(value)
        if source.get(name)
    ]


def _tables(server: McpServerConfig) -> list[Mapping[str, str]]:
    tables: list[Mapping[str, str]] = [server.env, server.headers]
    for change in server.repos.values():
        tables += [change.env or {}, change.headers or {}]
    return tables


def unset_references(
    servers: McpServers, source: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(server, variable) for each reference the bot's environment cannot resolve."""
    source = bot_environment() if source is None else source
    return [
        (name, variable)
        for name, server in servers.items()
        for table in _tables(server)
        for value in table.values()
        for variable in references(value)
        if not source.get(variable)
    ]


def resolve(value: str, server: str, source: Mapping[str, str]) -> str:
    """One configured value with its references replaced by the bot's environment.

    Raises:
        AgentError: A referenced variable is not set; the message names it, not a value.
    """

    def lookup(name: str) -> str:
        found = source.get(name)
        if not found:
            raise AgentError(
                f"The MCP server {server} needs {name} from the bot's environment, "
                "which is not set."
            )
        return found

    whole = WHOLE_REFERENCE.match(value)
    if whole:
        return lookup(whole[1])
    return INNER_REFERENCE.sub(lambda match: lookup(match[1]), value)


def claude_config(servers: McpServers, source: Mapping[str, str]) -> dict[str, Any]:
    """The `--mcp-config` document for Claude Code, secrets resolved.

    Raises:
        AgentError: A referenced variable is not set.
    """
    entries: dict[str, Any] = {}
    for name, server in servers.items():
        if server.command is not None:
            entries[name] = {
                "type": "stdio",
                "command": server.command,
                "args": list(server.args),
                "env": {key: resolve(v, name, source) for key, v in server.env.items()},
            }
        else:
            entries[name] = {
                "type": server.transport,
                "url": server.url,
                "headers": {key: resolve(v, name, source) for key, v in server.headers.items()},
            }
    return {"mcpServers": entries}


@contextmanager
def config_file(
    servers: McpServers,
    directory: Path | None = None,
    source: Mapping[str, str] | None = None,
) -> Iterator[Path | None]:
    """A run's MCP configuration in a private file, removed when the run ends.

    Yields None, and writes nothing, when there are no servers.

    Args:
        servers: The servers of this run.
        directory: Where the file's private directory is made; never inside a worktree.
            The system's temporary directory when None.
        source: Where references are resolved from; the bot's environment by default.

    Raises:
        AgentError: A referenced variable is not set.
    """
    if not servers:
        yield None
        return
    document = claude_config(servers, bot_environment() if source is None else source)
    if directory is not None:
        # Absolute: the CLI runs in the worktree, where a relative path means another file.
        directory = directory.resolve()
        directory.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="mcp-", dir=directory))
    try:
        path = private / "mcp.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        yield path
    finally:
        shutil.rmtree(private, ignore_errors=True)


def describe_call(tool: str, tool_input: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """A progress line for an MCP tool call: `Sentry: get_issue_events 4211`.

    Args:
        tool: Claude Code's name for it, `mcp__<server>__<tool>`.
        tool_input: The call's arguments; the first short one names what it looks at.
        names: Server name -> label.
    """
    server, _, name = tool.removeprefix("mcp__").partition("__")
    label = names.get(server) or KNOWN_LABELS.get(server.lower(), server)
    line = f"{label}: {name or 'a tool'}"
    # The id a call looks at says most ("issueId", "issue_key", "number"); else the first.
    shown = [(key, value) for key, value in tool_input.items() if _short_scalar(value)]
    named = [value for key, value in shown if _IDENTIFIER.search(str(key))]
    argument = (named or [value for _, value in shown] or [None])[0]
    if argument is not None:
        line += f" {argument}"
    return line[:80]


def _short_scalar(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value)
    return 0 < len(text) <= ARGUMENT_LIMIT and text.isprintable() and not text.isspace()


def source_hint(source: str, data: Mapping[str, Any], servers: McpServers) -> str:
    """What the planner should look up, and with which server, for a Sentry or Jira task."""
    for name, server in servers.items():
        if server.task_source(name) != source:
            continue
        tools = ", ".join(allowed_tools({name: server}))
        if source == "sentry" and data.get("issue_id"):
            what = f"Sentry issue {data['issue_id']}"
            if data.get("project"):
                what += f" in project {data['project']}"
            return (
                f"The MCP server {name} can look up {what}: read its latest events and "
                f"their full stack traces with its tools ({tools}) before you diagnose."
            )
        if source == "jira" and data.get("key"):
            return (
                f"The MCP server {name} can read Jira issue {data['key']}: its full "
                f"description and comments, with its tools ({tools})."
            )
        if source == "github" and data.get("repo") and data.get("number"):
            return (
                f"The MCP server {name} can read GitHub issue {data['repo']}#{data['number']}: "
                f"its comments and linked pull requests, with its tools ({tools})."
            )
    return ""
