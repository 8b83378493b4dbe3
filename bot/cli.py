"""The `agentbot` console script."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.settings import ConfigError, Settings, get_settings, read_dev_environment
from jobs.exceptions import first_line

if TYPE_CHECKING:
    from redis import Redis

    from jobs.config import AgentbotConfig

log = logging.getLogger("agentbot")
# As `/agent aws cost` takes them (agents.aws.cost_report.PERIODS, not imported to parse).
COST_PERIODS = ("yesterday", "week", "month")


def _setup_logging(settings: Settings, config: AgentbotConfig | None = None) -> None:
    from agents.mcp import secret_values
    from bot.logging import configure, secrets_of

    # JSON lines with task/user/job context and credentials masked (see bot.logging),
    # what the agents' MCP servers' secrets resolve to included where agents run.
    extra = secret_values(config.agent.mcp) if config is not None else []
    configure(settings.log_level, [*secrets_of(settings), *extra])


def _checked_config(settings: Settings) -> AgentbotConfig:
    """The configuration file, read and validated before anything starts or forks."""
    return settings.config


def _reach_redis(redis: Redis) -> None:
    """Fail with one line naming REDIS_URL when Redis does not answer at start."""
    from redis.exceptions import RedisError

    try:
        redis.ping()
    except RedisError as exc:
        raise ConfigError(f"REDIS_URL: cannot reach Redis: {first_line(exc)}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve Slack events, probes and webhooks over HTTP with gunicorn."""
    from bot.server import serve

    settings = get_settings()
    settings.require_slack()
    # Read here, before gunicorn forks: its workers are handed these settings with the
    # file in them, and a bad file is named in one line instead of as a worker that
    # failed to boot.
    _checked_config(settings)
    _setup_logging(settings)
    serve(settings, port=args.port or settings.port, workers=args.workers, threads=args.threads)
    return 0


def cmd_socket(args: argparse.Namespace) -> int:
    """Connect to Slack over Socket Mode (no public URL needed)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app
    from bot.services import build_services

    settings = get_settings()
    settings.require_slack(socket_mode=True)
    _checked_config(settings)
    _setup_logging(settings)
    services = build_services(settings)
    handler = SocketModeHandler(build_app(services), settings.slack_app_token.get_secret_value())
    handler.start()  # type: ignore[no-untyped-call]
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run an RQ worker on the given queues."""
    from agents.mcp import unset_references
    from bot.runtime import job_context
    from bot.services import build_services
    from jobs.context import install
    from jobs.ecs_protection import TaskProtection
    from jobs.queues import ALL_QUEUES
    from jobs.worker import AgentbotWorker

    settings = get_settings()
    # Workers post the cards, plans and results, so they need the bot token too.
    settings.require_bot_token()
    config = _checked_config(settings)
    queues = args.queues or list(ALL_QUEUES)
    unknown = [q for q in queues if q not in ALL_QUEUES]
    if unknown:
        raise ConfigError(f"unknown queue {unknown[0]}; queues are {', '.join(ALL_QUEUES)}")
    if config.agent.kind != "scripted":
        # Workers run the agents, so every secret their MCP servers refer to must be here.
        for server, variable in unset_references(config.agent.mcp):
            raise ConfigError(f"agent.mcp.{server}: {variable} is not set")
    _setup_logging(settings, config)
    services = build_services(settings)
    _reach_redis(services.redis)
    if not config.agent.sandboxed:
        logging.getLogger("agentbot.worker").warning(
            'The agent sandbox is off ([agent] sandbox = "off"): coding agents and test '
            "commands run unsandboxed, with this worker's files and network around them."
        )
    else:
        from agents.sandbox import Sandbox

        # Fail closed, but say so now rather than at the first task.
        problem = Sandbox().problem()
        if problem is not None:
            logging.getLogger("agentbot.worker").error(
                "Every agent task will fail here: %s", problem
            )
    install(job_context(services))
    worker = AgentbotWorker(
        [services.queues.queue(name) for name in queues],
        connection=services.redis,
        # On ECS: busy workers are protected from scale-in, idle ones are not.
        task_protection=TaskProtection(settings.ecs_agent_uri),
    )
    worker.work(burst=args.burst, with_scheduler=True, logging_level=settings.log_level.upper())
    return 0


