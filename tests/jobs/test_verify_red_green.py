"""The bot checks RED and GREEN itself: what the agent changed, and which tests still run.

Each case drives the real app (Slack command, approval, real workers, a real git
remote, the fake GitHub) with a scripted agent that breaks one rule, and checks the
task fails with the evidence in its thread while the pull request stays a draft.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr, ValidationError

from agents.base import AgentError, Plan, RepoSpec, TaskBrief
from agents.claude_code import ClaudeCodeRunner
from agents.runner import CliPlanner
from agents.scripted import ScriptedExecutor
from agents.testing import FileChange
from agents.testing import TestRun as SuiteRun
from bot.settings import Settings
from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from jobs.work import VerificationFailed, check_green_changes, check_green_kept_tests
from sandbox.fakeslack import FakeSlack
from sandbox.sample import PLAN, SCRIPT, TEST_DISCOUNT
from tests.agents.fake_cli import FakeCli, init, result
from tests.conftest import APPROVER, git
from tests.fakes.github_server import FakeGitHub
from tests.slackclient import SlackUser, texts

REPO = "acme/calc"
BRANCH = "agent/T-1"
FIX = {
    "replace": "pricing.py",
    "old": "return round(price - percent, 2)",
    "new": "return round(price * (1 - percent / 100), 2)",
}
WRITE_TEST = {"write": "tests/test_discount.py", "content": TEST_DISCOUNT}

# Scenarios in which the agent breaks one of the rules; matched before the sample's own.
CHEATS = [
    # The "failing test" arrives together with the fix: RED touched production code.
    {"match": ["red-touches-code"], "plan": PLAN, "red": [WRITE_TEST, FIX], "green": []},
    # GREEN "fixes" the bug by changing what the new test expects.
    {
        "match": ["green-rewrites-test"],
        "plan": PLAN,
        "red": [WRITE_TEST],
        "green": [
            {
                "replace": "tests/test_discount.py",
                "old": "== 180.0",
                "new": "== 190.0",
            }
        ],
    },
    # GREEN fixes the bug but quietly turns an existing test into a plain function.
    {
        "match": ["green-edits-old-test"],
        "plan": PLAN,
        "red": [WRITE_TEST],
        "green": [
            FIX,
            {
                "replace": "tests/test_total.py",
                "old": "def test_total_of_nothing_is_zero",
                "new": "def total_of_nothing_is_zero",
            },
        ],
    },
    # GREEN fixes the bug and adds a new conftest.py that stops an old test file running.
    {
        "match": ["green-drops-tests"],
        "plan": PLAN,
        "red": [WRITE_TEST],
        "green": [
            FIX,
            {"write": "tests/conftest.py", "content": 'collect_ignore = ["test_total.py"]\n'},
        ],
    },
    # GREEN puts the fix in a module the repository ignores: the worktree passes, the
    # commit (which lacks the module) does not.
    {
        "match": ["green-ignored-fix"],
        "plan": PLAN,
        "red": [WRITE_TEST],
        "green": [
            {"write": ".gitignore", "content": "discount_fix.py\n"},
            {
                "write": "discount_fix.py",
                "content": "def apply_discount(price, percent):\n"
                "    return round(price * (1 - percent / 100), 2)\n",
            },
            {
                "replace": "pricing.py",
                "old": "return round(price - percent, 2)",
                "new": "from discount_fix import apply_discount as fixed\n\n"
                "    return fixed(price, percent)",
            },
        ],
    },
    # RED's new test cannot even be collected (an error, no failure); GREEN then changes
    # the test configuration so that nothing is collected and pytest still exits 0.
    {
        "match": ["green-runs-nothing"],
        "plan": PLAN,
        "red": [
            {
                "write": "tests/test_discount.py",
                "content": "from pricing import discount_rate\n\n\n"
                "def test_rate():\n    assert discount_rate(10) == 0.1\n",
            }
        ],
        "green": [
            {
                "write": "tests/conftest.py",
                "content": 'collect_ignore_glob = ["*"]\n\n\n'
                "def pytest_sessionfinish(session, exitstatus):\n"
                "    session.exitstatus = 0\n",
            }
        ],
    },
    # The plan changes code before it has a failing test.
    {
        "match": ["code-first"],
        "plan": {**PLAN, "steps": [PLAN["steps"][1], PLAN["steps"][0], PLAN["steps"][2]]},
        "red": [],
        "green": [],
    },
]


@pytest.fixture
def settings(settings: Settings, github: FakeGitHub) -> Settings:
    """The test settings plus a GitHub token for the fake."""
    return settings.model_copy(
        update={"github_token": SecretStr(github.token), "github_api_url": github.url}
    )


@pytest.fixture
def config(config: AgentbotConfig, sample_repo: Path, tmp_path: Path) -> AgentbotConfig:
    """The sample repo, its pull requests on GitHub, and the cheating scenarios added."""
    add_scenarios(sample_repo, tmp_path / "scenarios")
    repo = config.repos[0].model_copy(update={"github_repo": REPO})
    return config.model_copy(update={"repos": (repo,)})


def add_scenarios(bare: Path, scratch: Path) -> None:
    """Commit the cheating scenarios to the sample's script on its remote."""
    subprocess.run(["git", "clone", "-q", str(bare), str(scratch)], check=True)
    script = {"scenarios": CHEATS + SCRIPT["scenarios"]}
    (scratch / ".agentbot" / "script.json").write_text(json.dumps(script, indent=2))
    author = ["-c", "user.name=Sample", "-c", "user.email=sample@example.com"]
    subprocess.run(["git", *author, "commit", "-qam", "More scenarios"], cwd=scratch, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=scratch, check=True)


