"""The Home tab's view, built by pure functions from `jobs.home.HomeData`.

The buttons are the thread's own (the same action ids and values as `bot.blocks`), so
a click on Home is handled, authorized and de-duplicated exactly as one in a thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock
from slack_sdk.models.views import View

from bot.blocks import (
    CANCEL,
    RETRY,
    STATE_EMOJI,
    button,
    context,
    elapsed,
    escape,
    fields_section,
    header,
    mention,
    plain_clip,
    plan_buttons,
    plan_heading,
    plan_version,
    section,
)
from jobs.home import CostSummary, HomeData, OpsFigures, ScanSummary, TeamFigures
from jobs.models import Task
from jobs.origin import thread_link
from jobs.states import CANCELLABLE, TaskState

# Slack's limit for a Home view.
MAX_HOME_BLOCKS = 100
SPARKS = "▁▂▃▄▅▆▇█"
LINE_TEXT = 80


def sparkline(values: Sequence[int]) -> str:
    """`▁▁▃█▁` for the values, scaled to the largest (all `▁` when all are zero)."""
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[round(v / top * (len(SPARKS) - 1))] for v in values)


def duration(seconds: float) -> str:
    """`2h 05m`, `7m 30s`, `45s`."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def task_link(task: Task) -> str:
    """`<thread|T-3 · first line>` (plain when the card is not posted yet)."""
    first = task.description.strip().splitlines()[0] if task.description.strip() else ""
    label = escape(plain_clip(f"{task.key} · {first}", LINE_TEXT)).replace("|", "¦")
    if task.card_ts:
        return f"<{thread_link(task.channel, task.card_ts)}|{label}>"
    return label


def _waiting(data: HomeData) -> list[Block]:
    blocks: list[Block] = [header(":inbox_tray: Waiting for you")]
    if not data.viewer.approver:
        return [*blocks, context("Only approvers decide plans; yours show up for them here.")]
    if not data.waiting:
        return [*blocks, section("Nothing waits for your approval.")]
    for task in data.waiting:
        blocks.append(
            section(
                f"*{task_link(task)}*\n{plan_heading(task.key, plan_version(task))} · by "
                f"{mention(task.requester)} · `{escape(task.repo)}` · "
                f"waiting {elapsed(task, data.now)}"
            )
        )
        if task.id in data.approved_by_you:
            blocks.append(
                context(":white_check_mark: You approved; it waits for another approver.")
            )
            continue
        blocks.append(
            ActionsBlock(
                block_id=f"home-plan-{task.id}",
                # The version rides on the buttons: a Home drawn before a revision
                # cannot approve the newer plan unseen.
                elements=plan_buttons(task),
            )
        )
    return blocks


def _yours(data: HomeData) -> list[Block]:
    blocks: list[Block] = [header(":clipboard: Your tasks")]
    if not (data.running or data.failed or data.succeeded):
        return [*blocks, section("None yet. Start one with `/agent run <description>`.")]
    for task in data.running:
        state = task.task_state
        blocks.append(
            section(
                f"{STATE_EMOJI[state]} *{task_link(task)}*\n{state.label} · "
                f"{elapsed(task, data.now)}"
            )
        )
        if state in CANCELLABLE:
            blocks.append(
                ActionsBlock(
                    block_id=f"home-task-{task.id}",
                    elements=[button("Cancel", CANCEL, str(task.id), style="danger")],
                )
            )
    for task in data.failed:
        error = escape(plain_clip((task.error or "unknown error").splitlines()[0], 200))
        blocks.append(section(f"{STATE_EMOJI[TaskState.FAILED]} *{task_link(task)}*\n{error}"))
        blocks.append(
            ActionsBlock(
                block_id=f"home-task-{task.id}",
                elements=[button("Retry", RETRY, str(task.id), style="primary")],
            )
        )
    if data.succeeded:
        lines = []
        for task in data.succeeded:
            result = task.result or {}
            pull = result.get("pr_url")
            where = (
                f"<{pull}|pull request>"
                if pull
                else f"branch `{escape(str(result.get('branch')))}`"
            )
            lines.append(f"{STATE_EMOJI[TaskState.SUCCEEDED]} {task_link(task)} · {where}")
        blocks.append(section("*Recently succeeded*\n" + "\n".join(lines)))
    return blocks


