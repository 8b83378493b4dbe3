"""RQ job functions: plan a task, execute it, keep Slack in step.

Every job takes a task id, loads the task, and first claims its step with a
compare-and-set; a duplicate or stale job (the task moved on, or belongs to another
job id) does nothing. Agent errors fail the task with their message; anything else
propagates so RQ retries it, and the final failure fails the task (`on_job_failure`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import structlog
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException
from sqlalchemy.orm import Session

from agents.base import AgentError, AgentRun, BudgetStop, Plan, RepoSpec, TaskBrief
from agents.github import GitHub, GitHubError
from agents.runner import task_home
from agents.testing import FileChange, TestRun, changes_between, is_test_file, run_tests, snapshot
from agents.workspace import (
    CACHE_PATTERNS,
    clean_worktree,
    commit_scope,
    conventional_subject,
    git,
)
from jobs import origin, revisions, scope
from jobs.aws import actions as aws_actions
from jobs.config import RepoConfig
from jobs.context import JobContext, current
from jobs.exceptions import AgentbotError, TaskNotFound
from jobs.fence import (
    GITHUB_EFFECTS,
    NOTIFIER_EFFECTS,
    WORKSPACE_EFFECTS,
    Fence,
    TaskLost,
    stops_when_lost,
)
from jobs.lifecycle import plan_problem
from jobs.models import Task, utcnow
from jobs.states import TaskState
from jobs.supervise import RunSupervisor
from jobs.tasks import get_task, transition

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 2.0
CANCEL_POLL_SECONDS = 1.0
TEST_TIMEOUT_SECONDS = 900
PLAN_FILE = "PLAN.md"
EVIDENCE_LIMIT = 1500


# -- helpers ---------------------------------------------------------------------------


def _job_id() -> str | None:
    job = get_current_job()
    return None if job is None else str(job.id)


P = ParamSpec("P")
R = TypeVar("R")


def _log_context(func: Callable[Concatenate[int, P], R]) -> Callable[Concatenate[int, P], R]:
    """Every line logged while a job runs carries its task id, job id and (once known) user."""

    def run(task_id: int, *args: P.args, **kwargs: P.kwargs) -> R:
        outer = structlog.contextvars.get_contextvars()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(task_id=f"T-{task_id}", job_id=_job_id())
        started = time.monotonic()
        outcome = "failed"
        try:
            result = func(task_id, *args, **kwargs)
            outcome = "done"
            return result
        finally:
            # RQ's own "completed" line comes after the context is gone; this one ties
            # the job's end to its task, user and job id.
            log.info("%s %s in %.1f s", func.__name__, outcome, time.monotonic() - started)
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(**outer)

    return cast("Callable[Concatenate[int, P], R]", functools.wraps(func)(run))


def _claim(ctx: JobContext, task_id: int, waiting: TaskState, running: TaskState) -> Task | None:
    """Move the task into `running` for this job, or tell the caller to stand down."""
    job_id = _job_id()
    with ctx.db.session() as session:
        try:
            task = get_task(session, task_id)
        except TaskNotFound:
            log.warning("T-%s vanished; nothing to do", task_id)
            return None
        structlog.contextvars.bind_contextvars(user=task.requester)
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


def _behind_fence(ctx: JobContext, task_id: int, running: TaskState) -> JobContext:
    """The context a job works on its claimed task with: every effect behind its fence."""
    fence = Fence(ctx.db, task_id, _job_id(), running)
    return dataclasses.replace(
        ctx,
        fence=fence,
        notifier=fence.guard(ctx.notifier, NOTIFIER_EFFECTS),
        workspaces=fence.guard(ctx.workspaces, WORKSPACE_EFFECTS),
        github=None if ctx.github is None else fence.guard(ctx.github, GITHUB_EFFECTS),
    )


def _moved(ctx: JobContext, state: TaskState) -> None:
    """This job moved its task to `state`; its fence follows."""
    if ctx.fence is not None:
        ctx.fence.follow(state)


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
    """Throttled progress lines and a cheap "was I cancelled?" check for one task.

    A line that comes sooner than `PROGRESS_INTERVAL_SECONDS` after the last one shown
    is held back, and shown once the interval has passed: at the next line, or at the
    next cancel check (agents poll that every fraction of a second, busy or quiet), so
    the progress message never lags behind for long.
    """

    def __init__(
        self, ctx: JobContext, task_id: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ctx = ctx
        self.task_id = task_id
        self._clock = clock
        self._last_sent: float | None = None
        self._pending: str | None = None
        self._last_poll: float | None = None
        self._cancelled = False

    def progress(self, line: str) -> None:
        self._pending = line
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        if self._pending is None:
            return
        if self._last_sent is None or self._clock() - self._last_sent >= PROGRESS_INTERVAL_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        line, self._pending = self._pending, None
        self._last_sent = self._clock()
        try:
            self.ctx.notifier.progress(self.task_id, line)
        except TaskLost:
            self._cancelled = True  # the agent stops as when cancelled; nothing more is shown
        except Exception:  # progress is best-effort; the work goes on
            log.warning("progress update for T-%s failed", self.task_id, exc_info=True)

    def cancelled(self) -> bool:
        self._flush_if_due()
        now = self._clock()
        if not self._cancelled and (
            self._last_poll is None or now - self._last_poll >= CANCEL_POLL_SECONDS
        ):
            self._last_poll = now
            with self.ctx.db.session() as session:
                task = get_task(session, self.task_id)
                fence = self.ctx.fence
                # A task cancelled, or lost to the reconciler or a newer job: stop.
                lost = fence is not None and not fence.owns(task)
                self._cancelled = lost or task.task_state == TaskState.CANCELLED
        return self._cancelled


def _fail(
    ctx: JobContext,
    task_id: int,
    source: TaskState,
    reason: str,
    *,
    result: dict[str, Any] | None = None,
    cost: float = 0.0,
) -> bool:
    """Fail the task this job still owns; True when this call moved it.

    A job that no longer owns the task (or finds it moved on) stands down, and so must
    whatever its caller would say about the failure anywhere else.
    """
    columns: dict[str, Any] = {"error": reason}
    with ctx.db.session() as session:
        task = _own(session, task_id)
        if task is None:
            return False
        if result is not None:
            columns["result"] = result
        if cost:
            columns["agent_cost_usd"] = task.agent_cost_usd + cost
        moved = transition(session, task_id, source, TaskState.FAILED, reason=reason, **columns)
    if moved:
        _moved(ctx, TaskState.FAILED)
        ctx.notifier.sync(task_id)
    return moved


def _own(session: Session, task_id: int) -> Task | None:
    """Lock the task's row and return it if this job still owns it, else None.

    A task can be handed to a newer job while an old one still runs (a retry, or
    reconciliation replacing a stuck job). Holding the row lock until the caller's
    transition commits makes "still mine?" and the move one step: the newer job's
    claim either happened before (and we stand down) or waits until we are done.
    """
    job_id = _job_id()
    try:
        task = get_task(session, task_id, for_update=True)
    except TaskNotFound:
        return None
    if job_id is not None and task.job_id not in (None, job_id):
        log.info("T-%s now belongs to job %s, not %s; standing down", task_id, task.job_id, job_id)
        return None
    return task


def _run_record(phase: str, run: AgentRun) -> dict[str, Any]:
    """What the task keeps of one agent run (shown on the cards)."""
    return {
        "phase": phase,
        "session_id": run.session_id,
        "turns": run.turns,
        "cost_usd": round(run.cost_usd, 6),
        "cost_known": run.cost_known,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "summary": run.summary[:500],
    }


def _test_run_dict(run: TestRun) -> dict[str, Any]:
    data = asdict(run)
    data["output_tail"] = run.output_tail[-1500:]
    return data


# -- planning --------------------------------------------------------------------------


@_log_context
@stops_when_lost
def plan_task(task_id: int) -> None:
    """Plan a queued task and put the plan up for approval."""
    task = _claim(current(), task_id, TaskState.QUEUED, TaskState.PLANNING)
    if task is None:
        return
    ctx = _behind_fence(current(), task_id, TaskState.PLANNING)
    ctx.notifier.sync(task_id)
    watch = _Watch(ctx, task_id)
    try:
        repo = _repo(ctx, task)
        # A change asked of the last plan makes this its next version (jobs.revisions).
        with ctx.db.session() as session:
            revision = revisions.revision_for(session, task)
            version = task.plan_version if revision is None else revision.version
            asked = revisions.change_requests(session, task_id, upto=version)
        brief = dataclasses.replace(brief_for(task, repo), change_requests=asked, revision=revision)
        pair = ctx.agents(repo)
        watch.progress("Preparing the workspace")
        workspace = ctx.workspaces.prepare(brief.repo, task.key)
        outcome = pair.planner.plan(brief, workspace, watch.progress, watch.cancelled)
        watch.flush()
        if watch.cancelled():
            return
        # Commit and push are fenced: a newer job's PLAN.md and pull request win.
        _record_plan(ctx, task, workspace, outcome.plan, version)
    except AgentError as exc:
        watch.flush()
        _fail(ctx, task_id, TaskState.PLANNING, f"Planning failed: {exc}")
        return
    previous = dict(task.result or {})
    result = {
        **previous,
        **_publish_plan(ctx, task, repo, outcome.plan, version),
        "agent_runs": [*previous.get("agent_runs", []), _run_record("plan", outcome.run)],
    }
    columns: dict[str, Any] = {
        "plan": outcome.plan.model_dump(),
        "plan_version": version,
        "result": result,
        "agent_cost_usd": task.agent_cost_usd + outcome.run.cost_usd,
    }
    revise_again = False
    with ctx.db.session() as session:
        owned = _own(session, task_id)
        moved = False
        if owned is not None:
            if version > owned.plan_version:
                columns["plan_ts"] = None  # a new version: a new message in the thread
            # A change asked for while this plan was being made is planned at once.
            revise_again = revisions.record_plan(session, owned, version, outcome.plan) is not None
            if revise_again:
                columns["job_id"] = ctx.queues.new_job_id(task_id, plan=True)
            moved = transition(
                session,
                task_id,
                TaskState.PLANNING,
                TaskState.QUEUED if revise_again else TaskState.AWAITING_APPROVAL,
                reason="plan ready" if not revise_again else f"plan v{version} ready; revising it",
                **columns,
            )
    if moved and revise_again:
        _moved(ctx, TaskState.QUEUED)
        ctx.queues.enqueue_phase_and_sync(task_id, str(columns["job_id"]), plan=True)
    elif moved:
        _moved(ctx, TaskState.AWAITING_APPROVAL)
        ctx.notifier.sync(task_id)


def _record_plan(ctx: JobContext, task: Task, workspace: Path, plan: Plan, version: int) -> None:
    """Commit PLAN.md on the task's branch and push it, so the plan is reviewable."""
    (workspace / PLAN_FILE).write_text(
        render_plan_markdown(task.key, task.description, plan, version=version)
    )
    which = f"plan v{version}" if version > 1 else "plan"
    ctx.workspaces.commit_all(workspace, f"docs: {which} for {task.key}\n\nTask: {task.key}")
    ctx.workspaces.push(workspace, task.key)


