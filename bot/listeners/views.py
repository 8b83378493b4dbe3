"""Modal submissions: a rejection reason, or an approval comment."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import blocks
from bot.services import Services


def _read(view: dict[str, Any]) -> tuple[int, str]:
    task_id = int(str(view["private_metadata"]).split("|", 1)[0])
    value = view["state"]["values"]["reason"]["text"].get("value") or ""
    return task_id, value.strip()


def register(app: App, services: Services) -> None:
    """Register the modal handlers."""

    @app.view(blocks.REJECT_VIEW)
    def reject_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        task_id, reason = _read(view)
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why you reject the plan."})
            return
        services.lifecycle.reject(task_id, body["user"]["id"], reason)
        ack()

    @app.view(blocks.APPROVE_VIEW)
    def approve_comment(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        task_id, comment = _read(view)
        services.lifecycle.approve(task_id, body["user"]["id"], comment or None)
        ack()
