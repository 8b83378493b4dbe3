"""Workers on ECS protect their task from scale-in while a job runs, and only then."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import JobStatus

from bot.services import Services
from jobs.ecs_protection import MAX_MINUTES, TaskProtection, protection_minutes
from jobs.worker import AgentbotWorker
from tests.fakes.ecs_agent import STATE_PATH, FakeEcsAgent
from tests.worker_process import run_burst_worker

ENABLE_FOR_AN_HOUR_JOB = {"ProtectionEnabled": True, "ExpiresInMinutes": 65}
RELEASE = {"ProtectionEnabled": False}


def protected_while_running(agent_uri: str) -> bool:
    """Job: what the ECS agent says about the task's protection while the job runs."""
    with urllib.request.urlopen(agent_uri + STATE_PATH, timeout=5) as response:
        return bool(json.load(response)["protection"]["ProtectionEnabled"])


def add(a: int, b: int) -> int:
    """Job: a job that succeeds."""
    return a + b


def die_abruptly() -> None:
    """Job: the horse is killed mid-job, as by the kernel's OOM killer."""
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture
def ecs_agent() -> Iterator[FakeEcsAgent]:
    agent = FakeEcsAgent()
    yield agent
    agent.close()


def run_one(services: Services, protection: TaskProtection, func: str, *args: object, **kw: int):
    """Queue one job and run a real forking burst worker until the queue is empty."""
    queue = Queue("default", connection=services.redis)
    job = queue.enqueue(f"{__name__}.{func}", *args, **kw)
    worker = AgentbotWorker([queue], connection=services.redis, task_protection=protection)
    worker.work(burst=True, logging_level="WARNING")
    job.refresh()
    return job


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_task_is_protected_for_the_jobs_timeout_while_it_runs_and_released_after(
    services: Services, ecs_agent: FakeEcsAgent
):
    """On ECS: protection (timeout + margin) before the job runs, released after."""
    protection = TaskProtection(ecs_agent.uri)

    job = run_one(services, protection, "protected_while_running", ecs_agent.uri, job_timeout=3600)

    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() is True
    assert ecs_agent.bodies == [ENABLE_FOR_AN_HOUR_JOB, RELEASE]
    assert {r["content_type"] for r in ecs_agent.requests} == {"application/json"}
    assert ecs_agent.protected is False


def test_protection_is_released_after_a_horse_killed_mid_job(
    services: Services, ecs_agent: FakeEcsAgent
):
    """A job whose process dies still leaves the task unprotected once the worker is idle."""
    job = run_one(services, TaskProtection(ecs_agent.uri), "die_abruptly", job_timeout=600)

    assert job.get_status() == JobStatus.FAILED
    assert ecs_agent.bodies == [{"ProtectionEnabled": True, "ExpiresInMinutes": 15}, RELEASE]
    assert ecs_agent.protected is False


def test_every_job_is_protected_on_its_own(services: Services, ecs_agent: FakeEcsAgent):
    """Two jobs: each gets its own protection for its own timeout, and each is released."""
    queue = Queue("default", connection=services.redis)
    queue.enqueue(f"{__name__}.add", 1, 2, job_timeout=60)
    queue.enqueue(f"{__name__}.add", 3, 4, job_timeout=-1)
    worker = AgentbotWorker(
        [queue], connection=services.redis, task_protection=TaskProtection(ecs_agent.uri)
    )
    worker.work(burst=True, logging_level="WARNING")

    assert ecs_agent.bodies == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 6},
        RELEASE,
        {"ProtectionEnabled": True, "ExpiresInMinutes": MAX_MINUTES},
        RELEASE,
    ]


def test_unreachable_agent_is_a_warning_and_the_job_still_succeeds(
    services: Services, caplog: pytest.LogCaptureFixture
):
    """No answer from ECS_AGENT_URI: one warning per attempt, and the job's result stands."""
    unreachable = TaskProtection(f"http://127.0.0.1:{closed_port()}/api/task")
    with caplog.at_level(logging.WARNING, logger="jobs.ecs_protection"):
        job = run_one(services, unreachable, "add", 2, 3)

    assert job.get_status() == JobStatus.FINISHED and job.return_value() == 5
    warnings = [r.getMessage() for r in caplog.records if r.name == "jobs.ecs_protection"]
    assert [w.split(":")[0] for w in warnings] == [
        "could not enable task scale-in protection",
        "could not release task scale-in protection",
    ]
    assert all("refused" in w.lower() for w in warnings), warnings