# -- pull requests ---------------------------------------------------------------------


def _github_for(ctx: JobContext, repo: RepoConfig) -> tuple[GitHub, str] | None:
    """The client and `owner/name` pull requests go to; None when the repo has no GitHub."""
    name = repo.pull_request_repo
    if ctx.github is None or name is None:
        return None
    return ctx.github, name


def pull_title(plan: Plan) -> str:
    """The pull request's title: the conventional-commit subject of the fix."""
    return conventional_subject("fix", commit_scope(plan.affected_files), plan.summary)


def _pull_links(ctx: JobContext, task_id: int, pull_repo: str) -> dict[str, str | None]:
    """Where a pull request points back to: the issue it closes and the Slack thread."""
    with ctx.db.session() as session:
        task = get_task(session, task_id)  # fresh: the card may have been posted since
    return {
        "closes": origin.issue_reference(task, pull_repo),
        "thread": origin.task_thread(ctx, task),
    }


def _publish_plan(
    ctx: JobContext, task: Task, repo: RepoConfig, plan: Plan, version: int = 1
) -> dict[str, Any]:
    """Open (or refresh) the task's draft pull request carrying the plan."""
    target = _github_for(ctx, repo)
    if target is None:
        return {"github": "unconfigured"}
    github, name = target
    try:
        pull = github.open_pull(
            name,
            head=ctx.workspaces.branch(task.key),
            base=repo.default_branch,
            title=pull_title(plan),
            body=render_pull_body(
                task.key,
                task.description,
                plan,
                None,
                version=version,
                **_pull_links(ctx, task.id, name),
            ),
            draft=True,
        )
    except GitHubError as exc:
        ctx.notifier.say(task.id, f":warning: The draft pull request could not be opened: {exc}")
        return {"github": "error", "github_error": str(exc)}
    return {
        "github": "ok",
        "plan_pr_url": pull.url,
        "pr_number": pull.number,
        "github_error": None,
    }


