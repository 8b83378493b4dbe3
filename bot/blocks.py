"""Block Kit for tasks, built by pure functions with `slack_sdk.models.blocks`.

Slack's own validation runs when a message is rendered (`to_dict()`), and every text
is clipped to Slack's limits here, so a long plan or log is truncated with a note
rather than rejected by Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import escape as escape  # re-exported: the card builders import it from here
from jobs.models import Approval, PlanVersion, Task
from jobs.states import CANCELLABLE, TaskState

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
MAX_BLOCKS = 50
MAX_FIELDS = 10
# A chat.postMessage text (Slack truncates past 40,000 characters).
TEXT_LIMIT = 39_000
# What a status card shows of a long description; the whole of it goes in its thread.
DESCRIPTION_HEAD = 280
DESCRIPTION_HEAD_LINES = 5  # lines with text; blank ones do not count
# What a card's "Rejected by" field shows of the reason (the plan shows all of it).
REASON_HEAD = 300
TRUNCATED = "… _(truncated)_"

STATE_EMOJI = {
    TaskState.QUEUED: ":hourglass_flowing_sand:",
    TaskState.PLANNING: ":mag:",
    TaskState.AWAITING_APPROVAL: ":raised_hand:",
    TaskState.APPROVED: ":white_check_mark:",
    TaskState.EXECUTING: ":hammer_and_wrench:",
    TaskState.SUCCEEDED: ":tada:",
    TaskState.FAILED: ":x:",
    TaskState.REJECTED: ":no_entry_sign:",
    TaskState.CANCELLED: ":black_square_for_stop:",
}

APPROVE = "plan_approve"
APPROVE_WITH_COMMENT = "plan_approve_comment"
REJECT = "plan_reject"
CANCEL = "task_cancel"
RETRY = "task_retry"
# Also offered on the Home tab: the id is part of the interface, not of this module.
REQUEST_CHANGES = "plan_request_changes"
REJECT_VIEW = "reject_reason"
APPROVE_VIEW = "approve_comment"
CHANGES_VIEW = "plan_changes"
# Buttons whose value names a plan version (`plan_value`), not only a task.
PLAN_BUTTONS = (APPROVE, APPROVE_WITH_COMMENT, REJECT, REQUEST_CHANGES)


# What `escape` writes; a cut inside one would show Slack a stray `&am`.
ENTITIES = ("&amp;", "&lt;", "&gt;")


def _cut(text: str, length: int) -> str:
    """The first `length` characters of `text`, shorter if that would split an entity."""
    for entity in ENTITIES:
        # An entity starting in the last few characters kept and ending after them.
        start = text.find(entity, max(0, length - len(entity) + 1), length + len(entity) - 1)
        if start != -1:
            return text[:start]
    return text[:length]


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, saying so when it was cut (never mid-entity)."""
    if len(text) <= limit:
        return text
    return _cut(text, limit - len(TRUNCATED)).rstrip() + TRUNCATED


def plain_clip(text: str, limit: int) -> str:
    """Like `clip`, for plain-text fields (no markdown in the note)."""
    if len(text) <= limit:
        return text
    return _cut(text, limit - 1).rstrip() + "…"


def mention(user: str) -> str:
    """How a user id reads in a message."""
    return f"<@{user}>" if user and user[0] in "UW" else escape(user or "someone")


def elapsed(task: Task, now: datetime | None = None) -> str:
    """How long the task has taken so far (or took), as `1h 02m` / `3m 05s`."""
    end = task.finished_at or now or datetime.now(UTC)
    start = task.created_at
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s"


def section(text: str) -> SectionBlock:
    """A markdown section clipped to Slack's limit."""
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_LIMIT)))


def fields_section(pairs: Sequence[tuple[str, str]]) -> SectionBlock:
    """A section of `*label*\\nvalue` fields (at most ten, as Slack allows)."""
    return SectionBlock(
        fields=[
            MarkdownTextObject(text=clip(f"*{label}*\n{value}", FIELD_LIMIT))
            for label, value in pairs[:MAX_FIELDS]
        ]
    )


