"""Modal submissions: a rejection reason, or an approval comment."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import blocks
from bot.listeners.fields import modal_input, user_of
from bot.services import Services


def register(app: App, services: Services) -> None:
    """Register the modal handlers."""

    @app.view(blocks.REJECT_VIEW)
    def reject_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        task_id, reason = modal_input(view)
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why you reject the plan."})
            return
        services.lifecycle.reject(task_id, user_of(body), reason)
        ack()

    @app.view(blocks.APPROVE_VIEW)
    def approve_comment(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        task_id, comment = modal_input(view)
        services.lifecycle.approve(task_id, user_of(body), comment or None)
        ack()
