"""Cancel stops a job whose agent never looks at cancellation: RQ's stop-job command."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from pathlib import Path

from rq.job import Job, JobStatus
from sqlalchemy import select

from agents.processes import kill_group
from jobs.models import Task, TaskEvent
from sandbox.fakeslack import FakeSlack
from sandbox.sample import PLAN, TEST_DISCOUNT
from tests.conftest import APPROVER, git
from tests.procs import sandboxed
from tests.slackclient import SlackUser, texts

# The scripted agent's command: a process that records its pid, starts a grandchild,
# and then blocks far longer than any test. It runs in the sandbox, so it writes in its
# worktree (nothing else is writable) and the pids are those of its PID namespace.
BLOCKER = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "600"])
with open(sys.argv[1], "w") as out:
    out.write(f"{os.getpid()} {child.pid}")
time.sleep(600)
"""
PID_FILE = "blocker.pid"


def add_blocking_scenario(remote: Path, work: Path) -> None:
    """Push a script scenario whose RED phase runs BLOCKER, checking nothing on the way."""
    git("clone", "--quiet", str(remote), str(work), cwd=remote.parent)
    script_path = work / ".agentbot" / "script.json"
    script = json.loads(script_path.read_text())
    script["scenarios"].insert(
        0,
        {
            "match": ["blocking"],
            "plan": PLAN,
            "red": [{"write": "tests/test_discount.py", "content": TEST_DISCOUNT}],
            "green": [],
            "command": [sys.executable, "-c", BLOCKER, PID_FILE],
        },
    )
    script_path.write_text(json.dumps(script, indent=2))
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    git(*identity, "commit", "--quiet", "-am", "A scenario that blocks", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)


def test_cancel_kills_an_agent_that_never_checks_for_it(
    user: SlackUser, slack: FakeSlack, sample_repo: Path, tmp_path: Path
) -> None:
    """Cancelling mid-command stops the RQ job and the command's whole group; the card says so."""
    add_blocking_scenario(sample_repo, tmp_path / "scripting")
    worktree = tmp_path / "workspaces" / "worktrees" / "acme_calc" / "T-1"
    pid_file = worktree / PID_FILE
    user.command("run blocking discount work")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    with user.services.db.session() as session:
        job_id = session.execute(select(Task.job_id)).scalar_one()
    assert job_id is not None

    # A worker process of its own, as in production, so RQ can install its signals.
    worker = multiprocessing.get_context("fork").Process(target=user.work, args=("execute",))
    worker.start()
    try:
        slack.wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=60)
        inside = [int(n) for n in pid_file.read_text().split()]
        running = [host for pid in inside for host in sandboxed(pid, worktree)]
        assert len(running) == 2, "the command and its child run"
        response = user.command("cancel T-1")
        assert "T-1 is cancelled" in user.reply_text(response)
        worker.join(timeout=60)
        assert worker.exitcode == 0, "the worker finished its burst once the job was stopped"
    finally:
        if worker.is_alive():
            worker.kill()
        if pid_file.exists() and pid_file.read_text():
            # Whatever happened above, leave no 600-second sleeper behind.
            for pid in pid_file.read_text().split():
                for host in sandboxed(int(pid), worktree):
                    kill_group(os.getpgid(host))

    status = Job.fetch(job_id, connection=user.services.redis).get_status(refresh=True)
    assert status == JobStatus.STOPPED
    left = [host for pid in inside for host in sandboxed(pid, worktree)]
    assert left == [], "the command and its grandchild are gone"
    with user.services.db.session() as session:
        task = session.execute(select(Task)).scalar_one()
        events = session.execute(select(TaskEvent).order_by(TaskEvent.id)).scalars()
        moves = [event.to_state for event in events]
    assert task.state == "cancelled"
    assert moves[-2:] == ["executing", "cancelled"]  # never failed, never retried
    user.work("default")
    card = texts(user.card())
    assert "cancelled" in card and "executing" not in card
