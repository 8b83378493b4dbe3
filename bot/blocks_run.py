"""Questions a running task asks in its thread: a quiet run, a spent budget.

Each button carries `<task id>|<job id>`: an answer reaches the job that asked and no
other (`jobs.steering`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import ActionsBlock

from bot.blocks import CANCEL, button, escape, finish, section
from jobs.steering import minutes_text, usd

KEEP_WAITING = "run_keep_waiting"
BUDGET_CONTINUE = "run_budget_continue"
BUDGET_STOP = "run_budget_stop"


def question_value(task_id: int, job_id: str) -> str:
    """What a question's buttons carry."""
    return f"{task_id}|{job_id}"


def render_stall_question(
    key: str, task_id: int, job_id: str, minutes: float, last: Sequence[str]
) -> list[dict[str, Any]]:
    """The thread's message when a run shows no sign of life for `minutes`."""
    steps = "\n".join(f"• {escape(line)}" for line in last[-5:]) or "• nothing yet"
    text = (
        f":hourglass: *{key}: the agent has done nothing for {minutes_text(minutes)}.* "
        f"Its last steps:\n{steps}\nIf it stays quiet for another {minutes_text(minutes)}, "
        "it is stopped and the task fails."
    )
    return finish(
        [
            section(text),
            ActionsBlock(
                block_id=f"stall-{task_id}",
                elements=[
                    button("Keep waiting", KEEP_WAITING, question_value(task_id, job_id)),
                    button("Cancel", CANCEL, str(task_id), style="danger"),
                ],
            ),
        ]
    )


def render_budget_question(
    key: str, task_id: int, job_id: str, spent: float, step: float
) -> list[dict[str, Any]]:
    """The thread's message when the agent reached its dollar budget."""
    value = question_value(task_id, job_id)
    text = (
        f":moneybag: *{key} reached its agent budget: {usd(spent)} spent.* The agent is "
        f"paused between turns. An approver decides: continue with {usd(step)} more, or "
        "stop (the task fails and nothing is pushed)."
    )
    return finish(
        [
            section(text),
            ActionsBlock(
                block_id=f"budget-{task_id}",
                elements=[
                    button(f"Continue (+{usd(step)})", BUDGET_CONTINUE, value, style="primary"),
                    button("Stop", BUDGET_STOP, value, style="danger"),
                ],
            ),
        ]
    )
