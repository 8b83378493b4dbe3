"""RQ job functions: plan a task, execute it, keep Slack in step.

Every job takes a task id, loads the task, and first claims its step with a
compare-and-set; a duplicate or stale job (the task moved on, or belongs to another
job id) does nothing. Agent errors fail the task with their message; anything else
propagates so RQ retries it, and the final failure fails the task (`on_job_failure`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

from rq import get_current_job
from rq.job import Job

from agents.base import AgentError, Plan, RepoSpec, TaskBrief
from agents.testing import TestRun, run_tests
from jobs.config import RepoConfig
from jobs.context import JobContext, current
from jobs.exceptions import TaskNotFound
from jobs.models import Task, utcnow
from jobs.states import TaskState
from jobs.tasks import get_task, transition

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 2.0
CANCEL_POLL_SECONDS = 1.0
TEST_TIMEOUT_SECONDS = 900


# -- helpers ---------------------------------------------------------------------------


def _job_id() -> str | None:
    job = get_current_job()
    return None if job is None else str(job.id)


def _claim(ctx: JobContext, task_id: int, waiting: TaskState, running: TaskState) -> Task | None:
    """Move the task into `running` for this job, or tell the caller to stand down."""
    job_id = _job_id()
    with ctx.db.session() as session:
        try:
            task = get_task(session, task_id)
        except TaskNotFound:
            log.warning("T-%s vanished; nothing to do", task_id)
            return None
        if job_id is not None and task.job_id not in (None, job_id):
            log.info("T-%s belongs to job %s, not %s; skipping", task_id, task.job_id, job_id)
            return None
        if task.task_state == running:
            return task  # a retry of this very job
        if task.task_state != waiting or not transition(
            session, task_id, waiting, running, started_at=utcnow()
        ):
            log.info("T-%s is %s; nothing to do", task_id, task.state)
            return None
        session.refresh(task)
        return task


def _repo(ctx: JobContext, task: Task) -> RepoConfig:
    repo = ctx.config.repo(task.repo)
    if repo is None:
        raise AgentError(f"The repo {task.repo} is no longer configured.")
    return repo


def brief_for(task: Task, repo: RepoConfig) -> TaskBrief:
    """What the agents are told about a task."""
    return TaskBrief(
        key=task.key,
        description=task.description,
        repo=RepoSpec(
            name=repo.name,
            git_url=repo.git_url,
            default_branch=repo.default_branch,
            test_command=repo.test_command,
        ),
        source=task.source,
        source_data=dict(task.source_data or {}),
    )


class _Watch:
    """Throttled progress lines and a cheap "was I cancelled?" check for one task."""

    def __init__(self, ctx: JobContext, task_id: int) -> None:
        self.ctx = ctx
        self.task_id = task_id
        self._last_sent = 0.0
        self._pending: str | None = None
        self._last_poll = 0.0
        self._cancelled = False

    def progress(self, line: str) -> None:
        self._pending = line
        now = time.monotonic()
        if now - self._last_sent >= PROGRESS_INTERVAL_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        line, self._pending = self._pending, None
        self._last_sent = time.monotonic()
        try:
            self.ctx.notifier.progress(self.task_id, line)
        except Exception:  # progress is best-effort; the work goes on
            log.warning("progress update for T-%s failed", self.task_id, exc_info=True)

    def cancelled(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._last_poll >= CANCEL_POLL_SECONDS:
            self._last_poll = now
            with self.ctx.db.session() as session:
                state = get_task(session, self.task_id).task_state
            self._cancelled = state == TaskState.CANCELLED
        return self._cancelled


def _fail(ctx: JobContext, task_id: int, source: TaskState, reason: str) -> None:
    with ctx.db.session() as session:
        moved = transition(session, task_id, source, TaskState.FAILED, reason=reason, error=reason)
    if moved:
        ctx.notifier.sync(task_id)


def _test_run_dict(run: TestRun) -> dict[str, Any]:
    data = asdict(run)
    data["output_tail"] = run.output_tail[-1500:]
    return data


# -- planning --------------------------------------------------------------------------


def plan_task(task_id: int) -> None:
    """Plan a queued task and put the plan up for approval."""
    ctx = current()
    task = _claim(ctx, task_id, TaskState.QUEUED, TaskState.PLANNING)
    if task is None:
        return
    ctx.notifier.sync(task_id)
    watch = _Watch(ctx, task_id)
    try:
        repo = _repo(ctx, task)
        brief = brief_for(task, repo)
        pair = ctx.agents(repo)
        watch.progress("Preparing the workspace")
        workspace = ctx.workspaces.prepare(brief.repo, task.key)
        outcome = pair.planner.plan(brief, workspace, watch.progress, watch.cancelled)
        watch.flush()
        if watch.cancelled():
            return
        _record_plan(ctx, task, workspace, outcome.plan)
    except AgentError as exc:
        watch.flush()
        _fail(ctx, task_id, TaskState.PLANNING, f"Planning failed: {exc}")
        return
    with ctx.db.session() as session:
        moved = transition(
            session,
            task_id,
            TaskState.PLANNING,
            TaskState.AWAITING_APPROVAL,
            reason="plan ready",
            plan=outcome.plan.model_dump(),
            agent_cost_usd=task.agent_cost_usd + outcome.run.cost_usd,
        )
    if moved:
        ctx.notifier.sync(task_id)


def _record_plan(ctx: JobContext, task: Task, workspace: Path, plan: Plan) -> None:
    """Commit PLAN.md on the task's branch and push it, so the plan is reviewable."""
    (workspace / "PLAN.md").write_text(render_plan_markdown(task.key, task.description, plan))
    ctx.workspaces.commit_all(workspace, f"docs: plan for {task.key}\n\nTask: {task.key}")
    ctx.workspaces.push(workspace, task.key)