def _publish_ready(
    ctx: JobContext,
    task: Task,
    repo: RepoConfig,
    plan: Plan,
    verification: dict[str, Any],
) -> dict[str, Any]:
    """Put the plan and the evidence in the pull request and mark it ready for review."""
    target = _github_for(ctx, repo)
    if target is None:
        return {"github": "unconfigured"}
    github, name = target
    try:
        pull = github.open_pull(
            name,
            head=ctx.workspaces.branch(task.key),
            base=repo.default_branch,
            title=pull_title(plan),
            body=render_pull_body(
                task.key,
                task.description,
                plan,
                verification,
                version=task.plan_version,
                **_pull_links(ctx, task.id, name),
            ),
            draft=False,
        )
        github.mark_ready(pull)
    except GitHubError as exc:
        ctx.notifier.say(task.id, f":warning: The pull request could not be updated: {exc}")
        return {"github": "error", "github_error": str(exc)}
    return {"github": "ok", "pr_url": pull.url, "pr_number": pull.number, "github_error": None}


def _report_on_pull(ctx: JobContext, task: Task, repo: RepoConfig, text: str) -> None:
    """Tell the draft pull request why it stays a draft (best effort)."""
    target = _github_for(ctx, repo)
    number = (task.result or {}).get("pr_number")
    if target is None or not number:
        return
    try:
        target[0].comment(target[1], int(number), text)
    except GitHubError:
        log.warning("could not comment on the pull request of %s", task.key, exc_info=True)


