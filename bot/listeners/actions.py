"""Plan and card buttons: Approve, with comment, Request changes, Reject, Cancel, Retry.

A plan's buttons name the plan version they were shown on (`blocks.plan_value`), so a
click on a superseded version is refused rather than taken for the latest.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from bot import blocks
from bot.home.listener import from_home, tell_on_home
from bot.listeners.fields import button_value, channel_of, plan_ref_of, task_id_of, user_of
from bot.services import Services
from jobs.exceptions import BadRequest, Conflict, NotAllowed
from jobs.revisions import check_cap, check_current
from jobs.states import TaskState
from jobs.tasks import get_task


def _task_id(body: dict[str, Any]) -> int:
    return task_id_of(button_value(body))


def _tell(services: Services, body: dict[str, Any], respond: Respond, text: str) -> None:
    if from_home(body):
        tell_on_home(services, body, f":information_source: {text}")
        return
    respond(text=text, response_type="ephemeral", replace_original=False)


def register(app: App, services: Services) -> None:
    """Register the button handlers."""

    @app.action(blocks.APPROVE)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        # The work (one transaction and an enqueue) fits well inside Slack's three
        # seconds; acknowledging after it lets a failure reach the error handler first.
        task_id, version = plan_ref_of(button_value(body))
        decision = services.lifecycle.approve(task_id, user_of(body), plan_version=version)
        ack()
        if not decision.moved:
            _tell(
                services,
                body,
                respond,
                f"Your approval of {decision.task.key} is recorded "
                f"({decision.approvals} of {decision.required}).",
            )

    def open_reason_modal(
        ack: Ack, body: dict[str, Any], client: WebClient, *, approve: bool | None
    ) -> None:
        """Open the modal asking why (Reject), a comment (Approve) or what to change (None)."""
        user = user_of(body)
        task_id, version = plan_ref_of(button_value(body))
        trigger_id = body.get("trigger_id")
        if not isinstance(trigger_id, str) or not trigger_id:
            raise BadRequest("Slack sent no way to open the form; please click again.")
        with services.db.session() as session:
            task = get_task(session, task_id)
        # Refuse before asking for a reason nobody may give.
        if approve is None:
            if not services.access.may_cancel(user, task.requester):
                raise NotAllowed("Only the requester or an approver can change the plan of a task.")
            check_cap(task, task.plan_version + 1, services.config.agent.max_plan_revisions)
        else:
            refusal = services.access.approval_refusal(user, task.requester)
            if refusal is not None:
                raise NotAllowed(refusal)
        check_current(task, version)
        if task.task_state != TaskState.AWAITING_APPROVAL:
            raise Conflict(f"{task.key} is {task.task_state.label}, not awaiting approval.")
        ack()
        channel = channel_of(body)
        # trigger_id expires in three seconds, so the modal opens here, not in a worker.
        view = (
            blocks.changes_modal(task, channel=channel, version=version)
            if approve is None
            else blocks.reason_modal(task, approve=approve, channel=channel, version=version)
        )
        client.views_open(trigger_id=trigger_id, view=view)

    @app.action(blocks.REJECT)
    def reject(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        open_reason_modal(ack, body, client, approve=False)

    @app.action(blocks.APPROVE_WITH_COMMENT)
    def approve_with_comment(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        open_reason_modal(ack, body, client, approve=True)

    @app.action(blocks.REQUEST_CHANGES)
    def request_changes(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        open_reason_modal(ack, body, client, approve=None)

    @app.action(blocks.CANCEL)
    def cancel(ack: Ack, body: dict[str, Any]) -> None:
        services.lifecycle.cancel(_task_id(body), user_of(body))
        ack()

    @app.action(blocks.RETRY)
    def retry(ack: Ack, body: dict[str, Any]) -> None:
        services.lifecycle.retry(_task_id(body), user_of(body))
        ack()