def cmd_cron(args: argparse.Namespace) -> int:
    """Run the scheduler that enqueues periodic jobs (reconciler, digests)."""
    from bot.services import build_services
    from jobs.schedule import run_cron

    settings = get_settings()
    _checked_config(settings)
    _setup_logging(settings)
    services = build_services(settings)
    _reach_redis(services.redis)
    run_cron(services.redis, services.config)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the database schema."""
    from sqlalchemy.exc import OperationalError

    from jobs.db import migrate

    settings = get_settings()
    # Every process reads the same file; a broken one is better found by the first.
    _checked_config(settings)
    _setup_logging(settings)
    try:
        migrate(settings.database_url, args.revision)
    except OperationalError as exc:
        raise ConfigError(f"DATABASE_URL: cannot reach the database: {first_line(exc)}") from None
    print(f"database is at revision {args.revision}")
    return 0


DEV_ONLY = ("sandbox", "moto", "fakeredis")
DEV_HINT = "run `uv sync` in a checkout of the repository, then `uv run agentbot dev`"


def cmd_dev(args: argparse.Namespace) -> int:
    """Run the whole product locally: a Slack workspace in the browser, no accounts needed."""
    from importlib.util import find_spec
    from pathlib import Path

    # The sandbox and what only it uses are not installed with the product (`--no-dev`).
    missing = [name for name in DEV_ONLY if find_spec(name) is None]
    if missing:
        needs = f"agentbot dev needs the development dependencies ({', '.join(missing)} missing)"
        print(f"{needs}: {DEV_HINT}", file=sys.stderr)
        return 2
    from sandbox.dev import DevOptions, run_dev

    # The sandbox reads only the process environment (never `.env`), and of it only
    # what it does not replace; check that here, where a bad value is named in one line.
    read_dev_environment()
    options = DevOptions(
        port=args.port,
        host=args.host,
        bot_port=args.bot_port,
        data_dir=Path(args.data_dir),
        agent=args.agent,
        aws=not args.no_aws,
        sandboxed=not args.unsandboxed,
    )
    return run_dev(options)


def cmd_aws_status(args: argparse.Namespace) -> int:
    """Scan AWS accounts and regions and print resource health (the `/agent aws status` twin)."""
    from bot.aws.terminal import print_status

    return print_status(
        get_settings(),
        accounts=args.account,
        regions=args.region,
        services=args.service,
        words=args.words,
    )


def cmd_aws_cost(args: argparse.Namespace) -> int:
    """Print the AWS cost report and the Cost Explorer calls it made (`/agent aws cost`)."""
    from bot.aws.cost import print_cost

    return print_cost(get_settings(), args.period_word or args.period)


def cmd_aws_optimize(args: argparse.Namespace) -> int:
    """Print savings recommendations with their evidence (`/agent aws optimize`)."""
    from bot.aws.cost import print_savings

    return print_savings(get_settings())


def _add_aws(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    aws = sub.add_parser(
        "aws",
        help="AWS reports in the terminal, twins of `/agent aws …`",
        description="AWS reports in the terminal, twins of `/agent aws …`.",
    )
    reports = aws.add_subparsers(dest="aws_report", required=True, metavar="REPORT")
    status = reports.add_parser(
        "status", help=cmd_aws_status.__doc__, description=cmd_aws_status.__doc__
    )
    status.add_argument(
        "words",
        nargs="*",
        metavar="ACCOUNT|REGION|SERVICE",
        help="what to check, in any order, as `/agent aws status` takes it (default: all)",
    )
    status.add_argument(
        "--account", action="append", help="account name or id (repeatable; default: all)"
    )
    status.add_argument("--region", action="append", help="region (repeatable; default: all)")
    status.add_argument(
        "--service", action="append", help="service, e.g. ec2 or rds (repeatable; default: all)"
    )
    status.set_defaults(func=cmd_aws_status)
    cost = reports.add_parser("cost", help=cmd_aws_cost.__doc__, description=cmd_aws_cost.__doc__)
    cost.add_argument(
        "period_word",
        nargs="?",
        choices=COST_PERIODS,
        metavar="PERIOD",
        help="yesterday, week or month, as `/agent aws cost` takes it (default: yesterday)",
    )
    cost.add_argument("--period", choices=COST_PERIODS, default="yesterday", help="the same")
    cost.set_defaults(func=cmd_aws_cost)
    optimize = reports.add_parser(
        "optimize", help=cmd_aws_optimize.__doc__, description=cmd_aws_optimize.__doc__
    )
    optimize.set_defaults(func=cmd_aws_optimize)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per process kind."""
    parser = argparse.ArgumentParser(
        prog="agentbot",
        description="Slack-first chatops: coding agents behind an approval gate, AWS health "
        "and cost. Configuration comes from the environment, .env, and AGENTBOT_CONFIG.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help=cmd_serve.__doc__, description=cmd_serve.__doc__)
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT or 3000)")
    serve.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    serve.add_argument("--threads", type=int, default=8, help="threads per worker process")
    serve.set_defaults(func=cmd_serve)

    socket = sub.add_parser("socket", help=cmd_socket.__doc__, description=cmd_socket.__doc__)
    socket.set_defaults(func=cmd_socket)

    worker = sub.add_parser("worker", help=cmd_worker.__doc__, description=cmd_worker.__doc__)
    worker.add_argument("queues", nargs="*", help="queues to work (default: plan execute default)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.set_defaults(func=cmd_worker)

    cron = sub.add_parser("cron", help=cmd_cron.__doc__, description=cmd_cron.__doc__)
    cron.set_defaults(func=cmd_cron)

    migrate = sub.add_parser("migrate", help=cmd_migrate.__doc__, description=cmd_migrate.__doc__)
    migrate.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    migrate.set_defaults(func=cmd_migrate)

    dev = sub.add_parser("dev", help=cmd_dev.__doc__, description=cmd_dev.__doc__)
    dev.add_argument("--port", type=int, default=3000, help="the workspace page (default 3000)")
    dev.add_argument("--host", default="127.0.0.1", help="address of the page (default loopback)")
    dev.add_argument("--bot-port", type=int, default=0, help="the bot's port (default: any free)")
    dev.add_argument("--data-dir", default=".agentbot/dev", help="default: .agentbot/dev")
    dev.add_argument(
        "--agent",
        choices=("auto", "scripted", "claude-code"),
        default="auto",
        help="auto: Claude Code when installed and signed in, else the scripted agent",
    )
    dev.add_argument("--no-aws", action="store_true", help="skip the demo AWS estate")
    dev.add_argument(
        "--unsandboxed",
        action="store_true",
        help="run the agent and the tests without the agent sandbox (no bubblewrap here)",
    )
    dev.set_defaults(func=cmd_dev)

    _add_aws(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `agentbot` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"agentbot: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