def _no_mentions(text: str) -> str:
    # A plan or description must not ping people or teams on GitHub.
    return text.replace("@", "@\u200b")


def _fenced(text: str) -> str:
    # A fence longer than any run of backticks inside cannot be closed by the text.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def render_pull_body(
    key: str,
    description: str,
    plan: Plan,
    verification: dict[str, Any] | None,
    *,
    closes: str | None = None,
    thread: str | None = None,
    version: int = 1,
) -> str:
    """The pull request's body: the request, the plan, and what the bot itself verified.

    Args:
        key: The task's id (`T-12`).
        description: What was asked for.
        plan: The approved (or proposed) plan.
        verification: The bot's own test runs, once it has verified the fix.
        closes: The issue the task came from (`#7` or `owner/name#7`); merging closes it.
        thread: The link to the task's Slack thread.
        version: Which version of the plan it is (v2 after a change was asked for).
    """
    steps = [f"{n}. **{s.kind}**: {s.description}" for n, s in enumerate(plan.steps, 1)]
    changed = [f"**What changed:** {_no_mentions(plan.changes)}", ""] if plan.changes else []
    origin_lines = [f"Closes {closes}"] if closes else []
    if thread:
        origin_lines.append(f"Slack thread (plan, approval, progress): {thread}")
    lines = [
        f"Agentbot task **{key}**" + (f", from {closes}." if closes else "."),
        "",
        *([*origin_lines, ""] if origin_lines else []),
        "### Request",
        _fenced(description[:3000]),
        "",
        "### Plan" + (f" (v{version})" if version > 1 else ""),
        *changed,
        f"**Summary:** {_no_mentions(plan.summary)}",
        "",
        f"**Root cause:** {_no_mentions(plan.root_cause)}",
        "",
        "**Affected files:** " + (", ".join(f"`{f}`" for f in plan.affected_files) or "none"),
        "",
        *[_no_mentions(step) for step in steps],
        "",
        f"**Risk:** {plan.risk} · **Estimate:** {plan.estimated_minutes} min",
        "",
        "### Verification",
    ]
    if verification is None:
        lines.append(
            "Not run yet. This draft waits for approval in Slack; it is marked ready for "
            "review only after the bot has seen the new test fail and the whole suite pass."
        )
    else:
        lines += [
            "Run by Agentbot itself, not reported by the agent:",
            "",
            "| run | result |",
            "| --- | --- |",
        ]
        for label, name in (
            ("before", "tests_before"),
            ("RED", "tests_red"),
            ("GREEN", "tests_after"),
        ):
            run = verification.get(name) or {}
            lines.append(f"| {label}: `{run.get('command', '')}` | {_counts_text(run)} |")
        lines += [
            "",
            f"Agent: {verification.get('agent', '?')} · {verification.get('turns', 0)} turns · "
            f"{verification.get('cost', '?')} · {verification.get('duration_seconds', 0)} s",
        ]
    return "\n".join(lines) + "\n"