def render_plan_markdown(key: str, description: str, plan: Plan) -> str:
    """PLAN.md as committed on the task's branch."""
    lines = [
        f"# Plan for {key}",
        "",
        f"> {description.splitlines()[0][:300] if description else ''}",
        "",
        "## Summary",
        plan.summary,
        "",
        "## Root cause",
        plan.root_cause,
        "",
        "## Affected files",
        *[f"- `{name}`" for name in plan.affected_files],
        "",
        "## Steps",
        *[f"{n}. **{step.kind}**: {step.description}" for n, step in enumerate(plan.steps, 1)],
        "",
        f"**Test command:** `{plan.test_command}`  ",
        f"**Risk:** {plan.risk}  ",
        f"**Estimate:** {plan.estimated_minutes} min",
        "",
    ]
    return "\n".join(lines)


# -- execution -------------------------------------------------------------------------


def execute_task(task_id: int) -> None:
    """Carry out an approved plan test-first, verifying RED and GREEN ourselves."""
    ctx = current()
    task = _claim(ctx, task_id, TaskState.APPROVED, TaskState.EXECUTING)
    if task is None:
        return
    ctx.notifier.sync(task_id)
    watch = _Watch(ctx, task_id)
    started = time.monotonic()
    cost = 0.0
    try:
        repo = _repo(ctx, task)
        brief = brief_for(task, repo)
        plan = Plan.model_validate(task.plan)
        pair = ctx.agents(repo)
        watch.progress("Preparing the workspace")
        workspace = ctx.workspaces.prepare(brief.repo, task.key)
        # The bot runs the repo's configured test command, never one an agent wrote.
        command = repo.test_command

        watch.progress(f"Running `{command}` before any change")
        before = run_tests(command, workspace, TEST_TIMEOUT_SECONDS)

        red_run = pair.executor.write_failing_test(
            brief, plan, workspace, watch.progress, watch.cancelled
        )
        cost += red_run.cost_usd
        if watch.cancelled():
            return
        watch.progress(f"Running `{command}` to see the new test fail")
        red = run_tests(command, workspace, TEST_TIMEOUT_SECONDS)
        watch.flush()
        if not red.red:
            raise AgentError(
                f"RED did not hold: after the new test was written the suite reported "
                f"{red.counts()} (exit {red.exit_code}); a failing test was expected."
            )
        ctx.notifier.say(task_id, f":red_circle: RED as expected — `{command}`: {red.counts()}")

        green_run = pair.executor.implement_fix(
            brief, plan, workspace, watch.progress, watch.cancelled
        )
        cost += green_run.cost_usd
        if watch.cancelled():
            return
        watch.progress(f"Running `{command}` after the fix")
        green = run_tests(command, workspace, TEST_TIMEOUT_SECONDS)
        watch.flush()
        if not green.green:
            raise AgentError(
                f"GREEN did not hold: after the fix the suite reported {green.counts()} "
                f"(exit {green.exit_code}). Nothing was marked ready."
            )
        ctx.notifier.say(task_id, f":large_green_circle: GREEN — `{command}`: {green.counts()}")

        summary = plan.summary.splitlines()[0][:72]
        commit = ctx.workspaces.commit_all(
            workspace, f"fix: {summary}\n\n{task.description[:2000]}\n\nTask: {task.key}"
        )
        ctx.workspaces.push(workspace, task.key)
        diff = ctx.workspaces.diff_stat(workspace, f"origin/{repo.default_branch}")
    except AgentError as exc:
        watch.flush()
        _fail(ctx, task_id, TaskState.EXECUTING, f"Execution failed: {exc}")
        return
    result = {
        "branch": ctx.workspaces.branch(task.key),
        "commit": commit,
        "files_changed": diff.files,
        "lines_added": diff.added,
        "lines_removed": diff.removed,
        "tests_before": _test_run_dict(before),
        "tests_red": _test_run_dict(red),
        "tests_after": _test_run_dict(green),
        "duration_seconds": round(time.monotonic() - started, 1),
        "agent": pair.executor.name,
        "scripted": pair.scripted,
    }
    with ctx.db.session() as session:
        moved = transition(
            session,
            task_id,
            TaskState.EXECUTING,
            TaskState.SUCCEEDED,
            reason="verified green",
            result=result,
            agent_cost_usd=task.agent_cost_usd + cost,
        )
    if moved:
        ctx.notifier.sync(task_id)


# -- Slack upkeep and failures ---------------------------------------------------------


def sync_task(task_id: int) -> None:
    """Bring the task's Slack card and thread up to date."""
    current().notifier.sync(task_id)


def say(task_id: int, text: str) -> None:
    """Post a message in the task's thread."""
    current().notifier.say(task_id, text)


def on_job_failure(
    job: Job,
    connection: Any,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback: fail the task once its job has no retries left."""
    task_id = int(job.args[0])
    reason = f"{exc_type.__name__ if exc_type else 'Error'}: {str(exc_value)[:300]}"
    ctx = current()
    if job.retries_left:
        ctx.queues.enqueue_say(task_id, f":warning: Attempt failed ({reason}); retrying.")
        return
    with ctx.db.session() as session:
        try:
            task = get_task(session, task_id)
        except TaskNotFound:
            return
        state = task.task_state
        if task.job_id != job.id or state not in (TaskState.PLANNING, TaskState.EXECUTING):
            return
        moved = transition(
            session, task_id, state, TaskState.FAILED, reason=reason, error=f"Job failed: {reason}"
        )
    if moved:
        ctx.queues.enqueue_sync(task_id)
