"""What the bot's own test runs write stays out of the fix, unless the plan names it.

A test command that creates a lock file (`uv run` writes `uv.lock`) or rewrites a
tracked file put hundreds of lines in the fix that the agent never wrote. Only what
the agent changed is committed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from sandbox.sample import PLAN, SCRIPT, TEST_DISCOUNT
from tests.conftest import APPROVER, git
from tests.slackclient import SlackUser

FIX = {
    "replace": "pricing.py",
    "old": "return round(price - percent, 2)",
    "new": "return round(price * (1 - percent / 100), 2)",
}
WRITE_TEST = {"write": "tests/test_discount.py", "content": TEST_DISCOUNT}
# The plan of this scenario names the lock file: the agent means it to be committed.
LOCK_PLAN = {**PLAN, "affected_files": [*PLAN["affected_files"], "generated.lock"]}
SCENARIOS = [{"match": ["keep-the-lock"], "plan": LOCK_PLAN, "red": [WRITE_TEST], "green": [FIX]}]
# Like `uv run pytest`: writes a lock file, and rewrites a tracked file, on every run.
COMMAND = "echo locked > generated.lock; date +%s%N > stamp.txt; python -m pytest -q"


@pytest.fixture
def config(config: AgentbotConfig, sample_repo: Path, tmp_path: Path) -> AgentbotConfig:
    """The sample repo with a tracked stamp file and a test command that writes files."""
    scratch = tmp_path / "scratch"
    subprocess.run(["git", "clone", "-q", str(sample_repo), str(scratch)], check=True)
    script = {"scenarios": SCENARIOS + SCRIPT["scenarios"]}
    (scratch / ".agentbot" / "script.json").write_text(json.dumps(script, indent=2))
    (scratch / "stamp.txt").write_text("as committed\n")
    author = ["-c", "user.name=Sample", "-c", "user.email=sample@example.com"]
    subprocess.run(["git", "add", "-A"], cwd=scratch, check=True)
    subprocess.run(["git", *author, "commit", "-qm", "Stamp"], cwd=scratch, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=scratch, check=True)
    repo = config.repos[0].model_copy(update={"test_command": COMMAND})
    return config.model_copy(update={"repos": (repo,)})


def run_task(user: SlackUser, description: str) -> dict[str, object]:
    user.command(f"run {description}")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "succeeded", task.error
    return dict(task.result or {})


def fix_files(sample_repo: Path) -> list[str]:
    return git("diff", "--name-only", "main", "agent/T-1", cwd=sample_repo).split()


def test_files_the_test_runs_wrote_are_not_in_the_fix(user: SlackUser, sample_repo: Path) -> None:
    """The lock file and the rewritten stamp are neither committed nor listed."""
    result = run_task(user, "fix the discount calculation")
    assert sorted(fix_files(sample_repo)) == ["pricing.py", "tests/test_discount.py"]
    assert result["files_changed"] == ["pricing.py", "tests/test_discount.py"]
    assert git("show", "agent/T-1:stamp.txt", cwd=sample_repo) == "as committed\n"


def test_a_file_the_plan_names_is_committed_even_if_a_test_run_wrote_it(
    user: SlackUser, sample_repo: Path
) -> None:
    """The plan says the lock file belongs to the fix, so it is kept."""
    run_task(user, "keep-the-lock while fixing the discount")
    assert sorted(fix_files(sample_repo)) == [
        "generated.lock",
        "pricing.py",
        "tests/test_discount.py",
    ]
    assert git("show", "agent/T-1:stamp.txt", cwd=sample_repo) == "as committed\n"