def _counts_text(run: dict[str, Any]) -> str:
    if not run:
        return "not run"
    text = f"{run.get('passed', 0)} passed, {run.get('failed', 0)} failed"
    if run.get("errors"):
        text += f", {run['errors']} errors"
    return text + (" (timed out)" if run.get("timed_out") else "")


def _drop_plan_file(workspace: Path, base: str) -> None:
    """Take PLAN.md out of the fix: the plan lives in the pull request's body instead.

    A PLAN.md the repository already had is restored, not deleted.
    """
    if git(["ls-tree", "--name-only", base, "--", PLAN_FILE], workspace).strip():
        git(["checkout", base, "--", PLAN_FILE], workspace)
    else:
        (workspace / PLAN_FILE).unlink(missing_ok=True)


def _drop_test_run_output(workspace: Path, made: list[FileChange], keep: set[str]) -> None:
    """Undo what the bot's test runs did to the worktree, except the files in `keep`.

    A file they created goes (the next run makes it again); a tracked file they changed
    or deleted is restored as the branch has it.
    """
    for change in made:
        if change.path in keep:
            continue
        if change.status == "A":
            (workspace / change.path).unlink(missing_ok=True)
        else:
            git(["checkout", "HEAD", "--", change.path], workspace)
        log.info("left %s out of the commit: the test command wrote it", change.path)


