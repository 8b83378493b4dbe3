"""One execution, watched: signs of life, stalls, messages from the thread, the budget.

The executor job wraps its progress and cancel callbacks in a `RunSupervisor` and lends
each agent phase the `RunControl` it makes. A run that shows no sign of life for
`[agent] stall_minutes` gets a question in the thread (Keep waiting, Cancel); quiet
for another such period, it is stopped and the task fails with the agent's last steps.
A run that reaches `[agent] max_cost_usd` waits between turns for an approver's
Continue (+$X) or Stop. Messages people send in the thread reach the agent through
`jobs.steering`. Everything it says goes through the job's fenced notifier.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from agents.base import CancelCheck, Progress, RunControl
from agents.prompts import thread_message_prompt
from jobs.context import JobContext
from jobs.steering import STALLS_KEY, RunChannel, minutes_text, usd

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
DECISION_POLL_SECONDS = 0.5


class RunSupervisor:
    """Watches one job's execution of one task.

    Args:
        ctx: The job's context (its notifier fenced).
        task_id: The task.
        job_id: The job that owns it; None outside RQ (nothing can then talk to it).
        progress: The job's own progress callback.
        cancelled: The job's own cancel check.
        clock: Monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        ctx: JobContext,
        task_id: int,
        job_id: str | None,
        progress: Progress,
        cancelled: CancelCheck,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.task_id = task_id
        self.job_id = job_id
        self.channel = None if job_id is None else RunChannel(ctx.redis, task_id, job_id)
        self.stall_seconds = ctx.config.agent.stall_minutes * 60
        self.budget_usd = ctx.config.agent.max_cost_usd
        self._progress = progress
        self._cancelled = cancelled
        self._clock = clock
        self.recent: deque[str] = deque(maxlen=5)
        self.last_activity = clock()
        self._warned_at: float | None = None
        self._last_poll: float | None = None
        self.stall_reason: str | None = None

    # -- what the agent's phases are handed ----------------------------------------------

    def progress(self, line: str) -> None:
        """A progress line: a sign of life, kept among the last steps, and shown."""
        self.recent.append(line)
        self.activity()
        self._progress(line)

    def activity(self) -> None:
        """The run did something: the stall clock starts again."""
        self.last_activity = self._clock()
        self._warned_at = None

    def cancelled(self) -> bool:
        """Cancelled, lost, or stopped for a stall: the agent must stop."""
        if self.stall_reason is not None or self._cancelled():
            return True
        self._check_stall()
        return self.stall_reason is not None

    def control(self, spent_usd: float) -> RunControl:
        """What one phase is lent, `spent_usd` having been spent on the task so far.

        The stall clock starts with the phase: the bot's own test run before it is not
        the agent's silence.
        """
        self.activity()
        return RunControl(
            messages=self.messages,
            activity=self.activity,
            budget_usd=max(0.0, self.budget_usd - spent_usd),
            over_budget=lambda phase_spent: self.over_budget(spent_usd + phase_spent),
        )

    def messages(self) -> list[str]:
        """Messages from the thread since the last call, as the agent is to read them."""
        if self.channel is None:
            return []
        return [thread_message_prompt(who, text) for who, text in self.channel.messages()]

    # -- stalls ---------------------------------------------------------------------------

    def _check_stall(self) -> None:
        now = self._clock()
        if self._last_poll is not None and now - self._last_poll < POLL_SECONDS:
            return
        self._last_poll = now
        who = None if self.channel is None else self.channel.kept_waiting()
        if who is not None:
            self.activity()
            self.ctx.notifier.say(
                self.task_id,
                f":hourglass: <@{who}> chose to keep waiting; the clock starts again.",
            )
            return
        if self._warned_at is None:
            if now - self.last_activity >= self.stall_seconds:
                self._warned_at = now
                self.ctx.redis.incr(STALLS_KEY)
                log.info("T-%s: no sign of life for %.0f s", self.task_id, now - self.last_activity)
                self.ctx.notifier.ask_stalled(
                    self.task_id,
                    self.job_id or "",
                    self.ctx.config.agent.stall_minutes,
                    list(self.recent),
                )
        elif now - self._warned_at >= self.stall_seconds:
            quiet = minutes_text(2 * self.ctx.config.agent.stall_minutes)
            steps = "; ".join(self.recent) or "nothing"
            self.stall_reason = (
                f"The agent showed no sign of life for {quiet}, so it was stopped. "
                f"Its last steps: {steps}."
            )

    # -- the budget -----------------------------------------------------------------------

    def over_budget(self, spent_usd: float) -> float | None:
        """Ask approvers for more budget and wait for their answer (or a cancel).

        The question stays open as long as one agent run may last (`[agent]
        timeout_seconds`); unanswered, the run stops.

        Returns:
            The dollars added, or None to stop.
        """
        if self.channel is None or self.job_id is None:
            return None
        step = self.ctx.config.agent.max_cost_usd
        self.channel.reopen_budget()
        self.ctx.notifier.ask_budget(self.task_id, self.job_id, spent_usd, step)
        deadline = self._clock() + self.ctx.config.agent.timeout_seconds
        while self._clock() < deadline:
            if self._cancelled():
                return None
            decision = self.channel.budget_decision()
            if decision is not None:
                user, more = decision
                self.activity()
                if more is None:
                    self.ctx.notifier.say(
                        self.task_id, f":octagonal_sign: <@{user}> stopped the agent at its budget."
                    )
                    return None
                self.budget_usd = spent_usd + more
                self.ctx.notifier.say(
                    self.task_id,
                    f":moneybag: <@{user}> raised the budget by {usd(more)} "
                    f"(to {usd(self.budget_usd)}); the agent carries on.",
                )
                return more
            time.sleep(DECISION_POLL_SECONDS)
        self.ctx.notifier.say(
            self.task_id, ":moneybag: Nobody decided on the budget in time, so the agent stopped."
        )
        return None
