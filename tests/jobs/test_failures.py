"""Failure tests: the database going away mid-burst, floods of re-deliveries, racing approvals."""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select

from bot import blocks
from bot.app import build_app
from bot.runtime import job_context
from bot.services import Services, build_services
from bot.settings import Settings
from jobs.config import AccessConfig, AgentbotConfig, LimitsConfig
from jobs.context import install
from jobs.db import migrate
from jobs.exceptions import UNAVAILABLE
from jobs.models import Task, TaskEvent
from sandbox.fakeslack import FakeSlack
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.services import PostgresServer
from tests.slackclient import SlackUser, texts

# What must never reach Slack: a stack trace, or the database's own words.
LEAKS = ("Traceback", "psycopg", "OperationalError", "sqlalchemy", "connection refused")


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
    # One requester sends the whole burst: its size is the point, so no limit stops it.
    roomy = LimitsConfig(open_tasks_per_requester=100_000, open_tasks_total=100_000)
    services = build_services(settings.with_config(config.model_copy(update={"limits": roomy})))
    install(job_context(services))
    yield SlackUser(build_app(services), SIGNING_SECRET, slack, services)
    services.db.dispose()


def count(services: Services, model: type, *where: object) -> int:
    with services.db.session() as session:
        statement = select(func.count()).select_from(model)
        for clause in where:
            statement = statement.where(clause)  # type: ignore[arg-type]
        return int(session.execute(statement).scalar_one())


@dataclass
class Sent:
    """One `/agent run` of the burst: when it started and what Slack got back."""

    n: int
    phase: str
    status: int
    body: dict[str, Any]

    @property
    def queued(self) -> bool:
        return QUEUED.search(str(self.body.get("text", ""))) is not None


QUEUED = re.compile(r"T-\d+ queued")


class Burst:
    """Threads sending signed `/agent run` commands until told to stop."""

    def __init__(self, user: SlackUser, threads: int = 6) -> None:
        self.user = user
        self.phase = "up"
        self.sent: list[Sent] = []
        self.changed = threading.Condition()
        self.numbers = itertools.count()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._send) for _ in range(threads)]

    def _send(self) -> None:
        while not self.done.is_set():
            n, phase = next(self.numbers), self.phase
            response = self.user.command(f"run fix the discount calculation, request {n}")
            body = json.loads(response.body) if response.body else {}
            with self.changed:
                self.sent.append(Sent(n, phase, response.status, body))
                self.changed.notify_all()
            # Paced, so a few seconds of downtime is dozens of requests, not thousands.
            self.done.wait(0.02)

    def wait_for(self, what: Callable[[list[Sent]], bool]) -> None:
        """Block until `what` holds for the requests answered so far."""
        with self.changed:
            assert self.changed.wait_for(lambda: what(self.sent), timeout=120), "burst stalled"

    def __enter__(self) -> Burst:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_postgres_restart_during_a_burst_fails_cleanly_and_recovers(
    fragile_user: SlackUser, private_postgres: PostgresServer
) -> None:
    """Commands racing a PostgreSQL stop and start: each gets "try again" or exactly one task."""
    user = fragile_user
    with Burst(user) as burst:
        burst.wait_for(lambda sent: sum(s.queued for s in sent) >= 10)
        private_postgres.stop()  # mid-burst: requests are in flight
        burst.phase = "down"
        burst.wait_for(lambda sent: sum(s.phase == "down" and not s.queued for s in sent) >= 8)
        private_postgres.start()
        burst.phase = "up again"
        # The same app and pool, no restart: it serves again.
        burst.wait_for(lambda sent: sum(s.phase == "up again" and s.queued for s in sent) >= 8)
    sent = burst.sent

    succeeded = [s for s in sent if s.queued]
    failed = [s for s in sent if not s.queued]
    assert all(s.status == 200 for s in sent)
    for s in sent:
        assert s.body.get("response_type") == "ephemeral", s.body
        assert not any(leak in json.dumps(s.body) for leak in LEAKS), s.body
    # Everything that did not get a task got the short "try again", in the acknowledgement
    # itself, so Slack shows it rather than its own timeout error.
    assert {s.body["text"] for s in failed} == {UNAVAILABLE}
    assert all(s.queued for s in sent if s.phase == "up again")

    # Nothing lost, nothing doubled: one task (and one plan job) per success, none else.
    with user.services.db.session() as session:
        descriptions = list(session.execute(select(Task.description)).scalars())
    numbers = [int(d.rsplit(" ", 1)[1]) for d in descriptions]
    assert sorted(numbers) == sorted(s.n for s in succeeded)
    assert user.services.queues.lengths()["plan"] == len(succeeded)
    # Workers, connecting afresh, plan them all against the restarted database.
    user.work("default", "plan")
    assert count(user.services, Task, Task.state == "awaiting_approval") == len(succeeded)


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A URL whose server accepts TCP connections and then never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    yield f"postgresql://agentbot@127.0.0.1:{port}/agentbot"
    listener.close()


def test_a_database_that_never_answers_is_given_up_on(
    silent_database: str,
    redis_url: str,
    redis_client: Redis,
    slack: FakeSlack,
    config: AgentbotConfig,
) -> None:
    """A hung database (a black-holed network, a frozen server) ends in "try again", not a hang."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=silent_database,
        REDIS_URL=redis_url,
    )
    services = build_services(settings.with_config(config))
    try:
        user = SlackUser(build_app(services), SIGNING_SECRET, slack, services)
        response = user.command("run fix the discount calculation")
        assert response.status == 200
        assert json.loads(response.body) == {"response_type": "ephemeral", "text": UNAVAILABLE}
        assert services.queues.lengths()["plan"] == 0
    finally:
        services.db.dispose()


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