def render_plan_markdown(key: str, description: str, plan: Plan, *, version: int = 1) -> str:
    """PLAN.md as committed on the task's branch (the latest version of the plan)."""
    changed = ["## What changed", plan.changes, ""] if plan.changes else []
    lines = [
        f"# Plan v{version} for {key}" if version > 1 else f"# Plan for {key}",
        "",
        f"> {description.splitlines()[0][:300] if description else ''}",
        "",
        *changed,
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


@_log_context
@stops_when_lost
def execute_task(task_id: int) -> None:
    """Carry out an approved plan test-first, verifying RED and GREEN ourselves."""
    task = _claim(current(), task_id, TaskState.APPROVED, TaskState.EXECUTING)
    if task is None:
        return
    ctx = _behind_fence(current(), task_id, TaskState.EXECUTING)
    ctx.notifier.sync(task_id)
    if task.source == aws_actions.AWS_ACTION_SOURCE:
        # An approved change to AWS, not code: dry run, then the real call.
        aws_actions.execute_action_task(ctx, task)
        return
    watch = _Watch(ctx, task_id)
    # Stalls, the budget and messages from the thread, around the agent's phases.
    run = RunSupervisor(ctx, task_id, _job_id(), watch.progress, watch.cancelled)
    started = time.monotonic()
    cost = 0.0
    runs: list[dict[str, Any]] = list((task.result or {}).get("agent_runs", []))
    evidence: str | None = None
    repo: RepoConfig | None = None
    try:
        repo = _repo(ctx, task)
        with ctx.db.session() as session:
            asked = revisions.change_requests(session, task_id, upto=task.plan_version)
        brief = dataclasses.replace(brief_for(task, repo), change_requests=asked)
        plan = approved_plan(task.plan)
        pair = ctx.agents(repo)
        watch.progress("Preparing the workspace")
        workspace = ctx.workspaces.prepare(brief.repo, task.key)
        # The bot runs the repo's configured test command, never one an agent wrote.
        command = repo.test_command
        # The tests are the agent's code: they run with this task's agent home, not the
        # bot's nor another task's, in the sandbox, with no network but what the repo allows.
        agent_home = ctx.config.agent.home
        home = task_home(agent_home, workspace) if agent_home else None
        carried = ctx.config.environment_for(repo).carried()
        sandbox = ctx.sandbox.allowing(repo.test_endpoints)

        watch.progress(f"Running `{command}` before any change")
        baseline_from = snapshot(workspace)
        before = run_tests(
            command, workspace, TEST_TIMEOUT_SECONDS, home=home, carried=carried, sandbox=sandbox
        )
        check_baseline_ran(before)

        red_from = snapshot(workspace)
        # What the bot's own test runs write (a lock file, a generated module) is theirs,
        # not the agent's: it stays out of the fix unless the plan names it.
        made_by_runs = changes_between(workspace, baseline_from, red_from)
        red_run = pair.executor.write_failing_test(
            brief,
            plan,
            workspace,
            run.progress,
            run.cancelled,
            run.control(task.agent_cost_usd + cost),
        )
        cost += red_run.cost_usd
        runs.append(_run_record("red", red_run))
        if run.cancelled():
            if run.stall_reason:
                raise AgentError(run.stall_reason)
            return
        red_to = snapshot(workspace)
        red_changes = changes_between(workspace, red_from, red_to)
        check_red_changes(red_changes)
        watch.progress(f"Running `{command}` to see the new test fail")
        red = run_tests(
            command, workspace, TEST_TIMEOUT_SECONDS, home=home, carried=carried, sandbox=sandbox
        )
        watch.flush()
        evidence = red.output_tail[-EVIDENCE_LIMIT:]
        newly_failing = (red.failed + red.errors) > (before.failed + before.errors)
        if not red.red or not (before.green or newly_failing):
            raise AgentError(
                f"RED did not hold: after the new test was written the suite reported "
                f"{red.counts()} (exit {red.exit_code}; before: {before.counts()}); "
                "a new failing test was expected."
            )
        ctx.notifier.say(task_id, f":red_circle: RED as expected — `{command}`: {red.counts()}")

        green_from = snapshot(workspace)
        made_by_runs += changes_between(workspace, red_to, green_from)
        green_run = pair.executor.implement_fix(
            brief,
            plan,
            workspace,
            run.progress,
            run.cancelled,
            run.control(task.agent_cost_usd + cost),
        )
        cost += green_run.cost_usd
        runs.append(_run_record("green", green_run))
        if run.cancelled():
            if run.stall_reason:
                raise AgentError(run.stall_reason)
            return
        green_changes = changes_between(workspace, green_from, snapshot(workspace))
        check_green_changes(red_changes, green_changes)
        # GREEN tests the commit, not the worktree: files the pull request will not
        # carry (ignored or untracked) are gone before the suite runs. A commit that
        # fails stays local; the next attempt starts from the branch as pushed.
        base = f"origin/{repo.default_branch}"
        _drop_plan_file(workspace, base)
        _drop_test_run_output(
            workspace,
            made_by_runs,
            keep={c.path for c in (*red_changes, *green_changes)} | set(plan.affected_files),
        )
        subject = conventional_subject("fix", commit_scope(plan.affected_files), plan.summary)
        commit = ctx.workspaces.commit_all(
            workspace, f"{subject}\n\n{task.description[:2000]}\n\nTask: {task.key}"
        )
        # As a fresh clone on a fresh machine would: no cache the bot kept between runs
        # (.pytest_cache's last failures, a tool's stale build in the agent's home) may
        # change the outcome, so nothing untracked stays and HOME is a new, empty one.
        left_out = clean_worktree(workspace, keep=())
        watch.progress(f"Running `{command}` on the commit")
        green = run_tests(
            command, workspace, TEST_TIMEOUT_SECONDS, home=None, carried=carried, sandbox=sandbox
        )
        watch.flush()
        evidence = green.output_tail[-EVIDENCE_LIMIT:]
        if not green.green:
            raise VerificationFailed(
                f"GREEN did not hold: after the fix the suite reported {green.counts()} "
                f"(exit {green.exit_code}). Nothing was marked ready.",
                _green_evidence(left_out, green.output_tail),
            )
        check_green_kept_tests(before, red, green)
        ctx.notifier.say(task_id, f":large_green_circle: GREEN — `{command}`: {green.counts()}")

        diff = ctx.workspaces.diff_stat(workspace, base)
        out_of_scope = scope.outside_plan(diff.files, plan.affected_files)
        if out_of_scope and ctx.config.agent.scope == "refuse":
            raise AgentError(scope.refusal(out_of_scope))
        # Fenced: a job that lost the task to a newer one pushes nothing.
        ctx.workspaces.push(workspace, task.key)
    except AgentError as exc:
        watch.flush()
        if isinstance(exc, VerificationFailed):
            evidence = exc.evidence
        if isinstance(exc, BudgetStop):
            cost += exc.cost_usd
        reason = run.stall_reason or f"Execution failed: {exc}"
        failed = {**(task.result or {}), "agent_runs": runs, "evidence": evidence}
        moved = _fail(ctx, task_id, TaskState.EXECUTING, reason, result=failed, cost=cost)
        if moved and repo is not None and evidence is not None:
            _report_on_pull(
                ctx,
                task,
                repo,
                f"{reason}\n\nThe pull request stays a draft.\n\n{_fenced(evidence)}",
            )
        return
    duration = round(time.monotonic() - started, 1)
    verification = {
        "tests_before": _test_run_dict(before),
        "tests_red": _test_run_dict(red),
        "tests_after": _test_run_dict(green),
        "agent": pair.executor.name,
        "turns": sum(int(r.get("turns") or 0) for r in runs),
        "cost": _cost_text(task.agent_cost_usd + cost, runs),
        "duration_seconds": duration,
    }
    published = _publish_ready(ctx, task, repo, plan, verification)
    result = {
        **(task.result or {}),
        **published,
        "evidence": None,
        "agent_runs": runs,
        "branch": ctx.workspaces.branch(task.key),
        "commit": commit,
        "files_changed": diff.files,
        "out_of_scope": out_of_scope,
        "lines_added": diff.added,
        "lines_removed": diff.removed,
        "tests_before": _test_run_dict(before),
        "tests_red": _test_run_dict(red),
        "tests_after": _test_run_dict(green),
        "duration_seconds": duration,
        "agent": pair.executor.name,
        "scripted": pair.scripted,
    }
    with ctx.db.session() as session:
        moved = _own(session, task_id) is not None and transition(
            session,
            task_id,
            TaskState.EXECUTING,
            TaskState.SUCCEEDED,
            reason="verified green",
            result=result,
            agent_cost_usd=task.agent_cost_usd + cost,
        )
    if moved:
        _moved(ctx, TaskState.SUCCEEDED)
        ctx.notifier.sync(task_id)
        # Where the task came from (a GitHub issue) hears that it is ready.
        origin.report_success(ctx, task_id)


# -- verification: what the agent did, as the bot sees it --------------------------------


class VerificationFailed(AgentError):
    """The agent's work broke a rule the bot checks itself; `evidence` shows how."""

    def __init__(self, message: str, evidence: str) -> None:
        super().__init__(message)
        self.evidence = evidence[-EVIDENCE_LIMIT:]


def _listing(changes: list[FileChange]) -> str:
    shown = [str(change) for change in changes[:40]]
    more = [f"… and {len(changes) - 40} more"] if len(changes) > 40 else []
    return "\n".join(shown + more)


def _green_evidence(left_out: list[str], output: str) -> str:
    """GREEN's output, headed by the files its run went without (the commit lacks them).

    Caches are not named: every fresh clone lacks them, so they explain nothing.
    """
    left_out = [path for path in left_out if not _is_cache(path)]
    if not left_out:
        return output
    more = f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""
    shown = ", ".join(left_out[:10]) + more
    note = f"Not in the commit, so not in the tested tree: {shown}"[:500] + "\n\n"
    return note + output[-(EVIDENCE_LIMIT - len(note)) :]


def _is_cache(path: str) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern.rstrip("/")) for pattern in CACHE_PATTERNS)