def context(text: str) -> ContextBlock:
    """A small grey line."""
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, CONTEXT_LIMIT))])


def header(text: str) -> HeaderBlock:
    """A header clipped to 150 characters."""
    return HeaderBlock(text=PlainTextObject(text=plain_clip(text, HEADER_LIMIT), emoji=True))


def button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    """A button carrying the task id as its value."""
    return ButtonElement(text=text, action_id=action_id, value=value, style=style)


LEFT_OUT = "_More was left out to fit Slack._"


def finish(blocks: list[Block], *, keep_last: int = 0) -> list[dict[str, Any]]:
    """Validate, keep within 50 blocks, and serialize.

    Args:
        blocks: The message's blocks, in order.
        keep_last: How many blocks at the end must survive a cut (the buttons, say):
            blocks before them are dropped instead, and a note says so.

    Returns:
        The blocks as Slack's JSON, at most `MAX_BLOCKS` of them.
    """
    if len(blocks) > MAX_BLOCKS:
        tail = blocks[len(blocks) - keep_last :] if keep_last else []
        head = blocks[: MAX_BLOCKS - 1 - len(tail)]
        blocks = [*head, context(LEFT_OUT), *tail]
    return [block.to_dict() for block in blocks]


def listed(title: str, lines: Sequence[str]) -> list[Block]:
    """`title` over `lines`, in as many sections as Slack's section limit needs.

    Lines are never split between sections; a single line over the limit is clipped.
    """
    sections: list[Block] = []
    chunk, size = [title], len(title)
    for line in lines:
        if size + 1 + len(line) > SECTION_LIMIT:
            sections.append(section("\n".join(chunk)))
            chunk, size = [], -1
        chunk.append(line)
        size += 1 + len(line)
    sections.append(section("\n".join(chunk)))
    return sections


def title(task: Task) -> str:
    """`T-12 · first line of the description`."""
    first = task.description.strip().splitlines()[0] if task.description.strip() else ""
    return f"{task.key} · {first}"


def agent_label(scripted: bool, name: str, sandboxed: bool = True) -> str:
    """Who did the work, stated plainly: a scripted agent is never presented as AI.

    Work done outside the sandbox (`[agent] sandbox = "off"`) says so on every card.
    """
    if scripted:
        label = ":robot_face: Planned and executed by the *scripted agent* (deterministic, not AI)"
    else:
        label = f":sparkles: Planned and executed by *{escape(name)}*"
    return label if sandboxed else f"{label} · :warning: *unsandboxed*"


def approvers_of(approvals: Sequence[Approval]) -> list[str]:
    """Users who approved, in order."""
    return [a.user_id for a in approvals if a.decision == "approve"]


def plan_version(task: Task) -> int:
    """The version of the task's plan (1 for a task not yet stored, whose column is unset)."""
    return task.plan_version or 1


def current_decisions(task: Task, approvals: Sequence[Approval]) -> list[Approval]:
    """The decisions on the task's current plan version (earlier versions' do not count)."""
    return [a for a in approvals if (a.plan_version or 1) == plan_version(task)]


def plan_value(task: Task) -> str:
    """A plan button's value: the task and the plan version it decides (`12:2`)."""
    return f"{task.id}:{plan_version(task)}"


def plan_buttons(task: Task) -> list[ButtonElement]:
    """The decisions on a plan, each carrying the version it decides: in the thread and on Home."""
    value = plan_value(task)
    return [
        button("Approve", APPROVE, value, style="primary"),
        button("Approve with comment…", APPROVE_WITH_COMMENT, value),
        button("Request changes…", REQUEST_CHANGES, value),
        button("Reject…", REJECT, value, style="danger"),
    ]


def plan_heading(key: str, version: int) -> str:
    """`Plan for T-3`, then `Plan v2 for T-3` once a change was asked for."""
    return f"Plan for {key}" if version <= 1 else f"Plan v{version} for {key}"


