"""Answers to a running task's questions: Keep waiting after a stall, Continue or Stop
at the budget. (Cancel is the card's own Cancel button.)"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond

from bot.blocks_run import BUDGET_CONTINUE, BUDGET_STOP, KEEP_WAITING
from bot.listeners.fields import button_value, task_id_of, user_of
from bot.services import Services
from jobs.exceptions import BadRequest
from jobs.running import RunningTasks
from jobs.steering import usd


def question_of(body: dict[str, Any]) -> tuple[int, str]:
    """The task id and job id a question's button carries.

    Raises:
        BadRequest: The value is not `<task id>|<job id>`.
    """
    value = button_value(body)
    task, _, job = str(value or "").partition("|")
    if not job or len(job) > 200:
        raise BadRequest("That button names no running task.")
    return task_id_of(task), job


def _tell(respond: Respond, text: str) -> None:
    respond(text=text, response_type="ephemeral", replace_original=False)


def register(app: App, services: Services) -> None:
    """Register the question buttons."""
    running = RunningTasks(services.db, services.redis, services.access)

    @app.action(KEEP_WAITING)
    def keep_waiting(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        task_id, job_id = question_of(body)
        task = running.keep_waiting(task_id, job_id, user_of(body))
        ack()
        _tell(respond, f"{task.key} keeps running; the stall clock starts again.")

    @app.action(BUDGET_CONTINUE)
    def budget_continue(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        task_id, job_id = question_of(body)
        step = services.config.agent.max_cost_usd
        task = running.decide_budget(task_id, job_id, user_of(body), step)
        ack()
        _tell(respond, f"{task.key} may spend {usd(step)} more.")

    @app.action(BUDGET_STOP)
    def budget_stop(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        task_id, job_id = question_of(body)
        task = running.decide_budget(task_id, job_id, user_of(body), None)
        ack()
        _tell(respond, f"{task.key} stops at its budget.")
