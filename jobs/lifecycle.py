"""What people can do to tasks: request, approve, reject, cancel, retry.

Each operation validates, writes in one transaction, and enqueues; none of them talks
to Slack. Refusals raise a domain error whose message is shown to the user as it is.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from agents.base import Plan
from jobs.access import AccessPolicy
from jobs.aws.actions import AWS_ACTION_SOURCE
from jobs.config import AgentbotConfig, RepoConfig
from jobs.db import Database
from jobs.exceptions import BadRequest, Conflict, LimitReached, NotAllowed, Unavailable
from jobs.limits import check_limits, count_refusal
from jobs.models import Approval, Task, utcnow
from jobs.queues import Queues
from jobs.revisions import check_current, request_change
from jobs.states import CANCELLABLE, TaskState
from jobs.tasks import create_task, get_task, transition

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 8000
# What Slack's modals accept for a reason or a comment.
MAX_COMMENT = 2000
# What `/agent reject T-12` without a reason records, so the audit trail has no blank.
NO_REASON = "no reason given"


def checked_text(value: str, what: str, limit: int) -> str:
    """Text a person typed, if the database can store it as it is.

    Raises:
        BadRequest: A NUL or a lone surrogate (which PostgreSQL refuses), or more than
            `limit` characters.
    """
    if "\x00" in value or _unencodable(value):
        raise BadRequest(
            f"The {what} holds a character Agentbot cannot store (a NUL or a lone "
            "surrogate); remove it and try again."
        )
    if len(value) > limit:
        raise BadRequest(f"The {what} is too long (over {limit} characters).")
    return value


def _unencodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def plan_problem(data: Mapping[str, Any] | None) -> str | None:
    """Why a stored plan can no longer be carried out under today's rules, or None.

    Execution (`jobs.work.approved_plan`) and retry judge a plan by this one check.
    """
    try:
        Plan.model_validate(data)
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return None


@dataclass(frozen=True)
class Decision:
    """The result of an approval: whether it moved the task, and what is still needed."""

    task: Task
    moved: bool
    approvals: int
    required: int


class Lifecycle:
    """The task lifecycle's entry points, wired with explicit collaborators."""

    def __init__(
        self, db: Database, queues: Queues, config: AgentbotConfig, access: AccessPolicy
    ) -> None:
        self.db = db
        self.queues = queues
        self.config = config
        self.access = access

    # -- requesting -------------------------------------------------------------------

    def resolve_repo(self, name: str | None, channel: str | None) -> RepoConfig:
        """The repo a request names, or the channel's / only one.

        Raises:
            BadRequest: Unknown repo, or none could be chosen.
        """
        if name:
            repo = self.config.repo(name)
            if repo is None:
                known = ", ".join(r.name for r in self.config.repos) or "none configured"
                raise BadRequest(f"Unknown repo `{name[:100]}`. Known repos: {known}.")
            return repo
        repo = self.config.default_repo(channel)
        if repo is None:
            if not self.config.repos:
                raise BadRequest("No repos are configured yet; add one to the config file.")
            raise BadRequest("Which repo? Add `--repo owner/name`.")
        return repo

    def request(
        self,
        *,
        description: str,
        requester: str,
        channel: str,
        repo_name: str | None = None,
        source: str = "slack",
        source_ref: str | None = None,
        source_data: dict[str, object] | None = None,
        check_access: bool = True,
        guard: Callable[[Session], None] | None = None,
    ) -> Task:
        """Create a task and queue its planning.

        `guard`, when given, runs in the creating transaction just before the insert;
        if it raises, nothing is written. Webhooks use it to claim their delivery and
        refuse a duplicate atomically with the creation.

        Raises:
            NotAllowed: The requester is not allowed to start tasks.
            BadRequest: Empty or oversized description, unknown repo.
            LimitReached: A limit of `[limits]` refuses more tasks for now.
        """
        if check_access and not self.access.may_request(requester):
            raise NotAllowed("You are not on the list of people who can start tasks.")
        description = checked_text(description.strip(), "description", MAX_DESCRIPTION)
        if not description:
            raise BadRequest("Describe the work: `/agent run <description> [--repo owner/name]`.")
        repo = self.resolve_repo(repo_name, channel)
        try:
            with self._session() as session:
                if guard is not None:
                    guard(session)
                limits = functools.partial(
                    check_limits,
                    session,
                    self.config.limits,
                    requester=requester,
                    source=source,
                )
                # A first look, without the lock: a flood is refused before it writes.
                limits(locking=False)
                task = create_task(
                    session,
                    description=description,
                    repo=repo.name,
                    requester=requester,
                    channel=channel,
                    source=source,
                    source_ref=source_ref,
                    source_data=dict(source_data) if source_data else None,
                )
                task.job_id = self.queues.new_job_id(task.id, plan=True)
                if self.db.is_postgres:
                    # The count that holds: under the lock, which the commit releases, so
                    # the task is written before the lock is taken (see jobs.limits).
                    session.flush()
                    limits(locking=True, excluding=task.id)
        except LimitReached as refused:
            log.info("refused a task by %s", refused.limit)
            count_refusal(self.queues.redis, refused.limit)
            raise
        self._enqueue(task.id, task.job_id, plan=True)
        return task

    # -- deciding ---------------------------------------------------------------------

    def approve(
        self,
        task_id: int,
        user: str,
        comment: str | None = None,
        *,
        plan_version: int | None = None,
    ) -> Decision:
        """Record an approval of the current plan version; the N-th distinct approver moves it.

        Args:
            task_id: The task.
            user: Who approves.
            comment: What they said with it.
            plan_version: The version the click was on; None (a command) is the latest.

        Raises:
            NotAllowed: The user may not approve this task.
            Conflict: The task is not awaiting approval (already decided, cancelled…),
                or `plan_version` was superseded.
        """
        if comment is not None:
            comment = checked_text(comment, "comment", MAX_COMMENT)
        required = self.config.access.approvals_required
        self._require_decider(task_id, user)
        with self._session() as session:
            # The row lock serializes approvers of one task, so N racing approvals
            # are counted one after another and exactly one of them moves it.
            task = get_task(session, task_id, for_update=True)
            check_current(task, plan_version)
            version = task.plan_version
            already = session.execute(
                select(Approval.id).where(
                    Approval.task_id == task_id,
                    Approval.plan_version == version,
                    Approval.user_id == user,
                    Approval.decision == "approve",
                )
            ).first()
            if already is not None:
                raise Conflict(f"You already approved {task.key}.")
            self._check_awaiting(task)
            session.add(
                Approval(
                    task_id=task_id,
                    user_id=user,
                    decision="approve",
                    comment=comment,
                    plan_version=version,
                )
            )
            session.flush()
            # Approvals of an earlier version were of another plan: they do not count.
            count = session.execute(
                select(func.count(func.distinct(Approval.user_id))).where(
                    Approval.task_id == task_id,
                    Approval.plan_version == version,
                    Approval.decision == "approve",
                )
            ).scalar_one()
            moved = False
            job_id = self.queues.new_job_id(task_id, plan=False)
            if count >= required:
                moved = transition(
                    session,
                    task_id,
                    TaskState.AWAITING_APPROVAL,
                    TaskState.APPROVED,
                    actor=user,
                    reason=comment or "approved",
                    approved_at=utcnow(),
                    job_id=job_id,
                )
                if not moved:
                    raise Conflict(f"{task.key} was decided a moment ago.")
            session.refresh(task)
        if moved:
            self._enqueue(task_id, job_id, plan=False)
        else:
            self.queues.enqueue_sync(task_id)
        return Decision(task=task, moved=moved, approvals=count, required=required)

    def reject(
        self, task_id: int, user: str, reason: str, *, plan_version: int | None = None
    ) -> Task:
        """Reject a plan; one approver's rejection ends the task.

        Where a reason is optional (the slash command), the caller passes `NO_REASON`;
        the Reject modal and GitHub comments ask for one, so a blank one is refused.

        Raises:
            NotAllowed: The user may not reject this task.
            Conflict: The task is not awaiting approval.
            BadRequest: A blank reason.
        """
        reason = checked_text(reason.strip(), "reason", MAX_COMMENT)
        if not reason:
            raise BadRequest("Say why you reject it: `/agent reject T-12 <reason>`.")
        self._require_decider(task_id, user)
        with self._session() as session:
            task = get_task(session, task_id, for_update=True)
            check_current(task, plan_version)
            self._check_awaiting(task)
            session.add(
                Approval(
                    task_id=task_id,
                    user_id=user,
                    decision="reject",
                    comment=reason,
                    plan_version=task.plan_version,
                )
            )
            if not transition(
                session,
                task_id,
                TaskState.AWAITING_APPROVAL,
                TaskState.REJECTED,
                actor=user,
                reason=reason,
            ):
                raise Conflict(f"{task.key} was decided a moment ago.")
            session.refresh(task)
        self.queues.enqueue_sync(task_id)
        return task

    def request_changes(
        self, task_id: int, user: str, feedback: str, *, plan_version: int | None = None
    ) -> int:
        """Send the plan back to the planner with what to change; returns the version asked for.

        Awaiting approval, the task is queued for planning at once (its buttons go);
        while a plan is still being made, the request waits for it to be done.

        Raises:
            NotAllowed: Neither its requester nor an approver.
            BadRequest: A blank or oversized request.
            Conflict: No plan that can change, a superseded `plan_version`, or the
                revision cap reached.
        """
        feedback = checked_text(feedback.strip(), "change request", MAX_COMMENT)
        if not feedback:
            raise BadRequest("Say what to change in the plan.")
        self._require_requester_or_approver(task_id, user, "change the plan of")
        with self._session() as session:
            task = get_task(session, task_id, for_update=True)
            if task.task_state == TaskState.AWAITING_APPROVAL:
                check_current(task, plan_version)
            asked = request_change(
                session, task, user, feedback, max_revisions=self.config.agent.max_plan_revisions
            )
            job_id = self.queues.new_job_id(task_id, plan=True)
            if asked.revise_now and not transition(
                session,
                task_id,
                TaskState.AWAITING_APPROVAL,
                TaskState.QUEUED,
                actor=user,
                reason=f"changes requested for plan v{asked.version}",
                job_id=job_id,
            ):
                raise Conflict(f"{task.key} was decided a moment ago.")
            key = task.key
        previous = asked.version - 1
        if asked.revise_now:
            self._enqueue(task_id, job_id, plan=True)
            note = f"the planner is writing v{asked.version}."
        else:
            note = f"v{asked.version} follows once the plan being made is done."
        self._say(
            task_id, f":pencil2: <@{user}> asked for changes to plan v{previous} of {key}; {note}"
        )
        return asked.version

    def _requester_of(self, task_id: int) -> str:
        # Read without a lock: the requester of a task never changes.
        with self._session() as session:
            return get_task(session, task_id).requester

    def _require_decider(self, task_id: int, user: str) -> None:
        # Before any transaction: deciding may ask Slack who is in a user group (a
        # network call with retries), which must not happen while the task is locked.
        refusal = self.access.approval_refusal(user, self._requester_of(task_id))
        if refusal is not None:
            raise NotAllowed(refusal)

    def _require_requester_or_approver(self, task_id: int, user: str, what: str) -> None:
        # As above: membership is settled before the row is locked.
        if not self.access.may_cancel(user, self._requester_of(task_id)):
            raise NotAllowed(f"Only the requester or an approver can {what} a task.")

    @staticmethod
    def _check_awaiting(task: Task) -> None:
        if task.task_state != TaskState.AWAITING_APPROVAL:
            raise Conflict(f"{task.key} is {task.task_state.label}, not awaiting approval.")

    # -- stopping and restarting -------------------------------------------------------

    def cancel(self, task_id: int, user: str) -> Task:
        """Stop a task wherever it is, killing its running job.

        Raises:
            NotAllowed: Neither its requester nor an approver.
            Conflict: The task already ended.
        """
        self._require_requester_or_approver(task_id, user, "cancel")
        with self._session() as session:
            task = get_task(session, task_id, for_update=True)
            state = task.task_state
            if state not in CANCELLABLE or not transition(
                session, task_id, state, TaskState.CANCELLED, actor=user, reason="cancelled"
            ):
                raise Conflict(f"{task.key} is {state.label}; there is nothing to cancel.")
            job_id = task.job_id
            session.refresh(task)
        if job_id:
            self.queues.stop(job_id)
        self.queues.enqueue_sync(task_id)
        return task

    def retry(self, task_id: int, user: str) -> Task:
        """Re-run a failed task: execution again if its plan was approved, else planning.

        An approved plan that today's rules no longer accept cannot be executed, so it
        is dropped with its approvals: the task is planned afresh and decided again.

        Raises:
            NotAllowed: Neither its requester nor an approver.
            Conflict: The task has not failed.
        """
        self._require_requester_or_approver(task_id, user, "retry")
        with self._session() as session:
            task = get_task(session, task_id, for_update=True)
            if task.task_state != TaskState.FAILED:
                raise Conflict(f"{task.key} is {task.task_state.label}; only failed tasks retry.")
            approved = task.approved_at is not None and task.plan is not None
            # An AWS action's plan comes from its recommendation, never from a planner.
            stale = (
                plan_problem(task.plan) if approved and task.source != AWS_ACTION_SOURCE else None
            )
            execute = approved and stale is None
            target = TaskState.APPROVED if execute else TaskState.QUEUED
            job_id = self.queues.new_job_id(task_id, plan=not execute)
            fresh: dict[str, object] = {"error": None, "outcome_ts": None, "progress_ts": None}
            if not execute:
                fresh |= {"plan": None, "plan_ts": None, "approved_at": None}
                # Approvals were of the plan just dropped; the new plan needs its own.
                session.execute(
                    delete(Approval).where(
                        Approval.task_id == task_id, Approval.decision == "approve"
                    )
                )
            if not transition(
                session,
                task_id,
                TaskState.FAILED,
                target,
                actor=user,
                reason="retry",
                finished_at=None,
                job_id=job_id,
                **fresh,
            ):
                raise Conflict(f"{task.key} was retried a moment ago.")
            session.refresh(task)
        self._enqueue(task_id, job_id, plan=not execute)
        if stale is not None:
            self._say(
                task_id,
                f":memo: The approved plan no longer holds ({stale}), so {task.key} is "
                "planned again; the new plan needs approval.",
            )
        return task

    # -- plumbing -----------------------------------------------------------------------

    def _enqueue(self, task_id: int, job_id: str, *, plan: bool) -> None:
        # From here on, the request's lines name the task and the job now carrying it,
        # as the job's own lines do (jobs.work), so both sides can be found together.
        # (The same binding as bot.logging.bind_task, which jobs cannot import.)
        structlog.contextvars.bind_contextvars(task_id=f"T-{task_id}", job_id=job_id)
        # The task and its job id are committed before the job exists; if Redis is
        # down here the reconciler finds the task without its job and queues it again.
        try:
            self.queues.enqueue_phase_and_sync(task_id, job_id, plan=plan)
        except Exception:
            log.exception("could not enqueue T-%s; the reconciler will pick it up", task_id)
            return
        phase = "planning" if plan else "execution"
        log.info("queued T-%s for %s as job %s", task_id, phase, job_id)

    def _say(self, task_id: int, text: str) -> None:
        # Best effort, like the sync: the task has already moved.
        try:
            self.queues.enqueue_say(task_id, text)
        except Exception:
            log.exception("could not queue a message for T-%s", task_id)

    def _session(self) -> _GuardedSession:
        return _GuardedSession(self.db)


class _GuardedSession:
    """A database session whose connection failures read as `Unavailable`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._context = db.session()

    def __enter__(self) -> Session:
        try:
            return self._context.__enter__()
        except OperationalError as exc:
            raise Unavailable() from exc

    def __exit__(self, *exc_info: object) -> bool | None:
        try:
            return self._context.__exit__(*exc_info)  # type: ignore[arg-type]
        except OperationalError as exc:
            raise Unavailable() from exc
