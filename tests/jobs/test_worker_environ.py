"""The worker's environment (Slack token, database URL) is closed to the agents it runs."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from rq import Queue

from jobs.worker import PR_GET_DUMPABLE, PR_SET_DUMPABLE, deny_same_user_inspection
from tests.worker_process import run_burst_worker

LIBC = ctypes.CDLL(None, use_errno=True)
# What an agent's process reports: run by exec, as the agent CLI and test commands are.
EXEC_PROBE = "import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"
NOBODY = 65534


def dumpable() -> int:
    """This process's dumpable flag."""
    return int(LIBC.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def report_dumpable() -> dict[str, int]:
    """Job: the work horse's dumpable flag, and that of a program it starts by exec."""
    child = subprocess.run(
        [sys.executable, "-c", EXEC_PROBE], capture_output=True, text=True, check=True
    )
    return {"horse": dumpable(), "exec": int(child.stdout)}


def test_agentbot_worker_horses_are_not_dumpable_but_what_they_exec_is(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    """`agentbot worker` runs jobs non-dumpable; a program a job execs is dumpable again."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    job = Queue("default", connection=redis).enqueue(f"{__name__}.report_dumpable")
    run = run_burst_worker(tmp_path, redis_url, database_url)
    assert run.returncode == 0, run.stderr
    job.refresh()
    assert job.return_value() == {"horse": 0, "exec": 1}, run.stderr
    redis.flushdb()
    redis.close()


def test_same_user_reads_the_environment_only_until_the_worker_closes_it() -> None:
    """A process of the worker's own (non-root) user reads its environ only while dumpable."""
    assert environ_readable_by_same_user(None) is True
    assert environ_readable_by_same_user(deny_same_user_inspection) is False


def environ_readable_by_same_user(protect: Callable[[], bool] | None) -> bool:
    """Whether a sibling process of the same user can read a target's /proc environ.

    Both run as an unprivileged user (root reads everything, so a root test run drops
    to `nobody` in the forked children). The target starts dumpable, as a freshly
    started worker is, then runs `protect` if given.
    """
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    target = os.fork()
    if target == 0:  # the worker stand-in
        code = 1
        try:
            os.close(ready_r)
            os.close(release_w)
            _unprivileged()
            LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # a change of user cleared it
            if protect is not None and not protect():
                raise OSError("the flag was not set")
            os.write(ready_w, b"1")
            os.read(release_r, 1)  # until the probe is done
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(release_r)
    try:
        assert os.read(ready_r, 1) == b"1", "the target did not start"
        probe = os.fork()
        if probe == 0:  # the agent stand-in
            code = 3
            try:
                _unprivileged()
                try:
                    Path(f"/proc/{target}/environ").read_bytes()
                    code = 0
                except PermissionError:
                    code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(probe, 0)
        outcome = os.waitstatus_to_exitcode(status)
        assert outcome in (0, 1), f"the probe failed ({outcome})"
        return outcome == 0
    finally:
        os.close(release_w)
        os.close(ready_r)
        _, status = os.waitpid(target, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the target could not be set up"


def _unprivileged() -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def test_a_worker_with_the_sandbox_off_says_so_at_start(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    """`[agent] sandbox = "off"` is logged when the worker starts; the default is not."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    off = run_burst_worker(tmp_path / "off", redis_url, database_url, agent={"sandbox": "off"})
    on = run_burst_worker(tmp_path / "on", redis_url, database_url)
    redis.close()
    assert off.returncode == 0 and on.returncode == 0, off.stderr + on.stderr
    warning = "The agent sandbox is off"
    line = next(line for line in off.stderr.splitlines() if warning in line)
    assert '"level": "warning"' in line and "run unsandboxed" in line
    assert warning not in on.stdout + on.stderr
