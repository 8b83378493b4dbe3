"""`agentbot dev`: the whole product in one process, with no Slack workspace or AWS account.

One command starts, on loopback:

- a Slack workspace in the browser (`sandbox.workspace` over `sandbox.fakeslack`),
  which talks to the bot only as Slack does: signed requests to `/slack/events`, and
  the bot's Web API calls to `SLACK_API_URL`;
- the bot itself — the same Bolt app and WSGI router `agentbot serve` runs — on an
  internal port, with SQLite under the data directory and an in-process Redis
  (or the Redis named by `REDIS_URL`);
- RQ workers for the plan, execute and default queues, and the scheduler, in threads;
- a sample repository with a real bug, and the scripted agent whose script fixes
  it (or Claude Code, when it is installed and signed in);
- a moto server holding a demo AWS estate (`sandbox.demo_aws`), with the process's
  AWS variables pointing at it; once it is seeded, the day's cost digest is posted
  in #aws-costs, and the daily digest check starts;
- the GitHub, Sentry and Jira webhooks of `agentbot serve`, on the bot's port, with
  secrets of the sandbox's own written into its configuration file.

Each start is a fresh sandbox: the previous run's database, sample repository and
workspaces are removed first.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import gc
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from bot.settings import ConfigError, Settings, load_config_file, read_dev_environment
from jobs.config import AgentbotConfig
from sandbox.fakeslack import FakeSlack
from sandbox.workspace import Channel, Person, Workspace

if TYPE_CHECKING:
    from jobs.context import JobContext

log = logging.getLogger(__name__)

REQUESTER = Person(id="U0ADA", name="Ada", title="requester")
APPROVER = Person(id="U0GRACE", name="Grace", title="approver")
PEOPLE = [REQUESTER, APPROVER]
DEV_CHANNEL = Channel(id="C0DEV", name="dev")
COSTS_CHANNEL = Channel(id="C0COSTS", name="aws-costs")
CHANNELS = [DEV_CHANNEL, COSTS_CHANNEL]
SAMPLE_REPO = "acme/shop-pricing"
# Where webhooks' projects point: Sentry's project slug and Jira's project key.
SENTRY_PROJECT = "shop-pricing"
JIRA_PROJECT = "SHOP"
WEBHOOK_SOURCES = ("github", "sentry", "jira")
TEST_COMMAND = "python -m pytest -q"
AGENT_CHOICES = ("auto", "scripted", "claude-code")
# Claude Code's own install command (its npm package).
CLAUDE_CODE_INSTALL = "npm install -g @anthropic-ai/claude-code"
# What each run starts afresh; nothing else under the data directory is touched.
FRESH = (
    "agentbot.db",
    "agentbot.db-wal",
    "agentbot.db-shm",
    "agentbot.toml",
    "remote",
    "workspaces",
    "aws",
    "terminal.env",
)
# Read by point_aws_at's callers: what a terminal twin needs to reach the demo estate.
AWS_TERMINAL_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
)


@dataclass
class DevOptions:
    """How `agentbot dev` runs."""

    port: int = 3000
    host: str = "127.0.0.1"
    bot_port: int = 0
    data_dir: Path = Path(".agentbot/dev")
    agent: str = "auto"
    aws: bool = True
    # False for `--unsandboxed`: `[agent] sandbox = "off"`, said on every card.
    sandboxed: bool = True
    # The IANA zone of the daily digest's 09:00 (the demo estate's costs are UTC days).
    digest_timezone: str = "UTC"


def tell(line: str) -> None:
    """Print for the person at the terminal at once, even when stdout is a pipe."""
    print(line, flush=True)


class Sandbox:
    """Everything `agentbot dev` runs, started and stopped together."""

    def __init__(self, options: DevOptions, say: Callable[[str], None] = tell) -> None:
        """Prepare (nothing starts until `start`).

        Args:
            options: Ports, data directory, agent, whether to serve AWS.
            say: Where progress lines for the person at the terminal go.
        """
        self.options = options
        self.say = say
        self.data_dir = options.data_dir.resolve()
        self.aws_ready = threading.Event()
        self._stopping = threading.Event()
        self.aws_summary: str | None = None
        self.aws_failure: str | None = None
        self.agent_kind = "scripted"
        # Why the agent sandbox cannot start here, if it cannot (see `_start`).
        self.sandbox_problem: str | None = None
        self.redis_label = "in-process (memory://)"
        self._stoppers: list[Callable[[], None]] = []
        self.slack: FakeSlack | None = None
        self.workspace: Workspace | None = None
        self.bot_url = ""
        self._moto: Any = None
        self._aws_thread: threading.Thread | None = None
        self._after_estate: Callable[[], None] | None = None
        self.digest_posted = threading.Event()
        self.webhook_secrets = {source: secrets.token_hex(16) for source in WEBHOOK_SOURCES}

    @property
    def url(self) -> str:
        """The browser workspace's URL."""
        assert self.slack is not None, "not started"
        return self.slack.url.rstrip("/")

    # -- start and stop ------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Start every part; returns once the workspace page and the bot answer.

        Raises:
            ConfigError: A port or the data directory is taken, or the generated
                configuration is invalid.
        """
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._lock_data_dir()
        bot_token = "xoxb-sandbox-" + secrets.token_hex(12)
        signing_secret = secrets.token_hex(16)
        slack = self._bind_slack(bot_token)
        self._fresh_data_dir()
        moto_url = self._prepare_aws() if self.options.aws else None

        from sandbox.sample import make_sample_repo

        remote = make_sample_repo(self.data_dir / "remote" / "shop-pricing.git")
        self.agent_kind = choose_agent(self.options.agent)
        if self.options.sandboxed:
            from agents.sandbox import Sandbox as AgentSandbox

            self.sandbox_problem = AgentSandbox().problem()
        config_path = self._write_config(remote, moto_url is not None)
        settings = self._settings(bot_token, signing_secret, slack, config_path)

        from jobs.db import migrate

        migrate(settings.database_url)
        self._start_bot(settings, with_aws=moto_url is not None)
        self.workspace = Workspace(
            slack,
            events_url=f"{self.bot_url}/slack/events",
            signing_secret=signing_secret,
            people=PEOPLE,
            channels=CHANNELS,
        ).install()
        self._write_terminal_env(settings, config_path, with_aws=moto_url is not None)
        # Serving starts last, so the page never answers before its routes exist.
        slack.start()
        if self._aws_thread is not None:
            self.workspace.note("aws", "AWS demo estate: being created…")
            # After the rest: seeding is CPU-bound and would slow the start-up it races.
            self._aws_thread.start()

    def stop(self) -> None:
        """Stop everything that was started, newest first."""
        self._stopping.set()
        while self._stoppers:
            stopper = self._stoppers.pop()
            started = time.monotonic()
            try:
                stopper()
            except Exception:
                log.warning("stopping a sandbox part failed", exc_info=True)
            log.debug("stopped %s in %.2f s", stopper, time.monotonic() - started)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- the parts -----------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        # Each start wipes the previous run's files: never those of a run still going.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = (self.data_dir / "lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise ConfigError(
                f"--data-dir {self.data_dir}: another agentbot dev is using it; "
                "stop that one or pass another --data-dir"
            ) from None
        self._stoppers.append(lock.close)

    def _fresh_data_dir(self) -> None:
        for name in FRESH:
            path = self.data_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _bind_slack(self, bot_token: str) -> FakeSlack:
        try:
            slack = FakeSlack(token=bot_token, host=self.options.host, port=self.options.port)
        except OSError as exc:
            raise ConfigError(
                f"--port {self.options.port}: cannot listen there ({exc.strerror}); "
                "pass another --port"
            ) from None
        self.slack = slack
        self._stoppers.append(slack.stop)
        return slack

    def _prepare_aws(self) -> str:
        """Point boto3 at the moto server that a background thread will start and seed.

        moto takes a second to import and several to seed; the workspace does not
        wait for either.
        """
        port = free_port(later=True)
        url = f"http://127.0.0.1:{port}"
        point_aws_at(url, self.data_dir / "aws")
        self._stoppers.append(self._stop_moto)
        self._aws_thread = threading.Thread(
            target=self._serve_aws, args=(port,), name="aws", daemon=True
        )
        return url

    def _serve_aws(self, port: int) -> None:
        started = time.monotonic()
        try:
            # moto's server runs in this process: this is its own setting, read on import.
            os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            from moto.server import ThreadedMotoServer

            from sandbox.demo_aws import seed_demo_estate

            if self._stopping.is_set():
                return
            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            self._moto.start()
            # moto keeps its accounts in the process, not the server: a sandbox started
            # again in the same process would find the last one's estate.
            reset = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
            with urllib.request.urlopen(reset, timeout=10):
                pass
            estate = seed_demo_estate(f"http://127.0.0.1:{port}")
        except Exception as exc:
            if not self._stopping.is_set():  # stopping mid-seed is no failure
                log.warning("the demo AWS estate failed", exc_info=True)
                self.aws_failure = str(exc)
                self.say(f"AWS demo estate could not be created: {exc}")
                self._note("aws", f"AWS demo estate failed: {exc}")
            return
        self.aws_summary = estate.summary()
        self.aws_ready.set()
        took = time.monotonic() - started
        self.say(f"AWS demo estate ready in {took:.1f} s: {self.aws_summary}")
        self._note("aws", f"AWS demo estate ready: {self.aws_summary}")
        if self._after_estate is not None and not self._stopping.is_set():
            self._after_estate()

    def aws_pending(self) -> str | None:
        """Why `/agent aws …` cannot answer yet, or None once the demo estate is ready.

        A report read from an estate half-created would show it empty ($0.00, a couple
        of resources), and the cost days it read would be stored as they were.
        """
        if self.aws_ready.is_set():
            return None
        if self.aws_failure is not None:
            return f":warning: The demo AWS estate could not be created ({self.aws_failure})."
        return (
            ":hourglass_flowing_sand: The demo AWS estate is still being created (it takes "
            "about ten seconds after start). Try again when the sidebar says it is ready."
        )

    def _note(self, key: str, text: str) -> None:
        if self.workspace is not None:
            self.workspace.note(key, text)

    def _stop_moto(self) -> None:
        if self._moto is not None:
            self._moto.stop()

    def _write_config(self, remote: Path, with_aws: bool) -> Path:
        agent_env = claude_agent_env() if self.agent_kind == "claude-code" else None
        data = dev_config(
            remote,
            self.data_dir / "workspaces",
            self.agent_kind,
            agent_env,
            sandboxed=self.options.sandboxed,
        )
        data = with_webhooks(data, self.webhook_secrets)
        if with_aws:
            data = with_demo_aws(data, timezone=self.options.digest_timezone)
        path = self.data_dir / "agentbot.toml"
        path.write_text(
            "# Written by `agentbot dev` at every start; edits are lost.\n" + to_toml(data),
            encoding="utf-8",
        )
        load_config_file(path)  # fail now, naming the key, rather than at the first task
        return path

    @property
    def terminal_env(self) -> Path:
        """The shell file that points a terminal at this sandbox (`. terminal.env`)."""
        return self.data_dir / "terminal.env"

    def _write_terminal_env(self, settings: Settings, config_path: Path, *, with_aws: bool) -> None:
        """Write what a terminal sources to reach this sandbox: the bot's URL as `$BOT`
        (for webhooks), and for the `agentbot aws …` twins its configuration, database
        and, with AWS, the demo estate's endpoint and credentials (the sandbox's own)."""
        values = {
            "BOT": self.bot_url,
            "AGENTBOT_CONFIG": str(config_path),
            "DATABASE_URL": settings.database_url,
        }
        # A Redis of the sandbox's own in each process; a real one is in the shell already.
        if settings.redis_url == "memory://":
            values["REDIS_URL"] = "memory://"
        if with_aws:
            values |= {name: os.environ[name] for name in AWS_TERMINAL_VARIABLES}
        lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
        self.terminal_env.write_text(
            "# Written by `agentbot dev` at every start: `. "
            + str(self.terminal_env)
            + "`\n"
            + "\n".join(lines)
            + "\n",
            encoding="utf-8",
        )

    def _settings(
        self, bot_token: str, signing_secret: str, slack: FakeSlack, config_path: Path
    ) -> Settings:
        # Only the process environment may choose a real Redis: a `.env` file is for the
        # production bot, whose queues the sandbox must never feed.
        environment = read_dev_environment()
        redis_url = "memory://"
        if environment.redis_url is not None:
            redis_url = environment.redis_url
            self.redis_label = redis_url
        # Every credential is the sandbox's own: nothing from the environment or a
        # `.env` file (a real Slack token, a GitHub token) can leak into the sandbox.
        return Settings(
            _env_file=None,
            AGENTBOT_ENV="local",
            SLACK_BOT_TOKEN=bot_token,
            SLACK_SIGNING_SECRET=signing_secret,
            SLACK_APP_TOKEN="",
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite:///{self.data_dir / 'agentbot.db'}",
            REDIS_URL=redis_url,
            GITHUB_TOKEN="",
            # Empty here, so the webhooks verify with the secrets in the sandbox's config.
            GITHUB_WEBHOOK_SECRET="",
            SENTRY_CLIENT_SECRET="",
            JIRA_WEBHOOK_SECRET="",
            AGENTBOT_CONFIG=str(config_path),
        )

    def _start_bot(self, settings: Settings, *, with_aws: bool) -> None:
        from bot.app import build_app
        from bot.runtime import job_context
        from bot.services import build_services
        from bot.web import WebApp
        from bot.webhooks import register as register_webhooks
        from jobs.aws.digest import register_digest
        from jobs.context import install
        from jobs.queues import ALL_QUEUES
        from jobs.schedule import build_scheduler
        from sandbox.inprocess import Clock, WorkerThread, WSGIThread, stop_workers

        # Built once: the web side, the workers and the scheduler share one Redis
        # connection, which for `memory://` is the one in-process server there is.
        services = build_services(settings)
        self._stoppers.append(services.db.dispose)
        if with_aws:
            services.aws_pending = self.aws_pending
        context = job_context(services)
        install(context)
        workers = [
            WorkerThread([services.queues.queue(name)], services.redis, name=f"worker-{name}")
            for name in ALL_QUEUES
        ]
        for worker in workers:
            worker.start()
        self._stoppers.append(lambda: stop_workers(workers))
        # The digest check runs at once when registered: not before the estate has costs,
        # or it would store the days it reads from an empty Cost Explorer as $0.
        cron = build_scheduler(services.redis, without_digest(services.config))
        clock = Clock(services.redis, ALL_QUEUES, cron)
        self._stoppers.append(clock.start().stop)
        if with_aws:

            def after_estate() -> None:
                self._post_first_digest(context)
                register_digest(cron, services.config)

            self._after_estate = after_estate
        web = WebApp(services, build_app(services))
        register_webhooks(web, services)
        try:
            server = WSGIThread(web, "127.0.0.1", self.options.bot_port)
        except OSError as exc:
            raise ConfigError(
                f"--bot-port {self.options.bot_port}: cannot listen there ({exc.strerror})"
            ) from None
        self._stoppers.append(server.start().stop)
        self._stoppers.append(_kill_agent_processes)
        self.bot_url = server.url

    def _post_first_digest(self, context: JobContext) -> None:
        """Post today's cost digest now rather than at the configured time.

        It is posted as the daily check would post it at today's posting time, so it
        covers the same UTC day and is recorded as today's: the check then finds it
        already posted, and the next one comes tomorrow. (Moving the posting time to
        midnight instead would, in zones ahead of UTC, cover the day before, and the
        check would post again at the real time.)
        """
        from jobs.aws.digest import run_digest

        config = context.config
        digest = config.cost.digest
        if digest.channel is None:
            return
        scheduled = first_digest_moment(config, dt.datetime.now(dt.UTC))
        try:
            outcome = run_digest(
                context.db,
                context.redis,
                context.notifier,
                config,
                context.aws_session,
                now=scheduled,
            )
        except Exception as exc:
            if not self._stopping.is_set():
                log.warning("the first cost digest failed", exc_info=True)
                self.say(f"The cost digest could not be posted: {exc}")
                self._note("digest", f"Cost digest failed: {exc}")
            return
        if outcome.posted is None:
            self.say(f"Cost digest: {outcome}")
            return
        self.digest_posted.set()
        daily = f"{digest.time:%H:%M} {digest.timezone}"
        self.say(f"Cost digest posted in #{COSTS_CHANNEL.name}; then daily at {daily}")
        self._note(
            "digest",
            f"Cost digest posted in #{COSTS_CHANNEL.name}, with its chart; then daily at {daily}",
        )

    # -- what the person at the terminal reads ---------------------------------------------

    def banner(self, seconds: float) -> str:
        """The start-up message: where everything is and what to try."""
        agent = {
            "scripted": "scripted agent (follows .agentbot/script.json in the sample repo)",
            "claude-code": "Claude Code",
        }[self.agent_kind]
        aws = "off (--no-aws)"
        if self.options.aws:
            state = (
                f"demo estate ready: {self.aws_summary}"
                if self.aws_summary
                else "demo estate being created (AWS commands wait for it)…"
            )
            aws = os.environ.get("AWS_ENDPOINT_URL", "") + f" (moto), {state}"
        rows = [
            ("Slack workspace", f"{self.url}   <- open this"),
            ("Bot", f"{self.bot_url}/slack/events (signed requests, as from Slack)"),
            ("Database", f"SQLite {self._here(self.data_dir / 'agentbot.db')}"),
            ("Redis", self.redis_label),
            ("Agent", agent),
            ("Agent sandbox", self._sandbox_line()),
            ("Sample repo", f"{SAMPLE_REPO} -> {self._here(self.data_dir / 'remote')}"),
            ("AWS", aws),
            (
                "Webhooks",
                f"{self.bot_url}/webhooks/{'|'.join(WEBHOOK_SOURCES)} "
                f"(secrets under [webhooks] in {self._here(self.data_dir / 'agentbot.toml')})",
            ),
            (
                "Terminal",
                f". {self._here(self.terminal_env)}   then $BOT is the bot"
                + (
                    ", and `uv run agentbot aws status` reads the demo estate"
                    if self.options.aws
                    else ""
                ),
            ),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"Agentbot sandbox ready in {seconds:.1f} s", ""]
        lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
        lines += [
            "",
            f"You are {REQUESTER.name} ({REQUESTER.title}); switch to {APPROVER.name} "
            "in the page to approve plans.",
            "Try: /agent run fix the discount calculation",
            "Press Ctrl-C to stop.",
        ]
        if self.options.host not in ("127.0.0.1", "localhost", "::1"):
            lines.append(
                f"Warning: the page listens on {self.options.host}; anyone who can reach it "
                "can approve tasks, and approved tasks run code on this machine."
            )
        return "\n".join(lines)

    def _sandbox_line(self) -> str:
        if not self.options.sandboxed:
            return "off (--unsandboxed): the agent and the tests run as you, cards say so"
        if self.sandbox_problem is None:
            return "bubblewrap: the agent and the tests see only the task's worktree"
        reason = self.sandbox_problem.split(". ", 1)[0].removeprefix("The sandbox could not start")
        return (
            f"UNAVAILABLE{reason}. Every task fails until `apt-get install bubblewrap "
            "socat` (Debian, Ubuntu), or start again with --unsandboxed"
        )

    @staticmethod
    def _here(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


# -- configuration -------------------------------------------------------------------------


def dev_config(
    remote: Path,
    workspaces: Path,
    agent_kind: str,
    agent_env: dict[str, str] | None = None,
    *,
    sandboxed: bool = True,
) -> dict[str, Any]:
    """The sandbox's AGENTBOT_CONFIG, as data: one repo, Ada requests, Grace approves.

    Args:
        remote: The sample repository's bare remote.
        workspaces: Where task worktrees (and the agent's private HOME) go.
        agent_kind: `scripted` or `claude-code`.
        agent_env: Variables set for the agent CLI (`[agent] env`), if any.
        sandboxed: False for `[agent] sandbox = "off"`.
    """
    agent: dict[str, Any] = {"kind": agent_kind, "workspace_dir": str(workspaces)}
    if not sandboxed:
        agent["sandbox"] = "off"
    if agent_env:
        agent["env"] = dict(agent_env)
    return {
        "repos": [
            {
                "name": SAMPLE_REPO,
                "git_url": str(remote),
                "default_branch": "main",
                "test_command": TEST_COMMAND,
                "channel": DEV_CHANNEL.id,
            }
        ],
        "access": {
            "requesters": ["*"],
            "approvers": [APPROVER.id],
            "approvals_required": 1,
            "allow_self_approval": False,
        },
        "slack": {"notification_channel": DEV_CHANNEL.id},
        "agent": agent,
        # A failure should show at once in the sandbox, not after backed-off retries.
        "jobs": {"max_retries": 0},
    }


def with_webhooks(data: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """Open the GitHub, Sentry and Jira webhooks onto the sample repo.

    Args:
        data: The configuration so far.
        keys: Source name (github, sentry, jira) -> the secret its deliveries are signed with.
    """
    webhooks = {
        "github": {"secret": keys["github"], "repos": [SAMPLE_REPO]},
        "sentry": {"secret": keys["sentry"], "projects": {SENTRY_PROJECT: SAMPLE_REPO}},
        "jira": {"secret": keys["jira"], "projects": {JIRA_PROJECT: SAMPLE_REPO}},
        # So `/agent approve` commented on an issue by "grace" is Grace's approval.
        "github_users": {p.name.lower(): p.id for p in PEOPLE},
    }
    return {**data, "webhooks": webhooks}


def with_demo_aws(data: dict[str, Any], timezone: str = "UTC") -> dict[str, Any]:
    """Add the demo estate's accounts and regions, and the digest in #aws-costs.

    Args:
        data: The configuration so far.
        timezone: The IANA zone of the digest's daily 09:00.

    Raises:
        ConfigError: This build's `[aws]` or `[cost]` table does not accept them.
    """
    from sandbox.demo_aws import PROD_ACCOUNT_ID, REGIONS, STAGING_ROLE_ARN

    aws = {
        "accounts": [
            {"name": "prod", "account_id": PROD_ACCOUNT_ID},
            {"name": "staging", "role_arn": STAGING_ROLE_ARN},
        ],
        "regions": list(REGIONS),
    }
    cost = {"digest": {"channel": COSTS_CHANNEL.id, "time": "09:00", "timezone": timezone}}
    candidate = {**data, "aws": aws, "cost": cost}
    try:
        AgentbotConfig.model_validate(candidate)
    except ValueError as exc:
        raise ConfigError(
            f"the demo AWS estate does not fit this build's configuration: {exc}"
        ) from None
    return candidate


def first_digest_moment(config: AgentbotConfig, now: dt.datetime) -> dt.datetime:
    """When the daily check would post today's digest: now, or today's posting time
    in the digest's zone if that is still to come.

    A digest run "at" that moment covers the same UTC day as the daily one and is
    recorded as today's, whatever the zone's offset from UTC.

    Args:
        config: The configuration, whose `[cost.digest]` names the time and zone.
        now: The current moment (timezone-aware).
    """
    digest = config.cost.digest
    today = now.astimezone(digest.zone).date()
    return max(now, dt.datetime.combine(today, digest.time, tzinfo=digest.zone))


def without_digest(config: AgentbotConfig) -> AgentbotConfig:
    """The configuration with no digest channel, for a scheduler that must not post yet."""
    digest = config.cost.digest.model_copy(update={"channel": None})
    return config.model_copy(update={"cost": config.cost.model_copy(update={"digest": digest})})


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Render nested dicts of strings, numbers, booleans and lists as TOML."""
    scalars: list[str] = []
    tables: list[str] = []
    arrays: list[str] = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            tables.append(f"\n[{name}]\n" + to_toml(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.extend(f"\n[[{name}]]\n" + to_toml(item, name) for item in value)
        else:
            scalars.append(f"{key} = {_toml_value(value)}\n")
    return "".join(scalars) + "".join(tables) + "".join(arrays)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def choose_agent(requested: str) -> str:
    """Which agent kind to run: `auto` takes Claude Code only when it can work here.

    Raises:
        ConfigError: Claude Code was asked for but cannot run.
    """
    if requested == "scripted":
        return "scripted"
    reason = claude_code_unavailable()
    if requested == "claude-code" and reason:
        raise ConfigError(f"--agent claude-code: {reason}")
    return "scripted" if reason else "claude-code"


def claude_code_unavailable() -> str | None:
    """Why Claude Code cannot run the sandbox's tasks, or None when it can."""
    from agents.config import AgentConfig
    from bot.runtime import agent_factory

    if shutil.which("claude") is None:
        return (
            "the `claude` command is not installed; install Claude Code with "
            f"`{CLAUDE_CODE_INSTALL}` and sign in by running `claude` once, or use "
            "--agent scripted"
        )
    try:
        agent_factory(AgentConfig(kind="claude-code"))
    except Exception as exc:  # whatever this build lacks, the sandbox falls back
        return f"this build cannot run it ({exc})"
    if not _claude_signed_in():
        return "Claude Code is not signed in (run `claude` once, or set ANTHROPIC_API_KEY)"
    return None


# What signs the CLI in without a stored login; either reaches the agent as it is.
SIGN_IN_VARIABLES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")


def _claude_signed_in() -> bool:
    from agents.env import child_environment

    # What the agent's own process would see: an API key, or a stored login.
    env = child_environment(allow=SIGN_IN_VARIABLES)
    return any(env.get(name) for name in SIGN_IN_VARIABLES) or claude_login_dir() is not None


def claude_login_dir() -> Path | None:
    """The directory of this user's stored Claude Code login, if there is one.

    Claude Code keeps it in `CLAUDE_CONFIG_DIR` when that is set, else in `~/.claude`
    (the `.credentials.json` file there).
    """
    from agents.env import child_environment

    env = child_environment(allow=("CLAUDE_CONFIG_DIR",))
    config_dir = env.get("CLAUDE_CONFIG_DIR")
    directory = Path(config_dir) if config_dir else Path(env.get("HOME") or Path.home()) / ".claude"
    return directory.resolve() if (directory / ".credentials.json").is_file() else None


def claude_agent_env() -> dict[str, str]:
    """What the sandbox sets for Claude Code so that it runs signed in.

    The agent runs with a private HOME under the workspace directory, where no login
    is stored. When no API key or token signs it in, `CLAUDE_CONFIG_DIR` points it at
    the stored login of the person running the sandbox (their own machine and account).
    """
    from agents.env import child_environment

    env = child_environment(allow=SIGN_IN_VARIABLES)
    if any(env.get(name) for name in SIGN_IN_VARIABLES):
        return {}
    login = claude_login_dir()
    return {"CLAUDE_CONFIG_DIR": str(login)} if login is not None else {}


# Below Linux's default ephemeral range (32768-60999), where the kernel picks the ports
# of outgoing connections and of every bind to port 0 on the machine.
UNEPHEMERAL_PORTS = range(20000, 32768)


def free_port(*, later: bool = False) -> int:
    """A loopback port nobody listens on right now.

    Args:
        later: The server binds it only seconds from now (moto, after its import), so
            take it from outside the ephemeral range: in the meantime, the kernel could
            hand an ephemeral port to any other connection or server on the machine.
    """
    candidates = [secrets.choice(UNEPHEMERAL_PORTS) for _ in range(50)] if later else [0]
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    return free_port()


def point_aws_at(endpoint_url: str, config_dir: Path) -> None:
    """Make boto3's standard chain in this process reach the demo estate, and only it.

    The AWS variables are boto3's own configuration, so they are set for the process;
    the real `~/.aws` files and profiles are hidden from it.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(config_dir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(config_dir / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


def _kill_agent_processes() -> None:
    from agents.processes import kill_children_of

    # Jobs run in this process, so their agent and test process groups are ours.
    kill_children_of(os.getpid())


def _log_level() -> str:
    return read_dev_environment().log_level or "WARNING"


def run_dev(options: DevOptions, say: Callable[[str], None] = tell) -> int:
    """Start the sandbox, print where it is, and run until Ctrl-C (or SIGTERM).

    Returns:
        The exit status.

    Raises:
        ConfigError: A bad option (a taken port, an unavailable agent).
    """
    if options.agent not in AGENT_CHOICES:
        raise ConfigError(f"--agent must be one of {', '.join(AGENT_CHOICES)}")
    from bot.logging import configure

    # The console format rather than JSON lines: a person is reading this terminal.
    configure(_log_level(), json=False)
    started = time.monotonic()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    sandbox = Sandbox(options, say)
    try:
        sandbox.start()
        # From here Ctrl-C stops the sandbox like SIGTERM does, even where a shell
        # started it in the background with SIGINT ignored.
        signal.signal(signal.SIGINT, on_signal)
        say(sandbox.banner(time.monotonic() - started))
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    say("Agentbot sandbox stopped.")
    # Everything has stopped; what is left is moto's in-memory AWS and the SDKs' models.
    # Spare the interpreter's final garbage collection a walk through all of them.
    gc.freeze()
    return 0
