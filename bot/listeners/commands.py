"""`/agent …`: validate, write, enqueue, acknowledge — within Slack's three seconds."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from sqlalchemy.orm import Session

from bot import blocks, dedupe
from bot.aws import cost_blocks
from bot.aws import listeners as aws_listeners
from bot.commands import USAGE, Command, parse
from bot.services import Services
from jobs.aws.actions import AWS_ACTION_SOURCE
from jobs.exceptions import NotAllowed
from jobs.lifecycle import NO_REASON
from jobs.tasks import Viewer, approvals_of, get_task, list_tasks


def register(app: App, services: Services) -> None:
    """Register the `/agent` command."""

    @app.command("/agent")
    def agent_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        perform(
            services,
            ack,
            command.get("text", ""),
            command["user_id"],
            command["channel_id"],
            delivery=context.get(dedupe.CLAIMED_BY_LISTENER),
        )


def perform(
    services: Services,
    ack: Ack,
    text: str,
    user: str,
    channel: str,
    *,
    delivery: str | None = None,
) -> None:
    """Carry out the words after `/agent` (or after a mention of the bot).

    Args:
        services: The process's services.
        ack: Where the short answer goes (the slash command's acknowledgement, or one a
            mention's reply is read from).
        text: The words, as typed.
        user: Who typed them.
        channel: Where.
        delivery: Slack's id of this delivery when it is claimed here, in the
            transaction that creates the task (`bot.dedupe.claim_in`).

    Raises:
        AgentbotError: Bad input or a refusal, with the short message to show.
    """
    parsed = parse(text)
    if parsed.name == "help":
        ack(text=USAGE, response_type="ephemeral")
        return
    allowed = services.config.slack.channels
    if allowed and channel not in allowed:
        raise NotAllowed("Agentbot doesn't take commands in this channel.")
    if parsed.name == "run":
        _run(services, ack, parsed, user, channel, delivery=delivery)
        return
    handler = HANDLERS[parsed.name]
    handler(services, ack, parsed, user, channel)


def _run(
    services: Services,
    ack: Ack,
    cmd: Command,
    user: str,
    channel: str,
    *,
    delivery: str | None = None,
) -> None:
    def claim(session: Session) -> None:
        if delivery is not None:
            dedupe.claim_in(session, delivery)

    task = services.lifecycle.request(
        description=cmd.text, requester=user, channel=channel, repo_name=cmd.repo, guard=claim
    )
    ack(
        text=f":inbox_tray: {task.key} queued for `{task.repo}`; its card will appear here.",
        response_type="ephemeral",
    )


def _viewer(services: Services, user: str, channel: str) -> Viewer:
    return Viewer(user=user, channel=channel, approver=services.access.is_approver(user))


def _status(services: Services, ack: Ack, cmd: Command, user: str, channel: str) -> None:
    assert cmd.task_id is not None
    with services.db.session() as session:
        task = get_task(session, cmd.task_id)
        if not _viewer(services, user, channel).may_see(task):
            # Said without the description: that is what stays in its channel.
            raise NotAllowed(
                f"{task.key} belongs to another channel; ask there, or ask its requester."
            )
        approvals = list(approvals_of(session, task.id))
    kind = services.config.agent.kind
    card = (
        cost_blocks.render_action_card(task, approvals)
        if task.source == AWS_ACTION_SOURCE
        else blocks.render_status_card(
            task,
            approvals,
            scripted=kind == "scripted",
            agent=kind,
            sandboxed=services.config.agent.sandboxed,
        )
    )
    ack(blocks=card, text=f"{task.key} · {task.task_state.label}", response_type="ephemeral")


def _list(services: Services, ack: Ack, cmd: Command, user: str, channel: str) -> None:
    with services.db.session() as session:
        tasks = list_tasks(
            session,
            state=cmd.state,
            requester=user if cmd.mine else None,
            viewer=_viewer(services, user, channel),
        )
    heading = "Your recent tasks" if cmd.mine else "Recent tasks"
    if cmd.state is not None:
        heading += f" ({cmd.state.label})"
    ack(blocks=blocks.render_task_list(tasks, heading), text=heading, response_type="ephemeral")


def _approve(services: Services, ack: Ack, cmd: Command, user: str, channel: str) -> None:
    assert cmd.task_id is not None
    decision = services.lifecycle.approve(cmd.task_id, user, cmd.text or None)
    if decision.moved:
        text = f":white_check_mark: You approved {decision.task.key}; it is queued for execution."
    else:
        text = (
            f":white_check_mark: Your approval of {decision.task.key} is recorded "
            f"({decision.approvals} of {decision.required})."
        )
    ack(text=text, response_type="ephemeral")


def _reject(services: Services, ack: Ack, cmd: Command, user: str, channel: str) -> None:
    assert cmd.task_id is not None
    # The reason is optional here (PRODUCT.md: `reject <task> [reason]`).
    task = services.lifecycle.reject(cmd.task_id, user, cmd.text.strip() or NO_REASON)
    ack(text=f":no_entry_sign: You rejected {task.key}.", response_type="ephemeral")


def _retry(services: Services, ack: Ack, cmd: Command, user: str, channel: str) -> None:
    assert cmd.task_id is not None
    task = services.lifecycle.retry(cmd.task_id, user)
    ack(text=f":repeat: {task.key} is queued again.", response_type="ephemeral")


def _cancel(services: Services, ack: Ack, cmd: Command, user: str, channel: str) -> None:
    assert cmd.task_id is not None
    task = services.lifecycle.cancel(cmd.task_id, user)
    ack(text=f":black_square_for_stop: {task.key} is cancelled.", response_type="ephemeral")


# Every subcommand but `run`, which `perform` calls with its delivery to claim.
HANDLERS = {
    "status": _status,
    "list": _list,
    "approve": _approve,
    "reject": _reject,
    "retry": _retry,
    "cancel": _cancel,
    "aws": aws_listeners.perform,
}
