"""What the plan and completion cards say about pull requests and the agent's runs."""

from __future__ import annotations

from typing import Any

from agents.base import Plan
from bot import blocks
from jobs.work import render_pull_body
from sandbox.fakeslack import block_errors
from sandbox.sample import PLAN
from tests.bot.test_blocks import make_task

RUNS = [
    {"phase": "plan", "session_id": "s-plan", "turns": 5, "cost_usd": 0.04, "cost_known": True},
    {"phase": "red", "session_id": "s-red", "turns": 6, "cost_usd": 0.10, "cost_known": True},
    {"phase": "green", "session_id": "s-green", "turns": 4, "cost_usd": 0.08, "cost_known": True},
]
RUN = {"command": "pytest -q", "passed": 4, "failed": 0, "errors": 0}


def succeeded(**result: Any) -> list[dict[str, Any]]:
    task = make_task(
        state="succeeded",
        agent_cost_usd=0.22,
        result={
            "branch": "agent/T-12",
            "files_changed": ["pricing.py", "tests/test_discount.py"],
            "lines_added": 9,
            "lines_removed": 1,
            "tests_before": {**RUN, "passed": 2},
            "tests_after": RUN,
            "duration_seconds": 84.2,
            "agent_runs": RUNS,
            **result,
        },
    )
    return blocks.render_outcome(task, agent="Claude Code", scripted=False)


def test_completion_card_shows_pr_cost_turns_and_sessions() -> None:
    """The card carries the PR link, lines +/-, tests, duration, cost, turns and sessions."""
    rendered = succeeded(pr_url="https://github.com/acme/web/pull/7", github="ok")
    text = str(rendered)
    assert "https://github.com/acme/web/pull/7" in text
    assert "2 (+9 -1)" in text and "84.2 s" in text
    assert "$0.22" in text and "*Agent turns*\\n15" in text
    assert "plan `s-plan`, red `s-red`, green `s-green`" in text
    assert "No GitHub access" not in text
    assert block_errors(rendered) == []


def test_completion_card_without_github_says_branch_only() -> None:
    """No GitHub for the repo: the branch is the result and the card says why."""
    text = str(succeeded(github="unconfigured"))
    assert "*Branch*\\n`agent/T-12`" in text and "Pull request" not in text
    assert "No GitHub access is configured for this repo: branch only." in text


def test_completion_card_reports_a_github_failure_honestly() -> None:
    """GitHub refusing is not reported as 'not configured'."""
    text = str(succeeded(github="error", github_error="GitHub answered 403 to POST: Forbidden"))
    assert "could not be opened or updated: GitHub answered 403" in text
    assert "No GitHub access is configured" not in text


def test_unknown_cost_is_not_shown_as_free() -> None:
    """An agent that reports no cost (Codex) is not shown as $0.00."""
    runs = [{**r, "cost_known": False, "cost_usd": 0.0} for r in RUNS]
    text = str(succeeded(agent_runs=runs))
    assert "not reported by the agent" in text and "$0.22" not in text


def test_completion_card_shows_the_tokens_the_runs_reported() -> None:
    """Codex reports tokens, not money: the card adds them up over the runs."""
    runs = [{**r, "cost_known": False, "input_tokens": 24763, "output_tokens": 122} for r in RUNS]
    rendered = succeeded(agent_runs=runs)
    assert "*Agent tokens*\\n74,289 in · 366 out" in str(rendered)
    assert block_errors(rendered) == []
    # Runs recorded before tokens were kept (or agents reporting none) add no field.
    assert "Agent tokens" not in str(succeeded())


def test_plan_card_links_the_draft_pr_and_the_planning_run() -> None:
    """The plan card links the draft PR and says what planning took."""
    task = make_task(
        state="awaiting_approval",
        plan=PLAN,
        result={"plan_pr_url": "https://github.com/acme/web/pull/7", "agent_runs": RUNS[:1]},
    )
    text = str(blocks.render_plan(task, agent="Claude Code", scripted=False))
    assert "PLAN.md in draft PR https://github.com/acme/web/pull/7" in text
    assert "Claude Code* · 5 turns · $0.04" in text
    branch_only = make_task(state="awaiting_approval", plan=PLAN, result={"github": "unconfigured"})
    text = str(blocks.render_plan(branch_only))
    assert "PLAN.md is on branch `agent/T-12`" in text and "branch only" in text


def test_pull_body_has_request_plan_and_verification() -> None:
    """The draft says it waits; the ready PR carries the bot's own test evidence."""
    plan = Plan.model_validate(PLAN)
    draft = render_pull_body("T-12", "10% off 200 gives 190 ``` @team", plan, None)
    assert "````text\n10% off 200 gives 190 ``` @team\n````" in draft
    assert PLAN["root_cause"] in draft and "Not run yet" in draft
    ready = render_pull_body(
        "T-12",
        "fix",
        plan,
        {
            "tests_before": {**RUN, "passed": 2},
            "tests_red": {**RUN, "passed": 3, "failed": 1},
            "tests_after": RUN,
            "agent": "Claude Code",
            "turns": 15,
            "cost": "$0.22",
            "duration_seconds": 84.2,
        },
    )
    assert "| RED: `pytest -q` | 3 passed, 1 failed |" in ready
    assert "| GREEN: `pytest -q` | 4 passed, 0 failed |" in ready
    assert "Claude Code · 15 turns · $0.22 · 84.2 s" in ready


def test_pull_body_closes_the_origin_issue_and_links_the_thread() -> None:
    """A task from an issue closes it on merge; the Slack thread is one click away."""
    plan = Plan.model_validate(PLAN)
    thread = "https://sandbox.slack.com/archives/CDEV/p1700000001000100"
    body = render_pull_body("T-12", "fix", plan, None, closes="#7", thread=thread)
    assert body.startswith("Agentbot task **T-12**, from #7.\n\nCloses #7\n")
    assert f"Slack thread (plan, approval, progress): {thread}" in body
    elsewhere = render_pull_body("T-12", "fix", plan, None, closes="acme/issues#7")
    assert "Closes acme/issues#7" in elsewhere and "Slack thread" not in elsewhere
    plain = render_pull_body("T-12", "fix", plan, None)
    assert plain.startswith("Agentbot task **T-12**.\n\n### Request") and "Closes" not in plain