def _names(changes: list[FileChange]) -> str:
    names = ", ".join(f"`{change.path}`" for change in changes[:5])
    return names + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")


def approved_plan(data: dict[str, Any] | None) -> Plan:
    """The task's approved plan, checked against today's rules (test first).

    Raises:
        AgentError: When the stored plan is no longer a valid plan.
    """
    problem = plan_problem(data)
    if problem is not None:
        raise AgentError(
            f"The approved plan cannot be carried out ({problem}); retry the task to have "
            "it planned again."
        )
    return Plan.model_validate(data)


def check_baseline_ran(before: TestRun) -> None:
    """The test command, run before any change, must reach at least one test.

    A command that collects nothing or stops before its first test (a wrong path, a
    missing tool, a broken conftest) is broken itself: RED and GREEN would be measured
    with it, so the task stops before any agent is paid to work.

    Raises:
        VerificationFailed: With the command's own output as evidence.
    """
    if before.ran:
        return
    how = "timed out" if before.timed_out else f"exit {before.exit_code}"
    raise VerificationFailed(
        f"The test command itself is broken: before any change `{before.command}` ran no "
        f"test ({how}, {before.counts()}). Fix the repo's test_command; the agent was not "
        "started.",
        before.output_tail,
    )


def check_red_changes(changes: list[FileChange]) -> None:
    """RED may add or change tests only: production code stays as it was.

    Raises:
        VerificationFailed: Listing the files RED changed when any is not a test.
    """
    production = [change for change in changes if not is_test_file(change.path)]
    if production:
        raise VerificationFailed(
            f"RED changed code that is not a test: {_names(production)}. The failing test "
            "must come first, with the code untouched; nothing was marked ready.",
            "Files the RED phase changed:\n" + _listing(changes),
        )