def test_refusal_from_ecs_is_a_warning_naming_the_reason(
    services: Services, ecs_agent: FakeEcsAgent, caplog: pytest.LogCaptureFixture
):
    """ECS refusing (a task outside a service) is logged with its reason; the job runs."""
    ecs_agent.refuse_with = "TASK_NOT_VALID"
    with caplog.at_level(logging.WARNING, logger="jobs.ecs_protection"):
        job = run_one(services, TaskProtection(ecs_agent.uri), "add", 2, 3)

    assert job.get_status() == JobStatus.FINISHED and job.return_value() == 5
    assert "could not enable task scale-in protection: TASK_NOT_VALID" in caplog.messages


@pytest.mark.parametrize("agent_uri", [None, ""])
def test_without_ecs_agent_uri_nothing_is_sent(
    services: Services,
    ecs_agent: FakeEcsAgent,
    caplog: pytest.LogCaptureFixture,
    agent_uri: str | None,
):
    """Outside ECS (ECS_AGENT_URI unset or empty) jobs run without any protection calls."""
    protection = TaskProtection(agent_uri)
    with caplog.at_level(logging.DEBUG, logger="jobs.ecs_protection"):
        job = run_one(services, protection, "protected_while_running", ecs_agent.uri)

    assert job.get_status() == JobStatus.FINISHED and job.return_value() is False
    assert ecs_agent.requests == []
    assert not protection.active
    assert [r for r in caplog.records if r.name == "jobs.ecs_protection"] == []


def test_a_worker_built_without_protection_sends_nothing(
    services: Services, ecs_agent: FakeEcsAgent
):
    """`AgentbotWorker` without `task_protection` (as tests and non-ECS hosts build it)."""
    queue = Queue("default", connection=services.redis)
    job = queue.enqueue(f"{__name__}.protected_while_running", ecs_agent.uri)
    AgentbotWorker([queue], connection=services.redis).work(burst=True, logging_level="WARNING")

    job.refresh()
    assert job.return_value() is False and ecs_agent.requests == []


def test_protection_lasts_the_timeout_plus_a_margin_within_ecs_bounds():
    """Minutes cover the job's timeout and RQ's kill after it, within ECS's 1..2880."""
    assert protection_minutes(3600) == 65
    assert protection_minutes(60) == 6
    assert protection_minutes(None) == 8  # RQ's default timeout, 180 s
    assert protection_minutes(-1) == MAX_MINUTES  # no timeout at all
    assert protection_minutes(10**7) == MAX_MINUTES


def test_requested_minutes_are_clamped_to_what_ecs_accepts(ecs_agent: FakeEcsAgent):
    """A request ECS would reject for its length is sent within 1..2880 minutes instead."""
    protection = TaskProtection(ecs_agent.uri + "/")
    assert protection.protect(100_000) is True
    assert protection.protect(0) is True
    assert ecs_agent.bodies == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": MAX_MINUTES},
        {"ProtectionEnabled": True, "ExpiresInMinutes": 1},
    ]
    assert ecs_agent.protected is True
    assert protection.release() is True and ecs_agent.protected is False


def test_agentbot_worker_reads_ecs_agent_uri_from_its_environment(
    tmp_path: Path, redis_url: str, database_url: str, ecs_agent: FakeEcsAgent
):
    """`agentbot worker` on ECS: the agent URI ECS injects is the one protected and released."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    job = Queue("default", connection=redis).enqueue(
        f"{__name__}.protected_while_running", ecs_agent.uri, job_timeout=1800
    )
    run = run_burst_worker(
        tmp_path, redis_url, database_url, extra_env={"ECS_AGENT_URI": ecs_agent.uri}
    )
    assert run.returncode == 0, run.stderr
    job.refresh()
    assert job.return_value() is True, run.stderr
    assert ecs_agent.bodies == [{"ProtectionEnabled": True, "ExpiresInMinutes": 35}, RELEASE]
    redis.flushdb()
    redis.close()