def _team(team: TeamFigures) -> list[Block]:
    states = " · ".join(
        f"{STATE_EMOJI[state]} {state.label} {team.by_state[state]}"
        for state in TaskState
        if team.by_state.get(state)
    )
    counts = [count for _day, count in team.succeeded_per_day]
    first, last = team.succeeded_per_day[0][0], team.succeeded_per_day[-1][0]
    median = (
        f"{duration(team.median_to_result_seconds)} ({team.results_measured} tasks, 14 days)"
        if team.median_to_result_seconds is not None
        else "no results in 14 days"
    )
    blocks: list[Block] = [
        header(":bar_chart: Team"),
        section(f"*Tasks by state now*\n{states or 'No tasks yet.'}"),
        section(
            f"*Succeeded per day, {first:%d %b} to {last:%d %b}*\n"
            f"`{sparkline(counts)}`  {sum(counts)} in 14 days, at most {max(counts)} a day"
        ),
        fields_section(
            [
                ("Median request → result (PR or branch)", median),
                ("Agent cost this week", f"${team.agent_cost_week_usd:.2f}"),
            ]
        ),
    ]
    if team.latest:
        lines = [
            f"{STATE_EMOJI[t.task_state]} {task_link(t)} · {t.task_state.label} · "
            f"{mention(t.requester)}"
            for t in team.latest
        ]
        blocks.append(section("*Latest*\n" + "\n".join(lines)))
    return blocks


def _scan_line(scan: ScanSummary | None, now: datetime) -> str:
    if scan is None:
        return "No AWS status scan yet; `/agent aws status` runs one."
    found = ", ".join(f"{count} {health}" for health, count in scan.counts.items() if count)
    where = f"{len(scan.accounts)} account(s), {len(scan.regions)} region(s)"
    errors = f", {scan.errors} error(s)" if scan.errors else ""
    ago = duration(max(0.0, (now - scan.finished_at).total_seconds()))
    return (
        f"{found or 'no resources'} · {where}{errors} · "
        f"{scan.finished_at:%Y-%m-%d %H:%M} UTC ({ago} ago)"
    )


def _cost_line(cost: CostSummary | None) -> str:
    if cost is None:
        return "No costs fetched this month yet; the digest or `/agent aws cost` fetches them."
    yesterday = f"${cost.yesterday_usd:,.2f}" if cost.yesterday_usd is not None else "not fetched"
    text = (
        f"Yesterday ({cost.yesterday:%d %b}) {yesterday} · month to date "
        f"${cost.month_to_date_usd:,.2f}"
    )
    if cost.budget_usd is not None and cost.budget_state is not None:
        text += f" · budget ${cost.budget_usd:,.0f}: *{cost.budget_state}*"
    return f"{text} ({escape(cost.metric)})"


def _ops(ops: OpsFigures, now: datetime) -> list[Block]:
    depth = ", ".join(f"{name} {count}" for name, count in ops.queue_lengths.items())
    blocks: list[Block] = [
        header(":gear: Ops"),
        fields_section([("Queue depth", depth), ("Workers online", str(ops.workers))]),
    ]
    if ops.aws_configured:
        blocks.append(section(f"*Last AWS status scan*\n{_scan_line(ops.scan, now)}"))
        blocks.append(section(f"*AWS cost*\n{_cost_line(ops.cost)}"))
    return blocks


def render_home(data: HomeData, *, notice: str | None = None) -> View:
    """One person's Home tab: waiting plans, their tasks, the team, and ops.

    Args:
        data: What the person may see, as read now.
        notice: A short line for the top (why a click from Home was refused, say),
            shown as it is, emoji codes included.
    """
    blocks: list[Block] = []
    if notice:
        blocks.append(section(escape(notice)))
    blocks += _waiting(data)
    blocks.append(DividerBlock())
    blocks += _yours(data)
    blocks.append(DividerBlock())
    blocks += _team(data.team)
    blocks.append(DividerBlock())
    blocks += _ops(data.ops, data.now)
    blocks.append(context(f"Updated {data.now:%H:%M:%S} UTC"))
    if len(blocks) > MAX_HOME_BLOCKS:
        blocks = [*blocks[: MAX_HOME_BLOCKS - 2], context("_More was left out to fit Slack._")]
        blocks.append(context(f"Updated {data.now:%H:%M:%S} UTC"))
    return View(type="home", callback_id="agentbot_home", blocks=blocks)
