"""Replies in a task's thread that mention the bot, routed by the task's state.

`@agentbot also cover 25% off` under a task's card means something to that task: while
its plan is being made or awaits approval, it is a change request (plan v2); while the
agent runs, it is passed to the agent. Each state
that takes a reply has one handler in `BY_STATE`; a state without one gets a short
answer. Only the task's requester and its approvers are heard: anyone else's reply is
ignored quietly, and `/agent` words (`@agentbot status T-3`) stay commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.commands import SUBCOMMANDS
from bot.services import Services
from jobs.models import Task
from jobs.running import RunningTasks, task_in_thread
from jobs.states import TaskState
from jobs.thread_reply import enqueue_reply

log = logging.getLogger(__name__)

Handler = Callable[[Services, Task, dict[str, Any], str], None]


def change_request(services: Services, task: Task, event: dict[str, Any], words: str) -> None:
    """While planning or awaiting approval: the words are what to change in the plan."""
    services.lifecycle.request_changes(task.id, str(event["user"]), words)


def to_running_agent(services: Services, task: Task, event: dict[str, Any], words: str) -> None:
    """While the agent runs: the words reach it at its next step, and are acknowledged.

    They do not widen what the approved plan allows: scope and RED/GREEN still apply.
    """
    running = RunningTasks(services.db, services.redis, services.access)
    if running.author(task, str(event["user"])) is None:
        return
    if services.config.agent.kind == "codex":
        # `codex exec` reads its stdin only before it starts.
        note = "Codex takes no messages while it runs; nothing was passed on."
    elif running.send(task, str(event["user"]), words):
        note = (
            "Passed to the agent; it reads it at its next step. The approved plan still "
            "decides what may change."
        )
    else:
        return
    enqueue_reply(
        services.queues,
        channel=str(event["channel"]),
        thread_ts=str(event["thread_ts"]),
        text=f":speech_balloon: {note}",
        user=None,
    )


BY_STATE: dict[TaskState, Handler] = {
    TaskState.QUEUED: change_request,
    TaskState.PLANNING: change_request,
    TaskState.AWAITING_APPROVAL: change_request,
    TaskState.EXECUTING: to_running_agent,
}


def route(services: Services, event: dict[str, Any], words: str) -> bool:
    """Handle a mention that replies in a task's thread; False when it is not one.

    Raises:
        AgentbotError: The handler's refusal, shown to the reply's author alone.
    """
    thread_ts = event.get("thread_ts")
    if not thread_ts or thread_ts == event.get("ts") or not event.get("user"):
        return False
    first = words.split(maxsplit=1)[0].lower() if words.strip() else ""
    if first in SUBCOMMANDS:
        return False
    task = task_in_thread(services.db, str(event["channel"]), str(thread_ts))
    if task is None:
        return False
    user = str(event["user"])
    if not services.access.may_cancel(user, task.requester):
        log.info("ignored a reply in the thread of %s from someone not on it", task.key)
        return True
    handler = BY_STATE.get(task.task_state)
    if handler is None:
        enqueue_reply(
            services.queues,
            channel=str(event["channel"]),
            thread_ts=str(thread_ts),
            text=f"{task.key} is {task.task_state.label}; a reply here changes nothing now.",
            user=user,
        )
        return True
    handler(services, task, event, words)
    return True
