"""How the lifecycle tells people what happened, without knowing Slack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agents.aws.cost_config import ActionKind
    from agents.aws.cost_report import CostReport
    from agents.aws.optimize import OptimizeReport
    from agents.aws.report import ScanDiff
    from agents.aws.scanner import ScanReport, ScanScope


class Notifier(Protocol):
    """Makes the chat reflect a task; implemented by the Slack side."""

    def sync(self, task_id: int) -> None:
        """Bring the task's status card and thread up to date with the database."""

    def progress(self, task_id: int, line: str) -> None:
        """Show one short progress line for a running agent (edited in place)."""

    def say(self, task_id: int, text: str) -> None:
        """Post a plain message in the task's thread."""

    def ask_stalled(self, task_id: int, job_id: str, minutes: float, last: list[str]) -> None:
        """Say in the thread that the run went quiet, with Keep waiting and Cancel."""

    def ask_budget(self, task_id: int, job_id: str, spent: float, step: float) -> None:
        """Ask approvers in the thread to continue with `step` dollars more, or stop."""

    def permalink(self, channel: str, ts: str) -> str | None:
        """The chat's own link to a message, or None when the chat has none."""

    def publish_home(self, user: str, notice: str | None = None) -> None:
        """Show `user` their dashboard as the database has it now, with `notice` at the
        top when given (never raises)."""

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
        """Post a cost report (the digest, or one asked for): a short summary, its chart,
        and every other figure in the summary's thread.

        The digest's summary is posted in the channel with its chart right below. A
        report asked for replaces `replace_ts`, the message that said it was coming,
        and its chart goes in the thread.
        """

    def savings_report(
        self, channel: str, listing: SavingsListing, *, thread_ts: str | None = None
    ) -> PostedReport:
        """Post savings recommendations, with a "Create action" button where allowed."""

    def post_text(self, channel: str, text: str, *, thread_ts: str | None = None) -> PostedReport:
        """Post a short plain message, e.g. why a report is not coming."""

    def replace_text(self, channel: str, ts: str, text: str) -> None:
        """Edit one of the bot's messages into a short plain one (a "coming" note done)."""

    def post_ephemeral(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> None:
        """Show a short plain message to `user` alone, in `channel` (in a thread if given)."""


class NullNotifier:
    """A notifier that tells nobody (for tools and tests that only need the database)."""

    def sync(self, task_id: int) -> None:
        """Do nothing."""

    def progress(self, task_id: int, line: str) -> None:
        """Do nothing."""

    def say(self, task_id: int, text: str) -> None:
        """Do nothing."""

    def ask_stalled(self, task_id: int, job_id: str, minutes: float, last: list[str]) -> None:
        """Do nothing."""

    def ask_budget(self, task_id: int, job_id: str, spent: float, step: float) -> None:
        """Do nothing."""

    def permalink(self, channel: str, ts: str) -> str | None:
        """No chat, no link."""
        return None

    def publish_home(self, user: str, notice: str | None = None) -> None:
        """Show nothing."""

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
        """Post nothing."""
        return PostedReport(channel=channel, ts="")

    def savings_report(
        self, channel: str, listing: SavingsListing, *, thread_ts: str | None = None
    ) -> PostedReport:
        """Post nothing."""
        return PostedReport(channel=channel, ts="")

    def post_text(self, channel: str, text: str, *, thread_ts: str | None = None) -> PostedReport:
        """Post nothing."""
        return PostedReport(channel=channel, ts="")

    def replace_text(self, channel: str, ts: str, text: str) -> None:
        """Edit nothing."""

    def post_ephemeral(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> None:
        """Show nothing."""


@dataclass(frozen=True)
class ChatMessage:
    """Where a posted message lives, so that it can be edited later."""

    channel: str
    ts: str


@dataclass(frozen=True)
class AwsStatus:
    """One answer to `aws status`: a report, how old it is, and what changed before it."""

    report: ScanReport
    scan_id: int
    # True when the report was already stored when asked for (no AWS calls were made).
    cached: bool
    as_of: datetime
    previous_at: datetime | None = None
    changes: ScanDiff | None = None
    requested_by: str | None = None

    @property
    def age(self) -> timedelta:
        """How old the data is: from the end of its scan to when it was shown."""
        return max(timedelta(0), self.as_of - self.report.finished_at)


class AwsStatusReporter(Protocol):
    """Shows an AWS status report as it is made; implemented by the Slack side."""

    def scanning(self, channel: str, thread_ts: str | None, scope: ScanScope) -> ChatMessage:
        """Post the message that stands in for the report while the scan runs."""

    def progress(self, message: ChatMessage, scope: ScanScope, done: int, total: int) -> None:
        """Edit the stand-in message to show how far the scan has got."""

    def report(
        self,
        channel: str,
        thread_ts: str | None,
        status: AwsStatus,
        replace: ChatMessage | None = None,
    ) -> ChatMessage:
        """Show the report: edit `replace` into it, or post it when there is none."""

    def failed(
        self, channel: str, thread_ts: str | None, text: str, replace: ChatMessage | None = None
    ) -> None:
        """Say that no report is coming, and why, in a short sentence."""


@dataclass(frozen=True)
class PostedReport:
    """A report as posted: its message, and its chart file (or why the chart is missing)."""

    channel: str
    ts: str
    file_id: str | None = None
    file_error: str | None = None


@dataclass(frozen=True)
class SavingsListing:
    """Savings recommendations as stored (`ids[i]` is the id of the i-th one), and which
    kinds of action may be offered as buttons (none while actions are off)."""

    report: OptimizeReport
    ids: list[int]
    actions: tuple[ActionKind, ...] = ()
