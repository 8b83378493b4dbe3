"""Makes Slack reflect the database: one status card per task, its thread, progress.

`sync` is idempotent and convergent: it compares the task's version with the version
Slack last showed, and posts or edits only what is missing or stale. Any number of
syncs, in any order, leave the same messages in Slack, once each. A per-task lock
keeps two workers from posting the same card at the same moment.

Every text it hands Slack goes through `MaskedClient`, which masks credentials first.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web import SlackResponse
from sqlalchemy import update

from agents.aws.cost_report import CostReport
from bot import blocks, blocks_run
from bot.aws import cost_blocks
from bot.home.publisher import HomePublisher
from bot.logging import Redactor
from bot.masked_client import MaskedClient
from jobs.aws.actions import AWS_ACTION_SOURCE
from jobs.config import AgentbotConfig
from jobs.db import Database
from jobs.models import Approval, PlanVersion, Task
from jobs.notify import PostedReport, SavingsListing
from jobs.revisions import versions_of
from jobs.states import TaskState
from jobs.tasks import approvals_of, get_task

log = logging.getLogger(__name__)

LOCK_SECONDS = 60
# Lines the progress message keeps (render_progress shows them all).
PROGRESS_LINES = 5
AGENT_NAMES = {"scripted": "scripted agent", "claude-code": "Claude Code", "codex": "Codex"}


class SlackNotifier:
    """The `jobs.notify.Notifier` that speaks Slack's Web API."""

    def __init__(
        self,
        db: Database,
        client: WebClient,
        redis: Redis,
        config: AgentbotConfig,
        *,
        redactor: Redactor | None = None,
        home: HomePublisher | None = None,
    ) -> None:
        """Wire the notifier.

        Args:
            db: The task database.
            client: The Slack Web API client (reaching `SLACK_API_URL`).
            redis: Redis, for the per-task posting lock.
            config: The bot's configuration.
            redactor: What masks credentials in outgoing text; by default the logs'
                patterns plus the client's own token.
            home: What publishes people's Home tabs; each change the notifier shows
                asks it to republish those the task concerns. None for none.
        """
        self.db = db
        self.client = client
        self.slack = MaskedClient(client, redactor)
        self.redis = redis
        self.config = config
        self.home = home
        # Task id -> the phase (state) its lines belong to, and its latest lines.
        self._progress: dict[int, tuple[TaskState, deque[str]]] = {}

    def _post(self, **message: Any) -> SlackResponse:
        """`chat.postMessage`, with every text in the message masked."""
        return self.slack.post(**message)

    def _update(self, **message: Any) -> SlackResponse:
        """`chat.update`, with every text in the message masked."""
        return self.slack.update(**message)

    @property
    def sandboxed(self) -> bool:
        """Whether the agent and the tests run in the sandbox (cards say when not)."""
        return self.config.agent.sandboxed

    @property
    def agent(self) -> str:
        """The agent's name as users read it."""
        return AGENT_NAMES[self.config.agent.kind]

    @property
    def scripted(self) -> bool:
        """Whether tasks are handled by the scripted (non-AI) agent."""
        return self.config.agent.kind == "scripted"

    def sync(self, task_id: int) -> None:
        """Post or edit the card, plan and outcome messages until Slack is current."""
        shown: Task | None = None
        with self.redis.lock(
            f"agentbot:slack-sync:{task_id}", timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS
        ):
            # Loop: the task may move while we render; stop once Slack shows the latest.
            for _ in range(5):
                with self.db.session() as session:
                    task = get_task(session, task_id)
                    approvals = list(approvals_of(session, task_id))
                    versions = list(versions_of(session, task_id))
                if task.slack_version >= task.version:
                    break
                self._render(task, approvals, versions)
                shown = task
        if shown is not None and self.home is not None:
            # After the lock: the Homes are published by a job of their own, later.
            self.home.task_changed(shown)

    def publish_home(self, user: str, notice: str | None = None) -> None:
        """Publish `user`'s Home tab, `notice` on top (a failure is logged, never raised)."""
        if self.home is not None:
            self.home.publish(user, notice)

    def _render(
        self, task: Task, decided: list[Approval], versions: list[PlanVersion] | None = None
    ) -> None:
        # An AWS action has its own card, plan and outcome (bot.aws.cost_blocks).
        action = task.source == AWS_ACTION_SOURCE
        card = (
            cost_blocks.render_action_card(task, decided)
            if action
            else blocks.render_status_card(
                task, decided, agent=self.agent, scripted=self.scripted, sandboxed=self.sandboxed
            )
        )
        text = f"{task.key} · {task.task_state.label}"
        updates: dict[str, object] = {}
        if task.card_ts is None:
            response = self._post(channel=task.channel, blocks=card, text=text)
            updates["card_ts"] = updates["thread_ts"] = task.card_ts = task.thread_ts = str(
                response["ts"]
            )
            # A card can be posted to a channel id or a user id; Slack answers with
            # the real channel, which later edits must use.
            if response.get("channel") and response["channel"] != task.channel:
                updates["channel"] = task.channel = str(response["channel"])
            if not action and blocks.description_is_long(task):
                # The card shows the head; the thread, first of all, the whole text.
                self._post(
                    channel=task.channel,
                    thread_ts=task.thread_ts,
                    text=blocks.render_full_description(task),
                )
        else:
            self._update(channel=task.channel, ts=task.card_ts, blocks=card, text=text)
        if task.plan:
            required = self.config.access.approvals_required
            plan = (
                cost_blocks.render_action_plan(task, decided, required=required)
                if action
                else blocks.render_plan(
                    task,
                    decided,
                    required=required,
                    agent=self.agent,
                    scripted=self.scripted,
                    sandboxed=self.sandboxed,
                    revision=next(
                        (v for v in versions or () if v.version == task.plan_version), None
                    ),
                )
            )
            plan_text = blocks.plan_heading(task.key, task.plan_version)
            if task.plan_ts is None:
                response = self._post(
                    channel=task.channel, thread_ts=task.thread_ts, blocks=plan, text=plan_text
                )
                updates["plan_ts"] = str(response["ts"])
            else:
                self._update(channel=task.channel, ts=task.plan_ts, blocks=plan, text=plan_text)
            self._supersede(task, versions or [])
        if task.task_state.is_terminal and task.outcome_ts is None:
            self._finish_progress(task)
            outcome = (
                cost_blocks.render_action_outcome(task)
                if action
                else blocks.render_outcome(
                    task, agent=self.agent, scripted=self.scripted, sandboxed=self.sandboxed
                )
            )
            response = self._post(
                channel=task.channel,
                thread_ts=task.thread_ts,
                blocks=outcome,
                text=f"{task.key} {task.task_state.label}",
            )
            updates["outcome_ts"] = str(response["ts"])
        with self.db.session() as session:
            # slack_version is bookkeeping, not a change users see: no version bump.
            session.execute(
                update(Task).where(Task.id == task.id).values(slack_version=task.version, **updates)
            )

    def _supersede(self, task: Task, versions: list[PlanVersion]) -> None:
        """Edit the messages of versions older than the task's into "Superseded by vN"."""
        for shown in versions:
            stale = shown.version < task.plan_version and shown.plan is not None
            if not stale or shown.message_ts is None or shown.superseded_shown:
                continue
            self._update(
                channel=task.channel,
                ts=shown.message_ts,
                blocks=blocks.render_superseded_plan(task, shown),
                text=f"{blocks.plan_heading(task.key, shown.version)} (superseded)",
            )
            with self.db.session() as session:
                session.execute(
                    update(PlanVersion)
                    .where(PlanVersion.id == shown.id)
                    .values(superseded_shown=True)
                )

    def _finish_progress(self, task: Task) -> None:
        if task.progress_ts is None:
            return
        _phase, shown = self._progress.pop(task.id, (task.task_state, deque()))
        lines = list(shown)
        self._update(
            channel=task.channel,
            ts=task.progress_ts,
            text=blocks.render_progress(task, lines or ["done"]),
        )

    def progress(self, task_id: int, line: str) -> None:
        """Edit the task's one progress message (posting it the first time).

        The message shows the current phase's lines only: executing begins afresh
        rather than under planning's last lines, and a line repeated is shown once.
        """
        with self.db.session() as session:
            task = get_task(session, task_id)
        if task.thread_ts is None:
            self.sync(task_id)
            with self.db.session() as session:
                task = get_task(session, task_id)
        phase, lines = self._progress.get(task_id, (None, None))
        if lines is None or phase != task.task_state:
            lines = deque(maxlen=PROGRESS_LINES)
            self._progress[task_id] = (task.task_state, lines)
        if not lines or lines[-1] != line:
            lines.append(line)
        text = blocks.render_progress(task, list(lines))
        if task.progress_ts is None:
            response = self._post(channel=task.channel, thread_ts=task.thread_ts, text=text)
            with self.db.session() as session:
                session.execute(
                    update(Task).where(Task.id == task_id).values(progress_ts=str(response["ts"]))
                )
        else:
            self._update(channel=task.channel, ts=task.progress_ts, text=text)

    def say(self, task_id: int, text: str) -> None:
        """Post a message in the task's thread."""
        with self.db.session() as session:
            task = get_task(session, task_id)
        if task.thread_ts is None:
            self.sync(task_id)
            with self.db.session() as session:
                task = get_task(session, task_id)
        self._post(channel=task.channel, thread_ts=task.thread_ts, text=text)

    def ask_stalled(self, task_id: int, job_id: str, minutes: float, last: list[str]) -> None:
        """Post the quiet run's question (Keep waiting, Cancel) in the task's thread."""
        self._ask(
            task_id,
            "the agent has gone quiet",
            lambda task: blocks_run.render_stall_question(task.key, task_id, job_id, minutes, last),
        )

    def ask_budget(self, task_id: int, job_id: str, spent: float, step: float) -> None:
        """Post the budget question (Continue, Stop) in the task's thread."""
        self._ask(
            task_id,
            "the agent reached its budget",
            lambda task: blocks_run.render_budget_question(task.key, task_id, job_id, spent, step),
        )

    def _ask(self, task_id: int, what: str, render: Any) -> None:
        with self.db.session() as session:
            task = get_task(session, task_id)
        if task.thread_ts is None:
            self.sync(task_id)
            with self.db.session() as session:
                task = get_task(session, task_id)
        self._post(
            channel=task.channel,
            thread_ts=task.thread_ts,
            blocks=render(task),
            text=f"{task.key}: {what}",
        )

    def permalink(self, channel: str, ts: str) -> str | None:
        """Slack's own link to a message (`chat.getPermalink`), or None when Slack has none.

        Slack answers errors (an unknown message, say) and unreachable Slack alike give
        None, so callers can fall back to a link they build.
        """
        try:
            response = self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, SlackRequestError, OSError) as error:
            log.warning("no permalink from Slack for %s/%s: %s", channel, ts, error)
            return None
        link = response.get("permalink")
        return str(link) if link else None

    # -- cost reports --------------------------------------------------------------------

    def cost_report(
        self,
        channel: str,
        report: CostReport,
        *,
        title: str,
        replace_ts: str | None = None,
        chart: bytes | None = None,
        savings: SavingsListing | None = None,
    ) -> PostedReport:
        """Post a cost report's summary, its chart, and its details in the summary's thread.

        The digest (no `replace_ts`) is posted in its channel with the chart right
        below, so whoever reads the channel sees both without opening a thread. A
        report asked for edits the message that said it was coming into the summary
        (so that message no longer says it is coming), with the chart in its thread.

        A chart or details message that cannot be posted does not take the summary
        down with it: the failure is logged (and, for the chart, returned), and the
        summary stays posted. Nothing raised after the summary escapes, so the digest,
        once its message is accepted, is never posted a second time.
        """
        where = "below" if replace_ts is None else "in the thread"
        summary = {
            "text": cost_blocks.report_text(report, title),
            "blocks": cost_blocks.render_cost_summary(
                report, title=title, chart_where=where if chart is not None else None
            ),
        }
        if replace_ts is None:
            response = self._post(channel=channel, **summary)
            posted = PostedReport(
                channel=str(response.get("channel") or channel), ts=str(response["ts"])
            )
        else:
            self._update(channel=channel, ts=replace_ts, **summary)
            posted = PostedReport(channel=channel, ts=replace_ts)
        if chart is not None:
            posted = self._cost_chart(
                posted, report, title, chart, in_thread=replace_ts is not None
            )
        try:
            self._post(
                channel=posted.channel,
                thread_ts=posted.ts,
                text=f"{title}: every figure behind it",
                blocks=cost_blocks.render_cost_details(report, savings=savings),
            )
        except (SlackApiError, SlackRequestError, OSError) as error:
            log.warning("the cost report's details could not be posted: %s", error)
        return posted

    def _cost_chart(
        self, posted: PostedReport, report: CostReport, title: str, chart: bytes, *, in_thread: bool
    ) -> PostedReport:
        try:
            upload = self.slack.upload(
                channel=posted.channel,
                thread_ts=posted.ts if in_thread else None,
                file=chart,
                filename=f"aws-cost-{report.as_of.isoformat()}.png",
                title=f"AWS cost, last 30 days to {report.as_of.isoformat()}",
                initial_comment=cost_blocks.chart_comment(report, title),
            )
        except (SlackApiError, SlackRequestError, OSError) as error:
            log.warning("the cost chart could not be uploaded: %s", error)
            return PostedReport(posted.channel, posted.ts, file_error=str(error)[:300])
        file = upload.get("file") or {}
        return PostedReport(posted.channel, posted.ts, file_id=str(file.get("id") or "") or None)

    def savings_report(
        self, channel: str, listing: SavingsListing, *, thread_ts: str | None = None
    ) -> PostedReport:
        """Post savings recommendations with their "Create action" buttons."""
        response = self._post(
            channel=channel,
            thread_ts=thread_ts,
            text=cost_blocks.savings_text(listing),
            blocks=cost_blocks.render_savings(listing),
        )
        return PostedReport(channel=str(response.get("channel") or channel), ts=str(response["ts"]))

    def post_text(self, channel: str, text: str, *, thread_ts: str | None = None) -> PostedReport:
        """Post a short plain message."""
        response = self._post(channel=channel, thread_ts=thread_ts, text=text)
        return PostedReport(channel=str(response.get("channel") or channel), ts=str(response["ts"]))

    def replace_text(self, channel: str, ts: str, text: str) -> None:
        """Edit one of the bot's messages into a short plain one (`chat.update`), masked."""
        self._update(channel=channel, ts=ts, text=text)

    def post_ephemeral(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> None:
        """Show a short plain message to `user` alone (`chat.postEphemeral`), masked."""
        self.slack.ephemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