def run_to_execution(user: SlackUser, description: str) -> None:
    user.command(f"run {description}")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")
    user.work("default")


def assert_failed_as_draft(
    user: SlackUser, github: FakeGitHub, sample_repo: Path, reason: str, evidence: str
) -> None:
    """The task failed for `reason`, its thread shows `evidence`, nothing is ready."""
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "failed"
    assert reason in (task.error or "")
    outcome = texts(user.thread()[-1])
    assert "T-1 failed" in outcome and reason in outcome and evidence in outcome
    assert reason in texts(user.card())
    pull = github.pull(REPO, BRANCH)
    assert pull is not None and pull.draft, "the pull request must stay a draft"
    assert "Verification" in pull.body and "Not run yet" in pull.body
    [said] = [body for _repo, number, body in github.comments if number == pull.number]
    assert reason in said and "stays a draft" in said
    assert "fix(" not in git("log", "--format=%s", BRANCH, cwd=sample_repo)


def test_red_that_changes_production_code_fails_the_task(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """A RED phase that also edits pricing.py is caught before its tests are even run."""
    run_to_execution(user, "red-touches-code in the discount")
    assert_failed_as_draft(
        user,
        github,
        sample_repo,
        "RED changed code that is not a test: `pricing.py`",
        "M pricing.py",
    )
    thread = "\n".join(texts(m) for m in user.thread())
    assert "A tests/test_discount.py" in thread
    assert "RED as expected" not in thread


def test_green_that_rewrites_the_new_test_fails_the_task(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """Making the suite pass by changing the new test's expectation is not a fix."""
    run_to_execution(user, "green-rewrites-test for the discount")
    assert_failed_as_draft(
        user,
        github,
        sample_repo,
        "GREEN deleted or rewrote tests: `tests/test_discount.py`",
        "M tests/test_discount.py",
    )
    thread = "\n".join(texts(m) for m in user.thread())
    assert "RED as expected" in thread and "GREEN —" not in thread


def test_green_that_drops_a_test_fails_the_task(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """A green suite with fewer passing tests than RED ran means tests were dropped."""
    run_to_execution(user, "green-drops-tests around the discount")
    assert_failed_as_draft(
        user,
        github,
        sample_repo,
        "GREEN ran fewer tests than RED: 2 passed after the fix, but 4 ran",
        "2 passed",
    )


def test_green_that_edits_a_test_the_repo_had_fails_the_task(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """GREEN may add tests, but a test that existed before RED stays as it was."""
    run_to_execution(user, "green-edits-old-test around the discount")
    assert_failed_as_draft(
        user,
        github,
        sample_repo,
        "GREEN deleted or rewrote tests: `tests/test_total.py`",
        "M tests/test_total.py",
    )
    thread = "\n".join(texts(m) for m in user.thread())
    assert "RED as expected" in thread and "GREEN —" not in thread


def test_green_that_passes_only_thanks_to_an_ignored_file_fails_the_task(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """GREEN runs on the commit: a fix kept in a gitignored module is not in it, so red."""
    run_to_execution(user, "green-ignored-fix for the discount")
    assert_failed_as_draft(
        user,
        github,
        sample_repo,
        "GREEN did not hold: after the fix the suite reported 2 passed, 2 failed",
        "No module named 'discount_fix'",
    )
    outcome = texts(user.thread()[-1])
    assert "Not in the commit, so not in the tested tree: discount_fix.py" in outcome
    assert "discount_fix" not in git("log", "--all", "--format=%B", cwd=sample_repo)


def test_green_that_runs_no_tests_fails_the_task(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """A RED of one collection error, then a GREEN that collects nothing and exits 0, fails."""
    run_to_execution(user, "green-runs-nothing for the discount")
    assert_failed_as_draft(
        user,
        github,
        sample_repo,
        "GREEN did not hold: after the fix the suite reported 0 passed, 0 failed (exit 0)",
        "no tests ran",
    )
    thread = "\n".join(texts(m) for m in user.thread())
    assert "RED as expected — `python -m pytest -q`: 0 passed, 0 failed, 1 errors" in thread


def test_green_may_add_tests_but_changes_none_that_existed() -> None:
    """Adding a test passes; changing an old test, a conftest.py or RED's tests does not."""
    red = [FileChange("A", "tests/test_discount.py"), FileChange("D", "tests/test_old.py")]
    check_green_changes(red, [FileChange("M", "pricing.py"), FileChange("A", "tests/test_x.py")])
    for change in (
        FileChange("M", "conftest.py"),
        FileChange("M", "tests/test_total.py"),
        FileChange("T", "tests/test_total.py"),
        FileChange("D", "tests/__init__.py"),
        FileChange("M", "tests/test_discount.py"),
        FileChange("A", "tests/test_old.py"),
    ):
        with pytest.raises(VerificationFailed, match="GREEN deleted or rewrote tests"):
            check_green_changes(red, [FileChange("M", "pricing.py"), change])


def run(passed: int, failed: int = 0, errors: int = 0) -> SuiteRun:
    """A test run with these counts, as the bot would have seen it."""
    return SuiteRun("pytest -q", 0 if failed + errors == 0 else 1, passed, failed, errors, 1.0, "")


def test_green_must_pass_as_many_tests_as_ran_before_or_in_red() -> None:
    """The floor counts errors too, and the run before any change, whichever is larger."""
    check_green_kept_tests(run(2), run(2, errors=1), run(3))
    with pytest.raises(VerificationFailed, match="fewer tests than RED: 2 passed after the fix"):
        check_green_kept_tests(run(2), run(2, errors=1), run(2))
    # RED lost tests on the way (a collection error hides a whole file): "before" counts.
    with pytest.raises(VerificationFailed, match=r"fewer tests than before: 3 passed .* but 5 ran"):
        check_green_kept_tests(run(5), run(0, errors=1), run(3))


def test_green_that_deletes_a_test_file_fails_the_task(
    user: SlackUser,
    slack: FakeSlack,
    github: FakeGitHub,
    sample_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An agent that fixes the bug and deletes an existing test file is caught."""
    implement_fix = ScriptedExecutor.implement_fix

    def fix_and_delete(self: ScriptedExecutor, *args: Any, **kwargs: Any) -> Any:
        run = implement_fix(self, *args, **kwargs)
        workspace: Path = args[2]
        (workspace / "tests" / "test_total.py").unlink()
        return run

    monkeypatch.setattr(ScriptedExecutor, "implement_fix", fix_and_delete)
    run_to_execution(user, "fix the discount calculation")
    assert_failed_as_draft(
        user,
        github,
        sample_repo,
        "GREEN deleted or rewrote tests: `tests/test_total.py`",
        "D tests/test_total.py",
    )


def test_a_job_that_lost_its_task_says_nothing_on_the_pull_request(
    user: SlackUser,
    slack: FakeSlack,
    github: FakeGitHub,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An old job failing after its task was handed on leaves the draft PR to the newer job."""

    def taken_over_then_fails(self: ScriptedExecutor, *args: Any, **kwargs: Any) -> Any:
        # What reconciliation or a retry does meanwhile: the task gets a newer job id.
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute("UPDATE tasks SET job_id = 'execute-1-newer' WHERE id = 1")
        raise AgentError("The agent gave up.")

    monkeypatch.setattr(ScriptedExecutor, "implement_fix", taken_over_then_fails)
    run_to_execution(user, "fix the discount calculation")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert (task.state, task.job_id, task.error) == ("executing", "execute-1-newer", None)
    pull = github.pull(REPO, BRANCH)
    assert pull is not None and pull.draft
    assert github.comments == []
    assert "The agent gave up" not in "\n".join(texts(m) for m in user.thread())


def test_red_that_adds_only_passing_tests_does_not_hold(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """Tests that already pass show no bug: RED does not hold and nothing is ready."""
    run_to_execution(user, "already-green discount check")
    assert_failed_as_draft(user, github, sample_repo, "RED did not hold", "4 passed")


def test_honest_run_still_succeeds_and_marks_the_pull_request_ready(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub, sample_repo: Path
) -> None:
    """A test-only RED and a code-only GREEN pass every check; the PR is ready."""
    run_to_execution(user, "fix the discount calculation")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "succeeded", task.error
    pull = github.pull(REPO, BRANCH)
    assert pull is not None and not pull.draft
    assert "| GREEN: `python -m pytest -q` | 4 passed, 0 failed |" in pull.body
    message = git("log", "-1", "--format=%B", BRANCH, cwd=sample_repo)
    assert message.startswith("fix(pricing): ") and "Task: T-1" in message
    pushed = git("ls-tree", "-r", "--name-only", BRANCH, cwd=sample_repo).split()
    assert "tests/test_discount.py" in pushed and "PLAN.md" not in pushed


def test_plan_that_implements_before_testing_is_refused(
    user: SlackUser, slack: FakeSlack, github: FakeGitHub
) -> None:
    """Planning fails clearly when the plan's first code change has no test before it."""
    user.command("run code-first discount change")
    user.work("default", "plan")
    user.work("default")
    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "failed"
    assert "the first test step must come before the first implement step" in (task.error or "")
    assert "Planning failed" in texts(user.thread()[-1])
    assert github.pulls == []


def test_plan_model_requires_a_test_step_first() -> None:
    """A plan with no test step, or an implement step first, is not a plan."""
    no_test = {**PLAN, "steps": [s for s in PLAN["steps"] if s["kind"] != "test"]}
    with pytest.raises(ValidationError, match="a plan needs a test step"):
        Plan.model_validate(no_test)
    assert [s.kind for s in Plan.model_validate(PLAN).steps] == ["test", "implement", "verify"]


def test_code_first_plan_gets_the_corrective_retry(tmp_path: Path) -> None:
    """The planner is told what was wrong, once, and its test-first answer is accepted."""
    workspace = tmp_path / "repo"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    code_first = {**PLAN, "steps": [PLAN["steps"][1], PLAN["steps"][0]]}
    fake = FakeCli(tmp_path / "cli")
    fake.script(
        {"lines": [init("s"), result(json.dumps(code_first), session="s")]},
        {"lines": [init("s"), result(json.dumps(PLAN), session="s")]},
    )
    brief = TaskBrief("T-3", "fix the discount", RepoSpec(REPO, "/srv/calc.git", "main", "pytest"))
    outcome = CliPlanner(ClaudeCodeRunner(fake.options())).plan(
        brief, workspace, progress=lambda _: None, cancelled=lambda: False
    )
    assert [s.kind for s in outcome.plan.steps] == ["test", "implement", "verify"]
    _first, second = (call["argv"] for call in fake.calls())
    assert "must come before the first implement step" in second[second.index("-p") + 1]

    stubborn = FakeCli(tmp_path / "stubborn")
    stubborn.script({"lines": [init("t"), result(json.dumps(code_first), session="t")]})
    with pytest.raises(AgentError, match="must come before the first implement step"):
        CliPlanner(ClaudeCodeRunner(stubborn.options())).plan(
            brief, workspace, progress=lambda _: None, cancelled=lambda: False
        )
