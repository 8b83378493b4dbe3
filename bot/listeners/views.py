"""Modal submissions: a rejection reason, an approval comment, or what to change in a plan."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import blocks
from bot.listeners.fields import modal_input, modal_plan_version, user_of
from bot.services import Services


def register(app: App, services: Services) -> None:
    """Register the modal handlers."""

    @app.view(blocks.REJECT_VIEW)
    def reject_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        task_id, reason = modal_input(view)
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why you reject the plan."})
            return
        services.lifecycle.reject(
            task_id, user_of(body), reason, plan_version=modal_plan_version(view)
        )
        ack()

    @app.view(blocks.APPROVE_VIEW)
    def approve_comment(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        task_id, comment = modal_input(view)
        services.lifecycle.approve(
            task_id, user_of(body), comment or None, plan_version=modal_plan_version(view)
        )
        ack()

    @app.view(blocks.CHANGES_VIEW)
    def plan_changes(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        task_id, feedback = modal_input(view)
        if not feedback:
            ack(response_action="errors", errors={"reason": "Say what to change in the plan."})
            return
        services.lifecycle.request_changes(
            task_id, user_of(body), feedback, plan_version=modal_plan_version(view)
        )
        ack()