def render_status_card(
    task: Task,
    approvals: Sequence[Approval] = (),
    *,
    agent: str = "scripted agent",
    scripted: bool = True,
    sandboxed: bool = True,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The one card per task, edited in place as the task moves."""
    state = task.task_state
    approvals = current_decisions(task, approvals)
    pairs = [
        ("State", f"{STATE_EMOJI[state]} {state.label}"),
        ("Requester", mention(task.requester)),
        ("Repo", f"`{escape(task.repo)}`"),
        ("Elapsed", elapsed(task, now)),
    ]
    approved_by = approvers_of(approvals)
    if approved_by:
        pairs.append(("Approved by", ", ".join(mention(u) for u in approved_by)))
    rejected = [a for a in approvals if a.decision == "reject"]
    if rejected:
        last = rejected[-1]
        reason = f": {escape(plain_clip(last.comment, REASON_HEAD))}" if last.comment else ""
        pairs.append(("Rejected by", mention(last.user_id) + reason))
    if task.agent_cost_usd:
        pairs.append(("Agent cost", f"${task.agent_cost_usd:.2f}"))
    if task.source != "slack":
        pairs.append(("Source", escape(task.source)))
    blocks: list[Block] = [
        header(title(task)),
        section(description_head(task)),
        fields_section(pairs),
    ]
    if state == TaskState.FAILED and task.error:
        blocks.append(section(f":warning: *Error:* {escape(task.error)}"))
    if state == TaskState.SUCCEEDED and task.result:
        link = task.result.get("pr_url") or f"branch `{escape(str(task.result.get('branch')))}`"
        blocks.append(section(f":white_check_mark: *Result:* {link}"))
    actions: list[ButtonElement] = []
    if state in CANCELLABLE:
        actions.append(button("Cancel", CANCEL, str(task.id), style="danger"))
    if state == TaskState.FAILED:
        actions.append(button("Retry", RETRY, str(task.id), style="primary"))
    if actions:
        blocks.append(ActionsBlock(block_id=f"task-{task.id}-actions", elements=actions))
    label = agent_label(scripted, agent, sandboxed)
    blocks.append(context(f"{label} · {task.key} · updated {_clock(now)}"))
    return finish(blocks)


def description_head(task: Task) -> str:
    """What the card shows of the description: all of it when short, else its head."""
    if not description_is_long(task):
        return escape(task.description)
    head = plain_clip("\n".join(_lines(task)[:DESCRIPTION_HEAD_LINES]), DESCRIPTION_HEAD)
    if not head.endswith("…"):
        head += "…"
    return f"{escape(head)}\n_The full description is in the thread._"


def description_is_long(task: Task) -> bool:
    """Whether the card shows only the head of the description (the thread has it all)."""
    return len(task.description) > DESCRIPTION_HEAD or len(_lines(task)) > DESCRIPTION_HEAD_LINES


def _lines(task: Task) -> list[str]:
    return [line for line in task.description.splitlines() if line.strip()]


def render_full_description(task: Task) -> str:
    """The whole description, for the thread of a card that shows only its head."""
    return clip(f"*Full description of {task.key}*\n{escape(task.description)}", TEXT_LIMIT)


def _clock(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%H:%M:%S UTC")


def render_plan(
    task: Task,
    approvals: Sequence[Approval] = (),
    *,
    required: int = 1,
    agent: str = "scripted agent",
    scripted: bool = True,
    sandboxed: bool = True,
    revision: PlanVersion | None = None,
) -> list[dict[str, Any]]:
    """The plan in the task's thread, with Approve / Reject while it awaits a decision.

    From v2 on, what changed and the change asked for come first (`revision`: the
    current version's row).
    """
    plan = task.plan or {}
    approvals = current_decisions(task, approvals)
    blocks: list[Block] = [header(plan_heading(task.key, plan_version(task)))]
    if plan_version(task) > 1:
        blocks.extend(_revision_blocks(plan, revision))
    blocks.extend(_plan_blocks(plan))
    # From here on (facts, notes, decision): kept whole when a long plan is cut.
    body = len(blocks)
    blocks.append(_plan_facts(plan, required))
    result = task.result or {}
    if result.get("plan_pr_url"):
        blocks.append(context(f":memo: PLAN.md in draft PR {result['plan_pr_url']}"))
    else:
        note = _github_note(result)
        blocks.append(
            context(
                f":memo: PLAN.md is on branch `agent/{task.key}`" + (f" · {note}" if note else "")
            )
        )
    planning = [r for r in result.get("agent_runs", []) if r.get("phase") == "plan"]
    blocks.append(context(agent_label(scripted, agent, sandboxed) + _runs_note(planning[-1:])))
    blocks.append(DividerBlock())
    blocks.extend(_decision_blocks(task, approvals, required))
    return finish(blocks, keep_last=len(blocks) - body)


def render_superseded_plan(task: Task, shown: PlanVersion) -> list[dict[str, Any]]:
    """An earlier version's message once a newer one is posted: its plan, no buttons."""
    plan = shown.plan or {}
    blocks: list[Block] = [header(plan_heading(task.key, shown.version))]
    if shown.version > 1:
        blocks.extend(_revision_blocks(plan, shown))
    blocks.extend(_plan_blocks(plan))
    body = len(blocks)
    blocks.append(_plan_facts(plan, None))
    blocks.append(DividerBlock())
    blocks.append(
        section(
            f":arrows_counterclockwise: Superseded by v{plan_version(task)}; "
            "its buttons are in the newer plan below."
        )
    )
    return finish(blocks, keep_last=len(blocks) - body)


def _revision_blocks(plan: dict[str, Any], revision: PlanVersion | None) -> list[Block]:
    """What a revised plan changed, and the change it answers."""
    changed = escape(str(plan.get("changes") or "")) or "_The planner did not say._"
    blocks: list[Block] = [section(f"*What changed*\n{changed}")]
    if revision is not None and revision.feedback:
        who = mention(revision.requested_by or "")
        blocks.append(
            context(f"Changes asked by {who}: {escape(plain_clip(revision.feedback, 1500))}")
        )
    return blocks


def _plan_blocks(plan: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [
        section(f"*Summary*\n{escape(str(plan.get('summary', '')))}"),
        section(f"*Root cause*\n{escape(str(plan.get('root_cause', '')))}"),
    ]
    files = [f"• `{escape(str(name))}`" for name in plan.get("affected_files", [])]
    if files:
        blocks.extend(listed("*Affected files*", files))
    steps = [
        f"{n}. *{escape(str(step.get('kind')))}* — {escape(str(step.get('description')))}"
        for n, step in enumerate(plan.get("steps", []), 1)
    ]
    blocks.extend(listed("*Steps (tests first)*", steps))
    return blocks


def _plan_facts(plan: dict[str, Any], required: int | None) -> SectionBlock:
    pairs = [
        ("Test command", f"`{escape(str(plan.get('test_command', '')))}`"),
        ("Risk", str(plan.get("risk", "?"))),
        ("Estimate", f"{plan.get('estimated_minutes', '?')} min"),
    ]
    if required is not None:
        pairs.append(("Approvals needed", str(required)))
    return fields_section(pairs)


def _decision_blocks(task: Task, approvals: Sequence[Approval], required: int) -> list[Block]:
    state = task.task_state
    approved = [a for a in approvals if a.decision == "approve"]
    rejected = [a for a in approvals if a.decision == "reject"]
    if rejected:
        last = rejected[-1]
        return [
            section(
                f":no_entry_sign: Rejected by {mention(last.user_id)}: {escape(last.comment or '')}"
            )
        ]
    lines = []
    for approval in approved:
        note = f" — {escape(approval.comment)}" if approval.comment else ""
        lines.append(f":white_check_mark: Approved by {mention(approval.user_id)}{note}")
    blocks: list[Block] = [section("\n".join(lines))] if lines else []
    if state == TaskState.AWAITING_APPROVAL:
        if approved:
            blocks.append(context(f"{len(approved)} of {required} approvals"))
        blocks.append(
            ActionsBlock(
                block_id=f"plan-{task.id}-decision",
                elements=plan_buttons(task),
            )
        )
    elif state == TaskState.CANCELLED and not approved:
        blocks.append(context("Cancelled before a decision."))
    elif state in (TaskState.QUEUED, TaskState.PLANNING):
        blocks.append(
            context(
                f":pencil2: Changes were asked for; v{plan_version(task) + 1} is being written."
            )
        )
    return blocks


def render_outcome(
    task: Task, *, agent: str = "scripted agent", scripted: bool = True, sandboxed: bool = True
) -> list[dict[str, Any]]:
    """The closing message in the thread: completion card, or what went wrong."""
    state = task.task_state
    blocks: list[Block] = [header(f"{STATE_EMOJI[state]} {task.key} {state.label}")]
    result = task.result or {}
    if state == TaskState.SUCCEEDED:
        before = result.get("tests_before", {})
        after = result.get("tests_after", {})
        files = result.get("files_changed", [])
        link = result.get("pr_url")
        runs = result.get("agent_runs", [])
        cost_known = all(r.get("cost_known", True) for r in runs)
        pairs = [
            (
                ("Pull request", link)
                if link
                else ("Branch", f"`{escape(str(result.get('branch')))}`")
            ),
            (
                "Files changed",
                f"{len(files)} (+{result.get('lines_added', 0)} -{result.get('lines_removed', 0)})",
            ),
            ("Tests before", _counts(before)),
            ("Tests after", _counts(after)),
            ("Duration", f"{result.get('duration_seconds', 0)} s"),
            (
                "Agent cost",
                f"${task.agent_cost_usd:.2f}" if cost_known else "not reported by the agent",
            ),
            ("Agent turns", str(sum(int(r.get("turns") or 0) for r in runs))),
        ]
        tokens = _tokens(runs)
        if tokens:
            pairs.append(("Agent tokens", tokens))
        blocks.append(fields_section(pairs))
        if files:
            blocks.append(section("\n".join(f"• `{escape(str(f))}`" for f in files)))
        outside = result.get("out_of_scope") or []
        if outside:
            listing = ", ".join(f"`{escape(str(f))}`" for f in outside[:20])
            more = f" and {len(outside) - 20} more" if len(outside) > 20 else ""
            blocks.append(
                section(f":warning: *Outside the approved plan's files:* {listing}{more}")
            )
        if not link:
            blocks.append(context(_github_note(result) or _NO_GITHUB))
        sessions = [
            f"{escape(str(r.get('phase')))} `{escape(str(r.get('session_id')))}`"
            for r in runs
            if r.get("session_id")
        ]
        if sessions:
            blocks.append(context("Agent sessions: " + ", ".join(sessions)))
    elif state == TaskState.FAILED:
        blocks.append(section(f"*What went wrong:* {escape(task.error or 'unknown error')}"))
        evidence = result.get("evidence")
        if evidence:
            blocks.append(section(f"```{clip(escape(str(evidence)), SECTION_LIMIT - 10)}```"))
        blocks.append(
            ActionsBlock(
                block_id=f"outcome-{task.id}-actions",
                elements=[button("Retry", RETRY, str(task.id), style="primary")],
            )
        )
    elif state == TaskState.REJECTED:
        blocks.append(section("The plan was rejected; nothing was changed."))
    elif state == TaskState.CANCELLED:
        blocks.append(section("The task was cancelled; its agent was stopped."))
    blocks.append(context(agent_label(scripted, agent, sandboxed)))
    return finish(blocks)


_NO_GITHUB = "No GitHub access is configured for this repo: branch only."


def _github_note(result: dict[str, Any]) -> str:
    """Why there is no pull request link, when there is none."""
    if result.get("github") == "error" and result.get("github_error"):
        return (
            ":warning: The pull request could not be opened or updated: "
            f"{escape(plain_clip(str(result['github_error']), 300))}. The work is on the branch."
        )
    if result.get("github") == "unconfigured":
        return _NO_GITHUB
    return ""


def _tokens(runs: Sequence[dict[str, Any]]) -> str:
    """`24,763 in · 122 out` for the runs given; empty when the agent reported none."""
    spent = [sum(int(r.get(key) or 0) for r in runs) for key in ("input_tokens", "output_tokens")]
    return f"{spent[0]:,} in · {spent[1]:,} out" if any(spent) else ""


def _runs_note(runs: Sequence[dict[str, Any]]) -> str:
    """` · 6 turns · $0.04` for the agent runs given (empty when there are none)."""
    if not runs:
        return ""
    turns = sum(int(r.get("turns") or 0) for r in runs)
    if all(r.get("cost_known", True) for r in runs):
        cost = f"${sum(float(r.get('cost_usd') or 0) for r in runs):.2f}"
    else:
        cost = "cost not reported"
    return f" · {turns} turn{'' if turns == 1 else 's'} · {cost}"


def _counts(run: dict[str, Any]) -> str:
    if not run:
        return "—"
    text = f"{run.get('passed', 0)} passed, {run.get('failed', 0)} failed"
    return text + (f", {run['errors']} errors" if run.get("errors") else "")


def render_progress(task: Task, lines: Sequence[str], now: datetime | None = None) -> str:
    """The single progress message, as plain mrkdwn text.

    It is edited as the agent's lines arrive, so the moment it is rendered is the
    agent's last activity: Slack shows it relative to whoever reads it ("3 minutes
    ago"), and a run gone quiet shows as such without another edit.
    """
    state = task.task_state
    moment = now or datetime.now(UTC)
    recent = "\n".join(f"• {escape(line)}" for line in lines[-5:])
    activity = f"<!date^{int(moment.timestamp())}^{{ago}}|at {moment:%H:%M:%S} UTC>"
    return clip(
        f"{STATE_EMOJI[state]} *{state.label.capitalize()}* · {elapsed(task, now)} · "
        f"last activity {activity}\n{recent}",
        SECTION_LIMIT,
    )


def render_task_list(tasks: Sequence[Task], heading: str) -> list[dict[str, Any]]:
    """`/agent list`: one line per task."""
    if not tasks:
        return finish([section(f"*{escape(heading)}*\nNo tasks.")])
    lines = [
        f"{STATE_EMOJI[t.task_state]} *{t.key}* {t.task_state.label} · `{escape(t.repo)}` · "
        f"{mention(t.requester)} · {escape(plain_clip(t.description.splitlines()[0], 80))}"
        for t in tasks
    ]
    return finish([section(f"*{escape(heading)}*\n" + "\n".join(lines))])


def changes_modal(task: Task, *, channel: str | None, version: int | None) -> View:
    """The modal that asks what to change in the plan (Request changes…)."""
    from slack_sdk.models.blocks import InputBlock, PlainTextInputElement

    shown = version or plan_version(task)
    return View(
        type="modal",
        callback_id=CHANGES_VIEW,
        private_metadata=f"{task.id}|{channel or ''}|{shown}",
        title=PlainTextObject(text="Request changes"),
        submit=PlainTextObject(text="Send to planner"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            section(f"*{escape(plain_clip(title(task), 200))}* · plan v{shown}"),
            InputBlock(
                block_id="reason",
                label=PlainTextObject(text="What should change in the plan?"),
                element=PlainTextInputElement(action_id="text", multiline=True, max_length=2000),
            ),
        ],
    )


def reason_modal(
    task: Task, *, approve: bool, channel: str | None, version: int | None = None
) -> View:
    """The modal that asks for a rejection reason (or an approval comment)."""
    from slack_sdk.models.blocks import InputBlock, PlainTextInputElement

    label = "Comment (optional)" if approve else "Why reject this plan?"
    return View(
        type="modal",
        callback_id=APPROVE_VIEW if approve else REJECT_VIEW,
        private_metadata=f"{task.id}|{channel or ''}|{version or plan_version(task)}",
        title=PlainTextObject(text="Approve plan" if approve else "Reject plan"),
        submit=PlainTextObject(text="Approve" if approve else "Reject"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            section(f"*{escape(plain_clip(title(task), 200))}*"),
            InputBlock(
                block_id="reason",
                label=PlainTextObject(text=label),
                optional=approve,
                element=PlainTextInputElement(action_id="text", multiline=True, max_length=2000),
            ),
        ],
    )
