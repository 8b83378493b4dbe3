"""GREEN tests the commit as a fresh clone on a fresh machine would.

Caches the bot keeps between its runs (the worktree's `.pytest_cache`, a tool's build
cache in the agent's home) must not make GREEN pass or fail differently from one: a
project whose version module is generated at install time failed GREEN because a
cache in the agent's home kept a stale install after the clean step.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from tests.conftest import APPROVER
from tests.slackclient import SlackUser

# What a tool that caches its builds in HOME does: the first run builds (and says so),
# a later run with the same HOME reuses the build instead of making it again.
CACHING_TOOL = (
    'if [ -e "$HOME/.cache/tool/built" ]; then echo "home=reused"; '
    'else mkdir -p "$HOME/.cache/tool" && touch "$HOME/.cache/tool/built" '
    '&& echo "home=fresh"; fi'
)


def commit_to(sample_repo: Path, scratch: Path, files: dict[str, str]) -> None:
    subprocess.run(["git", "clone", "-q", str(sample_repo), str(scratch)], check=True)
    for name, content in files.items():
        (scratch / name).write_text(content)
    author = ["-c", "user.name=Sample", "-c", "user.email=sample@example.com"]
    subprocess.run(["git", "add", "-A"], cwd=scratch, check=True)
    subprocess.run(["git", *author, "commit", "-qm", "Config"], cwd=scratch, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=scratch, check=True)


@pytest.fixture
def config(config: AgentbotConfig, sample_repo: Path, tmp_path: Path) -> AgentbotConfig:
    """A repo whose pytest reruns only last failures when its cache has them."""
    commit_to(sample_repo, tmp_path / "scratch", {"pytest.ini": "[pytest]\naddopts = --lf\n"})
    repo = config.repos[0]
    command = f"{CACHING_TOOL}; {repo.test_command}"
    return config.model_copy(update={"repos": (repo.model_copy(update={"test_command": command}),)})


def test_green_runs_the_whole_suite_and_in_a_fresh_home(user: SlackUser) -> None:
    """RED's last failures do not shrink GREEN to one test; no build from the agent's home."""
    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "succeeded", task.error
    before, red, green = (task.result[run] for run in ("tests_before", "tests_red", "tests_after"))
    assert "home=fresh" in before["output_tail"] and "home=reused" in red["output_tail"]
    assert "home=fresh" in green["output_tail"]
    assert "rerun previous" not in green["output_tail"]
    assert green["passed"] == red["passed"] + red["failed"] + red["errors"]
