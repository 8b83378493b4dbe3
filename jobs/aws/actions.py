"""Savings recommendations turned into AWS changes, through the same approval gate as code.

An action is a task with `source = "aws-action"`. Its plan is built at once from the
recommendation (there is nothing for an agent to discover): the summary says what
will change, the root cause is the evidence, the steps are check, dry run, change
and verify, and the "test command" is the dry run. The task then waits for approval
exactly like a code task - the same buttons, approvers and number of approvals - and
an approved action runs on the execute queue (`jobs.work.execute_task` hands it to
`execute_action_task`).

Actions are off unless `[cost.actions] enabled = true`, and only the kinds in
`allowed` may be created or executed. Approval is skipped only for the kinds an
operator lists in `[cost.actions] auto_approve`, and only while the steward's
autonomy is at least `autonomy_threshold`: the action is then approved by Agentbot
itself as it is created, and its thread says so. Nothing is listed by default, so
irreversible changes (deleting a volume, releasing an address) always wait for
approvers unless named there. The configuration is read again when the action
executes: a kind no longer allowed, or an unapproved action whose kind no longer
qualifies, changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select

from agents.aws.actions import ActionError, ActionSpec, execute_action
from agents.aws.config import AwsConfig
from agents.aws.cost_config import IRREVERSIBLE, ActionKind
from agents.aws.optimize import STEWARD_TYPE, Recommendation
from agents.aws.sessions import AccountSessions, AssumeRoleError
from agents.base import Plan, PlanStep
from jobs.access import AccessPolicy
from jobs.config import AgentbotConfig
from jobs.context import JobContext
from jobs.db import Database
from jobs.exceptions import BadRequest, Conflict, NotAllowed
from jobs.models import Task, utcnow
from jobs.queues import Queues
from jobs.states import TERMINAL, TaskState
from jobs.tasks import SYSTEM_ACTOR, create_task, transition

log = logging.getLogger(__name__)

AWS_ACTION_SOURCE = "aws-action"
ACTIONS_OFF = (
    "AWS actions are turned off. An operator can enable them with `[cost.actions] "
    "enabled = true` in the config file."
)

_VERBS = {
    ActionKind.STOP_INSTANCE: "Stop instance",
    ActionKind.DELETE_VOLUME: "Snapshot, then delete volume",
    ActionKind.RELEASE_ADDRESS: "Release Elastic IP",
    ActionKind.MIGRATE_GP3: "Migrate volume from gp2 to gp3",
}
_RISK: dict[ActionKind, Any] = {
    ActionKind.STOP_INSTANCE: "medium",
    ActionKind.DELETE_VOLUME: "medium",
    ActionKind.RELEASE_ADDRESS: "medium",
    ActionKind.MIGRATE_GP3: "low",
}
_CALLS = {
    ActionKind.STOP_INSTANCE: "StopInstances",
    ActionKind.DELETE_VOLUME: "CreateSnapshot, DeleteVolume",
    ActionKind.RELEASE_ADDRESS: "ReleaseAddress",
    ActionKind.MIGRATE_GP3: "ModifyVolume",
}
_CHECKS = {
    ActionKind.STOP_INSTANCE: "{id} is still running",
    ActionKind.DELETE_VOLUME: "{id} is still attached to nothing",
    ActionKind.RELEASE_ADDRESS: "{id} is still associated with nothing",
    ActionKind.MIGRATE_GP3: "{id} is still gp2",
}
_CHANGES = {
    ActionKind.STOP_INSTANCE: "Stop {id} (its volumes and data are kept; it can be started again)",
    ActionKind.DELETE_VOLUME: (
        "Snapshot {id}, wait for the snapshot to complete, then delete the volume "
        "(restorable from the snapshot)"
    ),
    ActionKind.RELEASE_ADDRESS: "Release {id} (the address itself cannot be taken back)",
    ActionKind.MIGRATE_GP3: (
        "Modify {id} to gp3 with at least gp2's baseline IOPS and throughput, in place "
        "(no downtime)"
    ),
}
_VERIFY = {
    ActionKind.STOP_INSTANCE: "Read {id} back: stopping or stopped",
    ActionKind.DELETE_VOLUME: "Read {id} back: gone; the snapshot completed",
    ActionKind.RELEASE_ADDRESS: "Read {id} back: no longer allocated",
    ActionKind.MIGRATE_GP3: "Read {id} back: a modification to gp3 is under way or done",
}


def action_plan(kind: ActionKind, rec: Recommendation) -> Plan:
    """The plan approvers see for an action built from a recommendation."""
    resource = rec.resource_id
    saving = (
        f"about ${rec.monthly_savings:,.2f}/month"
        if rec.monthly_savings is not None
        else "an amount the price table cannot estimate"
    )
    return Plan(
        summary=(
            f"{_VERBS[kind]} {rec.label} in {rec.account}/{rec.region}; saves {saving} "
            "(estimated at list prices)."
        ),
        root_cause=f"{rec.finding.label}: {rec.evidence}.",
        affected_files=[],
        steps=[
            PlanStep(kind="verify", description="Check that " + _CHECKS[kind].format(id=resource)),
            PlanStep(
                kind="test",
                description=f"Dry run: {_CALLS[kind]} with DryRun=True must answer "
                "DryRunOperation (allowed) before anything changes",
            ),
            PlanStep(kind="implement", description=_CHANGES[kind].format(id=resource)),
            PlanStep(kind="verify", description=_VERIFY[kind].format(id=resource)),
        ],
        test_command=f"{_CALLS[kind]} (DryRun=True) on {resource}",
        risk=_RISK[kind],
        estimated_minutes=5 if kind == ActionKind.DELETE_VOLUME else 1,
    )


def _autonomy(config: AgentbotConfig, aws: AwsConfig, kind: ActionKind) -> tuple[bool, str]:
    """Whether the steward may take this kind of action without approval, and why."""
    actions = config.cost.actions
    steward = aws.steward_for(STEWARD_TYPE)
    if not actions.runs_unapproved(kind, steward.autonomy):
        return False, ""
    irreversible = " (irreversible, and listed in auto_approve)" if kind in IRREVERSIBLE else ""
    return True, (
        f"Runs without approval: {kind.value}{irreversible} is auto-approved for steward "
        f"{steward.name}, whose autonomy {steward.autonomy} is at or above the configured "
        f"threshold {actions.autonomy_threshold}."
    )


def create_action(
    db: Database,
    queues: Queues,
    config: AgentbotConfig,
    access: AccessPolicy,
    recommendation_id: int,
    *,
    user: str,
    channel: str,
) -> Task:
    """Turn a stored recommendation into an action task awaiting approval.

    Raises:
        NotAllowed: Actions are off, this kind is not allowed, or the user may not
            start tasks.
        BadRequest: No such recommendation, or it is advice only.
        Conflict: An open action already proposes the same change.
    """
    actions = config.cost.actions
    if not actions.enabled:
        raise NotAllowed(ACTIONS_OFF)
    if not access.may_request(user):
        raise NotAllowed("You are not on the list of people who can start tasks.")
    aws = config.aws
    if aws is None:
        raise BadRequest("AWS is not configured for this Agentbot.")
    from jobs.aws.savings import load_recommendation  # the report side; not needed to execute

    with db.session() as session:
        rec = load_recommendation(session, recommendation_id)
    if rec is None:
        raise BadRequest("That recommendation is no longer known; run `/agent aws optimize`.")
    kind = rec.action
    if kind is None:
        raise BadRequest(f"{rec.finding.label} is advice only: there is no action for it.")
    if kind not in actions.allowed:
        raise NotAllowed(f"{kind.value} actions are not allowed by the configuration.")
    plan = action_plan(kind, rec)
    autonomous, why = _autonomy(config, aws, kind)
    steward = aws.steward_for(STEWARD_TYPE)
    spec = ActionSpec(
        kind=kind, account=rec.account, region=rec.region, resource_id=rec.resource_id
    )
    source_ref = f"{kind.value}:{rec.account}:{rec.region}:{rec.resource_id}"[:200]
    job_id: str | None = None
    with db.session() as session:
        if db.is_postgres:
            # Serialises two clicks on the same recommendation: the second sees the first.
            session.execute(select(func.pg_advisory_xact_lock(func.hashtext(source_ref))))
        open_task = session.execute(
            select(Task).where(
                Task.source == AWS_ACTION_SOURCE,
                Task.source_ref == source_ref,
                Task.state.not_in([s.value for s in TERMINAL]),
            )
        ).scalar_one_or_none()
        if open_task is not None:
            raise Conflict(f"{open_task.key} already proposes this change.")
        task = create_task(
            session,
            description=plan.summary,
            repo=f"aws:{rec.account}/{rec.region}"[:200],
            requester=user,
            channel=channel,
            source=AWS_ACTION_SOURCE,
            source_ref=source_ref,
            source_data={
                "action": spec.model_dump(mode="json"),
                "recommendation_id": recommendation_id,
                "finding": rec.finding.value,
                "monthly_savings": rec.monthly_savings,
                "evidence": rec.evidence,
                "steward": steward.name,
                "autonomy": steward.autonomy,
                "autonomous": autonomous,
                "autonomy_note": why,
            },
        )
        transition(session, task.id, TaskState.QUEUED, TaskState.PLANNING, actor=user)
        transition(
            session,
            task.id,
            TaskState.PLANNING,
            TaskState.AWAITING_APPROVAL,
            reason="action plan built from a savings recommendation",
            plan=plan.model_dump(),
        )
        if autonomous:
            job_id = queues.new_job_id(task.id, plan=False)
            transition(
                session,
                task.id,
                TaskState.AWAITING_APPROVAL,
                TaskState.APPROVED,
                actor=SYSTEM_ACTOR,
                reason=why,
                approved_at=utcnow(),
                job_id=job_id,
            )
        session.refresh(task)
    try:
        queues.enqueue_sync(task.id)
        if job_id is not None:
            queues.enqueue_say(task.id, f":robot_face: {why}")
            queues.enqueue_execute(task.id, job_id)
    except Exception:
        log.exception("could not enqueue %s; the reconciler will pick it up", task.key)
    return task


def execute_action_task(ctx: JobContext, task: Task) -> None:
    """Carry out an approved action (the task is already `executing`) and record the result."""
    data = dict(task.source_data or {})
    try:
        spec = ActionSpec.model_validate({**data["action"], "reference": task.key})
    except (KeyError, ValueError):
        _finish(ctx, task, ok=False, error="The action's description is unreadable.", result={})
        return
    actions = ctx.config.cost.actions
    if not actions.enabled:
        _finish(ctx, task, ok=False, error=ACTIONS_OFF + " Nothing was changed.", result={})
        return
    if spec.kind not in actions.allowed:
        _finish(
            ctx,
            task,
            ok=False,
            error=f"{spec.kind.value} actions are no longer allowed by the configuration; "
            "nothing was changed.",
            result={},
        )
        return
    aws = ctx.config.aws
    if data.get("autonomous") and aws is not None and not _autonomy(ctx.config, aws, spec.kind)[0]:
        # Approved by Agentbot under a configuration that has changed since: nobody
        # approved this change under the rules now in force.
        _finish(
            ctx,
            task,
            ok=False,
            error=f"{spec.kind.value} no longer runs without approval under the current "
            "configuration; nothing was changed. Create the action again to ask approvers.",
            result={},
        )
        return
    account = next((a for a in (aws.accounts if aws else []) if a.name == spec.account), None)
    if aws is None or account is None or ctx.aws_session is None:
        _finish(
            ctx,
            task,
            ok=False,
            error=f"The account {spec.account} is no longer configured; nothing was changed.",
            result={},
        )
        return
    ctx.notifier.progress(task.id, f"Checking {spec.resource_id}, then a dry run")
    try:
        base = ctx.aws_session()
        ec2 = AccountSessions(base, aws).clients(account, spec.region).ec2()
        outcome = execute_action(ec2, spec)
    except ActionError as error:
        _finish(
            ctx,
            task,
            ok=False,
            error=str(error),
            result={"steps": error.result.steps, "changed": error.changed},
        )
        return
    except AssumeRoleError as error:
        _finish(ctx, task, ok=False, error=f"{error}; nothing was changed.", result={})
        return
    _finish(ctx, task, ok=True, error=None, result=outcome.model_dump(mode="json"))


def _finish(
    ctx: JobContext, task: Task, *, ok: bool, error: str | None, result: dict[str, Any]
) -> None:
    target = TaskState.SUCCEEDED if ok else TaskState.FAILED
    columns: dict[str, Any] = {"result": {**(task.result or {}), "action": result}}
    if error is not None:
        columns["error"] = error
    with ctx.db.session() as session:
        moved = transition(
            session,
            task.id,
            TaskState.EXECUTING,
            target,
            reason=(result.get("summary") or "action done") if ok else error,
            **columns,
        )
    if moved:
        ctx.notifier.sync(task.id)
