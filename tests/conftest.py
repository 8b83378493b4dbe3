"""Shared fixtures: real PostgreSQL and Redis, a fake Slack on loopback, a sample repo."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import psycopg
import pytest
from redis import Redis
from sqlalchemy import text

from agents.config import AgentConfig
from bot.app import build_app
from bot.runtime import job_context
from bot.services import Services, build_services
from bot.settings import Settings
from jobs.config import AccessConfig, AgentbotConfig, JobConfig, RepoConfig
from jobs.context import install
from jobs.db import migrate
from sandbox.fakeslack import FakeSlack
from sandbox.sample import make_sample_repo
from tests.fakes.github_server import FakeGitHub
from tests.services import RedisServer
from tests.slackclient import SlackUser

# Property tests check what a function does with any input, not how fast: on a shared,
# noisy machine a per-example deadline fails tests that nothing is wrong with.
hypothesis.settings.register_profile("agentbot", deadline=None)
hypothesis.settings.load_profile("agentbot")

POSTGRES_ADMIN_URL = os.environ.get(
    "AGENTBOT_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# One database and one Redis server per test session, so parallel runs never collide.
TEST_DB = f"agentbot_test_{os.getpid()}"
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"

REQUESTER = "UREQUESTER"
APPROVER = "UAPPROVER"
APPROVER_2 = "UAPPROVER2"
STRANGER = "USTRANGER"
CHANNEL = "CDEV"

# The test command sets this so that a test which cannot run (no npm, no Chromium) fails
# the build instead of passing it quietly as a skip.
REQUIRE_ALL = os.environ.get("AGENTBOT_REQUIRE_ALL") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under AGENTBOT_REQUIRE_ALL=1, report a skipped test as a failure, with its reason."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but the test command requires every test to run: {reason}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A PostgreSQL database for this test run, migrated to head, dropped afterwards."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {TEST_DB}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{TEST_DB}"
    migrate(url)
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server of this test session's own, on a free loopback port."""
    explicit = os.environ.get("AGENTBOT_TEST_REDIS_URL")
    if explicit:
        yield RedisServer(url=explicit, process=None)
        return
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's Redis."""
    return redis_server.url


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    """One fake Slack server for the session, emptied before each test."""
    with FakeSlack(token=BOT_TOKEN, groups={"SAPPROVERS": [APPROVER_2]}) as fake:
        yield fake


@pytest.fixture
def slack(fake_slack: FakeSlack) -> FakeSlack:
    """The fake Slack, empty."""
    fake_slack.reset()
    return fake_slack


@pytest.fixture(scope="session")
def fake_github() -> Iterator[FakeGitHub]:
    """One fake GitHub API on loopback for the session."""
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def github(fake_github: FakeGitHub) -> FakeGitHub:
    """The fake GitHub, with no pull requests, comments or calls yet."""
    fake_github.pulls.clear()
    fake_github.comments.clear()
    fake_github.calls.clear()
    return fake_github


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    """The real Redis, flushed."""
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    """A bare git repo with a real bug, a passing suite and a scripted-agent script."""
    return make_sample_repo(tmp_path / "remote")


@pytest.fixture
def config(sample_repo: Path, tmp_path: Path) -> AgentbotConfig:
    """A configuration with one repo, one approver and no retries."""
    return AgentbotConfig(
        repos=(
            RepoConfig(
                name="acme/calc",
                git_url=str(sample_repo),
                default_branch="main",
                test_command="python -m pytest -q",
            ),
        ),
        access=AccessConfig(
            requesters=(REQUESTER, APPROVER, APPROVER_2, "SAPPROVERS"),
            approvers=(APPROVER, "SAPPROVERS"),
        ),
        agent=AgentConfig(workspace_dir=str(tmp_path / "workspaces")),
        jobs=JobConfig(max_retries=0),
    )


@pytest.fixture
def settings(database_url: str, redis_url: str, slack: FakeSlack) -> Settings:
    """Settings pointing at the test services, with no environment or .env involved."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
    )


@pytest.fixture
def services(settings: Settings, config: AgentbotConfig, redis_client: Redis) -> Iterator[Services]:
    """Wired services on clean tables, with the job context installed for workers."""
    built = build_services(settings.with_config(config))
    with built.db.engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE tasks, task_events, approvals, slack_deliveries RESTART IDENTITY CASCADE"
            )
        )
    install(job_context(built))
    yield built
    built.db.dispose()
    built.redis.close()


@pytest.fixture
def user(services: Services, slack: FakeSlack) -> SlackUser:
    """Sends signed Slack requests to a real Bolt app, as REQUESTER by default."""
    return SlackUser(build_app(services), SIGNING_SECRET, slack, services)


def git(*args: str, cwd: Path) -> str:
    """Run git and return stdout (test helper)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout
