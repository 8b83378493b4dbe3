"""Block Kit for AWS costs, savings and AWS actions, built by pure functions.

A cost report is two messages. The one in the channel is read in five seconds: the
window's total and its changes, the month (to date, forecast, budget), the anomalies
if any and the top three movers, then the chart. Its thread holds everything else:
all top services, movers and anomalies, per account, and what the numbers are
(metric, record types, provisional days, Cost Explorer calls).

An AWS action's card, plan and outcome replace the code-task ones for tasks whose
source is `aws-action`; the decision buttons are the code tasks' own, so approving
works the same way.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, DividerBlock, SectionBlock
from slack_sdk.models.blocks.basic_components import MarkdownTextObject

from agents.aws.cost_report import (
    COMPARED_WITH,
    PERIOD_TITLES,
    RUN_RATE_DAYS,
    Anomaly,
    Change,
    CostReport,
    basis_line,
    describe_change,
    money,
    signed_money,
)
from agents.aws.optimize import Recommendation
from bot.aws.status_blocks import plural
from bot.blocks import (
    APPROVE,
    APPROVE_WITH_COMMENT,
    CANCEL,
    REJECT,
    RETRY,
    SECTION_LIMIT,
    STATE_EMOJI,
    button,
    clip,
    context,
    elapsed,
    escape,
    fields_section,
    finish,
    header,
    mention,
    plain_clip,
    section,
)
from jobs.models import Approval, Task
from jobs.notify import SavingsListing
from jobs.states import CANCELLABLE, TaskState

CREATE_ACTION = "aws_action_create"
MAX_SERVICE_LINES = 10
MAX_ANOMALIES = 8
MAX_RECOMMENDATIONS = 15
MAX_ACCOUNTS = 10
BUDGET_EMOJI = {"on track": ":large_green_circle:", "at risk": ":warning:", "over": ":red_circle:"}
ACTION_LABEL = {
    "stop_instance": "Stop instance",
    "delete_volume": "Snapshot + delete",
    "release_address": "Release IP",
    "migrate_gp3": "Migrate to gp3",
}


def _arrow(change: Change) -> str:
    delta = change.delta
    if delta is None or abs(delta) < 0.005:
        return ""
    return ":arrow_up_small: " if delta > 0 else ":arrow_down_small: "


def _service_line(name: str, change: Change) -> str:
    return (
        f"• {escape(plain_clip(name, 80))} — *{money(change.amount)}* "
        f"({_arrow(change)}{describe_change(change)})"
    )


SUMMARY_MOVERS = 3
SUMMARY_ANOMALIES = 3


def _figure_line(report: CostReport) -> str:
    """The window's total, with its change on the day (or period) before and on the
    same weekday last week."""
    period = report.period
    window = f"{report.as_of:%a %d %b}" if period == "yesterday" else report.window.label
    parts = [
        f"*{money(report.total.amount)}* {PERIOD_TITLES[period].lower()} ({window})",
        f"{_arrow(report.total)}{describe_change(report.total)} on {COMPARED_WITH[period]}",
    ]
    week = report.week_ago
    if week is not None:
        last_week = report.as_of - timedelta(days=7)
        parts.append(f"{_arrow(week)}{describe_change(week)} on {last_week:%a %d %b}")
    return " · ".join(parts)


def _month_line(report: CostReport) -> str:
    """Month to date against last month, the forecast, and the budget state."""
    mtd = report.month_to_date
    month_name = calendar.month_name[report.as_of.month]
    last_month = report.month_window.start - timedelta(days=1)
    change = (
        f"{describe_change(mtd)} on the same point in {calendar.month_name[last_month.month]}"
        if mtd.delta is not None
        else "no earlier month to compare"
    )
    parts = [
        f"Month to date *{money(mtd.amount)}* ({change})",
        f"forecast *{money(report.forecast)}* for {month_name}",
    ]
    if report.budget is not None:
        budget = report.budget
        state = budget.state.value
        parts.append(
            f"budget {money(budget.budget)} {BUDGET_EMOJI[state]} *{state}* "
            f"({budget.month_to_date / budget.budget:.0%} used, forecast "
            f"{budget.forecast / budget.budget:.0%})"
        )
    return " · ".join(parts)


def _anomaly_line(anomaly: Anomaly) -> str:
    return (
        f"• {anomaly.day:%b %d} *{escape(plain_clip(anomaly.service, 80))}*: "
        f"{money(anomaly.amount)}, *{signed_money(anomaly.size)}* vs a usual "
        f"{money(anomaly.expected)}"
    )


def render_cost_summary(
    report: CostReport, *, title: str, chart_where: str | None = "below"
) -> list[dict[str, Any]]:
    """The channel message of a cost report: what a reader takes in at a glance.

    A headline (the total and its changes, then the month, forecast and budget), the
    anomalies if any, the top three movers; all the rest is in `render_cost_details`,
    posted in its thread. Like Vantage's reports and AWS Cost Anomaly Detection's
    alerts it leads with the total and what moved; unlike them it carries the
    month-end forecast and the movers beside the anomalies, and says in the thread
    which metric, record types and provisional days the figures rest on.

    Args:
        report: The report.
        title: Its header.
        chart_where: Where the chart is ("below", "in the thread"), None without one.

    Returns:
        Serialized blocks, validated and within Slack's limits.
    """
    blocks: list[Block] = [
        header(title),
        section(_figure_line(report) + "\n" + _month_line(report)),
    ]
    if report.anomalies:
        lines = [_anomaly_line(a) for a in report.anomalies[:SUMMARY_ANOMALIES]]
        more = len(report.anomalies) - SUMMARY_ANOMALIES
        if more > 0:
            lines.append(f"…and {more} more in the thread")
        blocks.append(section(":rotating_light: *Anomalies*\n" + "\n".join(lines)))
    if report.movers:
        lines = [
            f"• {escape(plain_clip(m.service, 80))}: {_arrow(m.change)}{describe_change(m.change)}"
            for m in report.movers[:SUMMARY_MOVERS]
        ]
        blocks.append(
            section(f"*Top movers on {COMPARED_WITH[report.period]}*\n" + "\n".join(lines))
        )
    elif not report.top_services:
        blocks.append(section("No costs recorded for this window."))
    tail = ":thread: All services, per account, and how these figures were made: in the thread"
    if report.missing_days or report.notes:
        tail = ":warning: Some figures are incomplete; the thread says why"
    if chart_where is not None:
        tail += f" · :chart_with_upwards_trend: 30-day chart {chart_where}"
    blocks.append(context(tail))
    return finish(blocks)


def render_cost_details(
    report: CostReport, *, savings: SavingsListing | None = None
) -> list[dict[str, Any]]:
    """The thread under a cost report's summary: every figure behind it.

    Top services, every mover, every anomaly, per account, provisional and missing
    days, notes, the weekly savings when given, and the metric, record types and Cost
    Explorer requests the report made.

    Returns:
        Serialized blocks, validated and within Slack's limits.
    """
    period = report.period
    blocks: list[Block] = []
    if report.top_services:
        lines = [_service_line(s.service, s.change) for s in report.top_services]
        blocks.append(
            section(f"*Top services ({PERIOD_TITLES[period].lower()})*\n" + "\n".join(lines))
        )
    else:
        blocks.append(section("*Top services*\nNo costs recorded for this window."))
    if report.movers:
        lines = [
            f"• {escape(plain_clip(m.service, 80))}: {_arrow(m.change)}{describe_change(m.change)}"
            for m in report.movers[:MAX_SERVICE_LINES]
        ]
        blocks.append(section(f"*Biggest movers vs {COMPARED_WITH[period]}*\n" + "\n".join(lines)))
    if report.anomalies:
        lines = [
            f"• :rotating_light: {a.day:%b %d} *{escape(plain_clip(a.service, 80))}*: "
            f"{money(a.amount)}, *{signed_money(a.size)}* vs a usual {money(a.expected)}"
            for a in report.anomalies[:MAX_ANOMALIES]
        ]
        more = len(report.anomalies) - MAX_ANOMALIES
        if more > 0:
            lines.append(f"…and {more} more")
        blocks.append(section("*Anomalies*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Anomalies*\nNone: every service is within its usual range."))
    if len(report.accounts) > 1:
        lines = [_service_line(name, change) for name, change in report.accounts[:MAX_ACCOUNTS]]
        blocks.append(section("*By account*\n" + "\n".join(lines)))
    run_rate = (
        f"Forecast: month to date plus the run rate, {money(report.run_rate)}/day over the "
        f"last {RUN_RATE_DAYS} days, for the {plural(report.days_left, 'day')} left."
    )
    blocks.append(context(run_rate))
    if report.provisional_days:
        days = ", ".join(f"{d:%b %d}" for d in report.provisional_days)
        blocks.append(
            context(f":hourglass: Provisional: {days} (Cost Explorer still marks them Estimated)")
        )
    if report.missing_days:
        blocks.append(
            context(
                f":warning: No cost data for {plural(len(report.missing_days), 'day')} this "
                "report compares with; those figures are incomplete."
            )
        )
    for note in report.notes:
        blocks.append(context(f":warning: {escape(note)}"))
    if savings is not None:
        blocks.append(DividerBlock())
        blocks.extend(savings_blocks(savings, weekly=True))
    blocks.append(context(escape(basis_line(report))))
    return finish(blocks)


def chart_comment(report: CostReport, title: str) -> str:
    """The line posted with a report's chart, naming the report it belongs to."""
    return (
        f"{title}: daily {report.metric} for the last {len(report.chart.days)} days to "
        f"{report.as_of:%Y-%m-%d} (UTC), stacked by the top services; hatched days are "
        "provisional."
    )


def report_text(report: CostReport, title: str) -> str:
    """The notification text of a cost report (what shows without blocks)."""
    return (
        f"{title}: {money(report.total.amount)} "
        f"({describe_change(report.total)} vs {COMPARED_WITH[report.period]})"
    )


def _recommendation_block(
    rec: Recommendation, rec_id: int | None, actions: Sequence[str]
) -> SectionBlock:
    saving = (
        f"*{money(rec.monthly_savings)}/month*"
        if rec.monthly_savings is not None
        else "saving unknown (type not in the price table)"
    )
    text = (
        f"*{rec.finding.label}* · `{escape(rec.resource_id)}`"
        + (f" ({escape(plain_clip(rec.name, 60))})" if rec.name else "")
        + f" · {escape(rec.account)}/{escape(rec.region)}\n"
        f"Saves {saving} · steward {escape(rec.steward)}\n"
        f"_{escape(plain_clip(rec.evidence, 500))}_"
    )
    accessory = None
    action = rec.action
    if action is not None and action.value in actions and rec_id is not None:
        accessory = ButtonElement(
            text=f"Create action: {ACTION_LABEL[action.value]}",
            action_id=CREATE_ACTION,
            value=str(rec_id),
        )
    return SectionBlock(
        text=MarkdownTextObject(text=clip(text, SECTION_LIMIT)), accessory=accessory
    )


def savings_blocks(listing: SavingsListing, *, weekly: bool = False) -> list[Block]:
    """Savings recommendations, one section each, with a button where actions are allowed."""
    report = listing.report
    recs = report.recommendations
    title = "Weekly savings check" if weekly else "AWS savings"
    blocks: list[Block] = [
        section(
            f"*{title}: {len(recs)} recommendation{'s' if len(recs) != 1 else ''}, about "
            f"{money(report.total_savings)}/month* (estimated at list prices)"
        )
    ]
    ids: list[int | None] = list(listing.ids) + [None] * (len(recs) - len(listing.ids))
    for rec, rec_id in list(zip(recs, ids, strict=True))[:MAX_RECOMMENDATIONS]:
        blocks.append(_recommendation_block(rec, rec_id, [a.value for a in listing.actions]))
    if len(recs) > MAX_RECOMMENDATIONS:
        blocks.append(
            context(
                f"…and {len(recs) - MAX_RECOMMENDATIONS} more; `agentbot aws optimize` lists all."
            )
        )
    if not recs:
        blocks.append(
            context("Nothing to save: no idle, unattached, unused or outdated resources found.")
        )
    for error in report.errors[:5]:
        blocks.append(context(f":warning: Not scanned: {escape(plain_clip(error, 300))}"))
    if recs and not listing.actions:
        blocks.append(
            context(
                "Advice only: AWS actions are off (`[cost.actions] enabled = true` turns them on)."
            )
        )
    return blocks


def render_savings(listing: SavingsListing) -> list[dict[str, Any]]:
    """`/agent aws optimize`: the recommendations as a message."""
    return finish([header("AWS savings recommendations"), *savings_blocks(listing)])


def savings_text(listing: SavingsListing) -> str:
    """The notification text of a savings message."""
    report = listing.report
    return (
        f"AWS savings: {len(report.recommendations)} recommendation(s), about "
        f"{money(report.total_savings)}/month"
    )


# -- AWS actions as tasks ---------------------------------------------------------------------


def _data(task: Task) -> dict[str, Any]:
    return dict(task.source_data or {})


def _saving(data: dict[str, Any]) -> str:
    amount = data.get("monthly_savings")
    return f"{money(float(amount))}/month (estimated)" if amount is not None else "unknown"


def _target(data: dict[str, Any]) -> str:
    action = data.get("action") or {}
    return (
        f"`{escape(str(action.get('resource_id', '?')))}` in "
        f"{escape(str(action.get('account', '?')))}/{escape(str(action.get('region', '?')))}"
    )


def _clock(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%H:%M:%S UTC")


def render_action_card(
    task: Task, approvals: Sequence[Approval] = (), *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The status card of an AWS action, edited in place as it moves."""
    state = task.task_state
    data = _data(task)
    pairs = [
        ("State", f"{STATE_EMOJI[state]} {state.label}"),
        ("Requester", mention(task.requester)),
        ("Resource", _target(data)),
        ("Saving", _saving(data)),
        ("Steward", f"{escape(str(data.get('steward', '?')))} (autonomy {data.get('autonomy')})"),
        ("Elapsed", elapsed(task, now)),
    ]
    approved = [a.user_id for a in approvals if a.decision == "approve"]
    if approved:
        pairs.append(("Approved by", ", ".join(mention(u) for u in approved)))
    elif data.get("autonomous") and task.approved_at is not None:
        pairs.append(("Approved by", "Agentbot (steward autonomy)"))
    rejected = [a for a in approvals if a.decision == "reject"]
    if rejected:
        pairs.append(("Rejected by", mention(rejected[-1].user_id)))
    blocks: list[Block] = [
        header(f"{task.key} · AWS action"),
        section(escape(task.description)),
        fields_section(pairs),
    ]
    result = (task.result or {}).get("action") or {}
    if state == TaskState.FAILED and task.error:
        blocks.append(section(f":warning: *Error:* {escape(task.error)}"))
    if state == TaskState.SUCCEEDED and result.get("summary"):
        blocks.append(section(f":white_check_mark: *Done:* {escape(str(result['summary']))}"))
    actions: list[ButtonElement] = []
    if state in CANCELLABLE and state != TaskState.EXECUTING:
        actions.append(button("Cancel", CANCEL, str(task.id), style="danger"))
    if state == TaskState.FAILED:
        actions.append(button("Retry", RETRY, str(task.id), style="primary"))
    if actions:
        blocks.append(ActionsBlock(block_id=f"task-{task.id}-actions", elements=actions))
    blocks.append(
        context(
            f":cloud: AWS action from a savings recommendation · {task.key} · updated {_clock(now)}"
        )
    )
    return finish(blocks)


def render_action_plan(
    task: Task, approvals: Sequence[Approval] = (), *, required: int = 1
) -> list[dict[str, Any]]:
    """The action's plan in its thread, with the same Approve / Reject as code plans."""
    plan = task.plan or {}
    data = _data(task)
    steps = [
        f"{n}. *{escape(str(step.get('kind')))}* — {escape(str(step.get('description')))}"
        for n, step in enumerate(plan.get("steps", []), 1)
    ]
    blocks: list[Block] = [
        header(f"Proposed AWS change · {task.key}"),
        section(f"*Summary*\n{escape(str(plan.get('summary', '')))}"),
        section(f"*Evidence*\n{escape(str(plan.get('root_cause', '')))}"),
        section("*Steps*\n" + "\n".join(steps)),
        fields_section(
            [
                ("Dry run first", f"`{escape(str(plan.get('test_command', '')))}`"),
                ("Risk", str(plan.get("risk", "?"))),
                ("Saving", _saving(data)),
                (
                    "Steward",
                    f"{escape(str(data.get('steward', '?')))} (autonomy {data.get('autonomy')})",
                ),
                (
                    "Approvals needed",
                    "none (steward autonomy)" if data.get("autonomous") else str(required),
                ),
            ]
        ),
        DividerBlock(),
    ]
    blocks.extend(_decision(task, approvals, required, data))
    return finish(blocks)


def _decision(
    task: Task, approvals: Sequence[Approval], required: int, data: dict[str, Any]
) -> list[Block]:
    state = task.task_state
    approved = [a for a in approvals if a.decision == "approve"]
    rejected = [a for a in approvals if a.decision == "reject"]
    if rejected:
        last = rejected[-1]
        return [
            section(
                f":no_entry_sign: Rejected by {mention(last.user_id)}: "
                f"{escape(last.comment or '')}. Nothing was changed in AWS."
            )
        ]
    if data.get("autonomous"):
        return [section(f":robot_face: {escape(str(data.get('autonomy_note', '')))}")]
    lines = [
        f":white_check_mark: Approved by {mention(a.user_id)}"
        + (f" — {escape(a.comment)}" if a.comment else "")
        for a in approved
    ]
    blocks: list[Block] = [section("\n".join(lines))] if lines else []
    if state == TaskState.AWAITING_APPROVAL:
        if approved:
            blocks.append(context(f"{len(approved)} of {required} approvals"))
        blocks.append(
            ActionsBlock(
                block_id=f"plan-{task.id}-decision",
                elements=[
                    button("Approve", APPROVE, str(task.id), style="primary"),
                    button("Approve with comment…", APPROVE_WITH_COMMENT, str(task.id)),
                    button("Reject…", REJECT, str(task.id), style="danger"),
                ],
            )
        )
        blocks.append(context("Nothing changes in AWS until the action is approved."))
    elif state == TaskState.CANCELLED and not approved:
        blocks.append(context("Cancelled before a decision; nothing was changed in AWS."))
    return blocks


def render_action_outcome(task: Task) -> list[dict[str, Any]]:
    """The closing message of an action: what was done, or what went wrong."""
    state = task.task_state
    result = (task.result or {}).get("action") or {}
    steps = [f"• {escape(str(step))}" for step in result.get("steps", [])]
    blocks: list[Block] = [header(f"{STATE_EMOJI[state]} {task.key} {state.label}")]
    if state == TaskState.SUCCEEDED:
        blocks.append(section(f"*Done:* {escape(str(result.get('summary', '')))}"))
        if steps:
            blocks.append(section("*Steps*\n" + "\n".join(steps)))
        if result.get("snapshot_id"):
            blocks.append(context(f"Snapshot kept: `{escape(str(result['snapshot_id']))}`"))
    elif state == TaskState.FAILED:
        blocks.append(section(f"*What went wrong:* {escape(task.error or 'unknown error')}"))
        if steps:
            blocks.append(section("*Steps done before it stopped*\n" + "\n".join(steps)))
        blocks.append(
            ActionsBlock(
                block_id=f"outcome-{task.id}-actions",
                elements=[button("Retry", RETRY, str(task.id), style="primary")],
            )
        )
    elif state == TaskState.REJECTED:
        blocks.append(section("The action was rejected; nothing was changed in AWS."))
    elif state == TaskState.CANCELLED:
        blocks.append(section("The action was cancelled."))
    blocks.append(context(":cloud: AWS action · checked, dry-run, then changed by Agentbot"))
    return finish(blocks)


def render_request_ack(what: str, user: str) -> str:
    """The parent message a report is posted under (`what`: "cost report (week)")."""
    return (
        f":hourglass_flowing_sand: AWS {escape(what)} for {mention(user)}: "
        "it follows in the thread."
    )
