"""Composition roots: what `serve`, `socket` and `worker` build at start."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from agents.base import AgentPair
from agents.claude_code import ClaudeCodeRunner
from agents.codex import CodexRunner
from agents.config import AgentConfig
from agents.git_credentials import credential_env, github_hosts
from agents.github import GitHub
from agents.mcp import secret_values
from agents.runner import CliExecutor, CliOptions, CliPlanner, CodingAgentRunner
from agents.sandbox import Sandbox
from agents.scripted import ScriptedExecutor, ScriptedPlanner
from agents.workspace import Workspaces
from bot.aws.status import SlackAwsReporter
from bot.home.publisher import HomePublisher
from bot.logging import Redactor, secrets_of
from bot.notifier import SlackNotifier
from bot.services import Services
from bot.settings import Settings
from jobs.config import RepoConfig
from jobs.context import JobContext


def bot_files(settings: Settings) -> list[str]:
    """The bot's own files, which no sandboxed run may see even where a bound path holds them.

    Its configuration file, the `.env` beside it and in its working directory, and a
    SQLite database file with its journals.
    """
    files = [str(Path(".env").absolute())]
    if settings.config_path is not None:
        config = Path(settings.config_path).absolute()
        files += [str(config), str(config.parent / ".env")]
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database)).absolute()
        files += [
            str(database),
            *(f"{database}{suffix}" for suffix in ("-wal", "-shm", "-journal")),
        ]
    return files


def base_sandbox(config: AgentConfig, hidden: Sequence[str] = ()) -> Sandbox:
    """The sandbox every agent run and test run starts from, as configured.

    Args:
        config: The `[agent]` table: whether to sandbox, extra read-only and writable
            paths, and the egress every agent run may use.
        hidden: The bot's own files (`bot_files`).
    """
    return Sandbox(
        enabled=config.sandboxed,
        read_only=config.sandbox_read_only,
        writable=config.sandbox_writable,
        hidden=tuple(hidden),
    )


def cli_options(
    config: AgentConfig, sandbox: Sandbox | None = None, repo: str | None = None
) -> CliOptions:
    """How to run the configured agent CLI, for one repository's tasks when `repo` is set.

    The `[agent]` table goes in whole; only where the runs happen is added here.
    """
    if sandbox is None:
        sandbox = base_sandbox(config)
    return CliOptions(agent=config, sandbox=sandbox.allowing(config.endpoints), repo=repo)


def agent_factory(
    config: AgentConfig, sandbox: Sandbox | None = None, repo: RepoConfig | None = None
) -> AgentPair:
    """The planner and executor the configuration asks for, for work on `repo`.

    Args:
        config: The `[agent]` table.
        sandbox: Where the agent runs (`base_sandbox`); the configured one if None.
        repo: The repository worked on, whose `agent_egress` the agent may also reach.
    """
    sandbox = base_sandbox(config) if sandbox is None else sandbox
    if repo is not None:
        sandbox = sandbox.allowing(repo.agent_endpoints)
    if config.kind == "scripted":
        executor = ScriptedExecutor(
            home=config.home,
            sandbox=sandbox.allowing(config.endpoints),
        )
        return AgentPair(planner=ScriptedPlanner(), executor=executor)
    options = cli_options(config, sandbox, repo.name if repo is not None else None)
    runner: CodingAgentRunner = (
        ClaudeCodeRunner(options) if config.kind == "claude-code" else CodexRunner(options)
    )
    return AgentPair(
        planner=CliPlanner(runner, options.mcp_servers("planner")), executor=CliExecutor(runner)
    )


def github_client(settings: Settings) -> GitHub | None:
    """The GitHub API client, when GITHUB_TOKEN is set."""
    token = settings.github_token.get_secret_value().strip()
    return GitHub(token, settings.github_api_url) if token else None


def job_context(services: Services) -> JobContext:
    """Everything job functions need, wired for this process."""
    agent_config = services.config.agent
    sandbox = base_sandbox(agent_config, bot_files(services.settings))
    pairs: dict[str, AgentPair] = {}

    def agents(repo: RepoConfig) -> AgentPair:
        # Each repo's agent carries that repo's environment (CA bundles, toolchain homes),
        # may reach that repo's egress allowlist, and gets that repo's MCP servers.
        if repo.name not in pairs:
            pairs[repo.name] = agent_factory(
                agent_config.with_environment(services.config.environment_for(repo)),
                sandbox,
                repo,
            )
        return pairs[repo.name]

    # Exact secret values too (GitHub token, webhook secrets, URL passwords, what MCP
    # servers' references resolve to), not only the patterns the logs mask, in
    # everything the workers post.
    redactor = Redactor(
        [
            *secrets_of(services.settings),
            services.slack.token or "",
            *secret_values(agent_config.mcp),
        ]
    )
    return JobContext(
        db=services.db,
        redis=services.redis,
        queues=services.queues,
        config=services.config,
        notifier=SlackNotifier(
            services.db,
            services.slack,
            services.redis,
            services.config,
            redactor=redactor,
            # Homes are published by workers, masked as their messages are.
            home=HomePublisher(
                db=services.db,
                redis=services.redis,
                queues=services.queues,
                client=services.slack,
                config=services.config,
                access=services.access,
                redactor=redactor,
            ),
        ),
        agents=agents,
        workspaces=Workspaces(
            Path(agent_config.workspace_dir),
            git_env=credential_env(
                services.settings.github_token.get_secret_value().strip(),
                github_hosts(services.settings.github_api_url),
            ),
        ),
        github=github_client(services.settings),
        aws_session=services.settings.aws_session,
        aws_reporter=SlackAwsReporter(services.slack, redactor=redactor),
        sandbox=sandbox,
    )