def check_green_changes(red: list[FileChange], green: list[FileChange]) -> None:
    """GREEN keeps the tests: it may add new test files, and change no other.

    A test file GREEN modifies, deletes or retypes existed before it: one RED wrote,
    or one the repository had (a conftest.py among them). Nor may GREEN bring back,
    rewritten, a test file RED deleted.

    Raises:
        VerificationFailed: Listing the test files GREEN removed or rewrote.
    """
    deleted_in_red = {change.path for change in red if change.status == "D"}
    tampered = [
        change
        for change in green
        if is_test_file(change.path) and (change.status != "A" or change.path in deleted_in_red)
    ]
    if tampered:
        raise VerificationFailed(
            f"GREEN deleted or rewrote tests: {_names(tampered)}. The fix must make the "
            "tests pass, not change them; nothing was marked ready.",
            "Files the GREEN phase changed:\n" + _listing(green),
        )


def check_green_kept_tests(before: TestRun, red: TestRun, green: TestRun) -> None:
    """Every test that ran before the change or in RED still passes after GREEN.

    Passing, failing and erroring tests all count: a test file RED could not even
    collect is at least one test GREEN must pass, so a RED made only of a collection
    error does not lower the bar to zero.

    Raises:
        VerificationFailed: When GREEN passed fewer tests than ran before it.
    """
    if red.ran >= before.ran:
        floor, than, when, counts = red.ran, "RED", "with the new test", red.counts()
    else:
        floor, than, when, counts = before.ran, "before", "before any change", before.counts()
    if green.passed < floor:
        raise VerificationFailed(
            f"GREEN ran fewer tests than {than}: {green.passed} passed after the fix, but "
            f"{floor} ran {when} ({counts}); tests were dropped or skipped, so nothing was "
            "marked ready.",
            green.output_tail,
        )


def _cost_text(total: float, runs: list[dict[str, Any]]) -> str:
    if runs and not all(r.get("cost_known", True) for r in runs):
        return "cost not reported"
    return f"${total:.2f}"


# -- Slack upkeep and failures ---------------------------------------------------------


@_log_context
def sync_task(task_id: int) -> None:
    """Bring the task's Slack card and thread up to date."""
    current().notifier.sync(task_id)


@_log_context
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
    """RQ failure callback: fail the task once its job has no retries left.

    Slack hears a readable reason only for the project's own errors; anything else is
    named by its type and logged in full for the operators.
    """
    task_id = int(job.args[0])
    structlog.contextvars.bind_contextvars(task_id=f"T-{task_id}", job_id=job.id)
    reason = failure_reason(task_id, exc_type, exc_value)
    log.error(
        "job %s of T-%s failed (%s)",
        job.id,
        task_id,
        "retrying" if job.retries_left else "no retries left",
        exc_info=(exc_type, exc_value, traceback) if exc_type and exc_value else None,
    )
    ctx = current()
    if job.retries_left:
        ctx.queues.enqueue_say(task_id, f":warning: Attempt failed: {reason} Retrying.")
        return
    with ctx.db.session() as session:
        try:
            task = get_task(session, task_id, for_update=True)
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


# Errors whose text is written for people: a short sentence with nothing secret in it.
READABLE_ERRORS: tuple[type[BaseException], ...] = (AgentbotError, AgentError, JobTimeoutException)
REASON_LIMIT = 300


def failure_reason(
    task_id: int, exc_type: type[BaseException] | None, exc_value: BaseException | None
) -> str:
    """Why a job failed, in words fit for Slack.

    Only the project's own errors (and RQ's timeout) carry a message meant for people.
    Any other exception may embed SQL and its parameters, a remote URL with
    credentials, or a token, so only its type is shown.

    Args:
        task_id: The task whose job failed.
        exc_type: The exception's type, as RQ reports it.
        exc_value: The exception.

    Returns:
        One or two short sentences.
    """
    if isinstance(exc_value, READABLE_ERRORS):
        text = " ".join(str(exc_value).split())[:REASON_LIMIT] or type(exc_value).__name__
        return text if text.endswith((".", "!", "?")) else text + "."
    kind = exc_type.__name__ if exc_type is not None else "unknown error"
    return f"An internal error ({kind}) stopped T-{task_id}; the operators' logs have the details."
