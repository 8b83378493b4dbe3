"""Failure tests: the database going away mid-burst, floods of re-deliveries, racing approvals."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy import func, select

from bot import blocks
from bot.app import build_app
from bot.runtime import job_context
from bot.services import Services, build_services
from bot.settings import Settings
from jobs.config import AccessConfig, AgentbotConfig
from jobs.context import install
from jobs.db import migrate
from jobs.models import Task, TaskEvent
from sandbox.fakeslack import FakeSlack
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.services import PostgresServer
from tests.slackclient import SlackUser, texts


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer.create()
    migrate(server.url)
    yield server
    server.destroy()


@pytest.fixture
def fragile_user(
    private_postgres: PostgresServer,
    redis_url: str,
    redis_client: Redis,
    slack: FakeSlack,
    config: AgentbotConfig,
) -> Iterator[SlackUser]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=private_postgres.url,
        REDIS_URL=redis_url,
    )
    services = build_services(settings, config)
    install(job_context(services))
    yield SlackUser(build_app(services), SIGNING_SECRET, slack, services)
    services.db.dispose()


def count(services: Services, model: type, *where: object) -> int:
    with services.db.session() as session:
        statement = select(func.count()).select_from(model)
        for clause in where:
            statement = statement.where(clause)  # type: ignore[arg-type]
        return int(session.execute(statement).scalar_one())


def test_postgres_restart_during_a_burst_fails_cleanly_and_recovers(
    fragile_user: SlackUser, private_postgres: PostgresServer
) -> None:
    """While the database is down users are told to try again, fast; afterwards all works."""
    user = fragile_user
    replies: list[tuple[str, float]] = []
    for n in range(30):
        if n == 10:
            private_postgres.stop()
        if n == 20:
            private_postgres.start()
        started = time.monotonic()
        response = user.command(f"run fix the discount calculation, request {n}")
        replies.append((user.reply_text(response), time.monotonic() - started))
        assert response.status == 200
    queued = [text for text, _ in replies if "queued" in text]
    retry = [text for text, _ in replies if "try again" in text]
    assert len(queued) == 20 and len(retry) == 10
    assert all("Traceback" not in text and "psycopg" not in text for text, _ in replies)
    assert max(seconds for _, seconds in replies) < 3  # inside Slack's ack deadline
    # No restart of the bot: the same app and pool go on working.
    assert count(user.services, Task) == 20
    user.work("default", "plan")
    assert count(user.services, Task, Task.state == "awaiting_approval") == 20


def test_a_thousand_redeliveries_make_one_task_and_one_job(user: SlackUser) -> None:
    """Slack re-delivering one command 1,000 times yields exactly one task and one job."""
    body = user.command_body("run fix the discount calculation", trigger_id="trig-storm")
    first = user.deliver(body)
    assert "T-1 queued" in user.reply_text(first)
    for attempt in range(1, 1000):
        retry = str(min(attempt, 3))
        response = user.deliver(body, headers={"X-Slack-Retry-Num": retry})
        assert response.status == 200
    assert count(user.services, Task) == 1
    assert user.services.queues.lengths()["plan"] == 1


def test_fifty_racing_approvals_execute_exactly_once(user: SlackUser, slack: FakeSlack) -> None:
    """Fifty approvers clicking Approve at once: one transition, one execution, one PR commit."""
    approvers = tuple(f"UAPP{n:02d}" for n in range(50))
    config = user.services.config.model_copy(
        update={"access": AccessConfig(requesters=("*",), approvers=approvers)}
    )
    user.services.config = user.services.lifecycle.config = config
    user.services.access.config = config.access
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    plan = next(m for m in user.thread() if "Plan for T-1" in texts(m))
    barrier = threading.Barrier(len(approvers))

    def click(who: str) -> None:
        barrier.wait()
        user.click(plan, blocks.APPROVE, who)

    threads = [threading.Thread(target=click, args=(who,)) for who in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert count(user.services, TaskEvent, TaskEvent.to_state == "approved") == 1
    assert user.services.queues.lengths()["execute"] == 1
    user.work("default", "execute")
    assert count(user.services, TaskEvent, TaskEvent.to_state == "executing") == 1
    assert count(user.services, Task, Task.state == "succeeded") == 1
    told = [t for who in approvers for t in user.ephemeral_texts(who)]
    assert len(told) == 49 and all("approved" in t or "decided" in t for t in told)
