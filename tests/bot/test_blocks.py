"""Block Kit rendering: Slack's limits are respected, text is escaped, buttons fit state."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from slack_sdk.models.blocks import Block

from bot import blocks
from jobs.models import Approval, Task
from sandbox.fakeslack import block_errors

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def make_task(**overrides: object) -> Task:
    values: dict[str, object] = {
        "id": 12,
        "description": "fix the login redirect",
        "repo": "acme/web",
        "requester": "UREQ",
        "channel": "CDEV",
        "state": "queued",
        "source": "slack",
        "agent_cost_usd": 0.0,
        "created_at": NOW - timedelta(minutes=3, seconds=5),
        "finished_at": None,
        "error": None,
        "result": None,
        "plan": None,
    }
    values.update(overrides)
    return Task(**values)


def huge_plan() -> dict[str, object]:
    return {
        "summary": "s" * 5000,
        "root_cause": "r" * 5000,
        "affected_files": [f"src/module_{n}.py" for n in range(200)],
        "steps": [{"kind": "implement", "description": "d" * 1900} for _ in range(50)],
        "test_command": "pytest -q",
        "risk": "high",
        "estimated_minutes": 90,
    }


def test_card_shows_state_requester_repo_elapsed_and_cancel() -> None:
    """A running task's card has its facts and a Cancel button, and passes Slack's checks."""
    rendered = blocks.render_status_card(make_task(state="executing"), now=NOW)
    text = str(rendered)
    assert "T-12 · fix the login redirect" in text
    assert "executing" in text and "<@UREQ>" in text and "acme/web" in text
    assert "3m 05s" in text
    assert blocks.CANCEL in text and blocks.RETRY not in text
    assert block_errors(rendered) == []


def test_failed_card_has_error_and_retry_not_cancel() -> None:
    """A failed task shows its error summary and a Retry button only."""
    rendered = blocks.render_status_card(
        make_task(state="failed", error="GREEN did not hold"), now=NOW
    )
    text = str(rendered)
    assert "GREEN did not hold" in text and blocks.RETRY in text and blocks.CANCEL not in text


def test_huge_plan_is_truncated_within_slack_limits() -> None:
    """A plan far over Slack's limits renders within them, saying it was truncated."""
    task = make_task(state="awaiting_approval", plan=huge_plan())
    rendered = blocks.render_plan(task)
    assert block_errors(rendered) == []
    assert len(rendered) <= 50
    assert "truncated" in str(rendered)
    assert blocks.APPROVE in str(rendered) and blocks.REJECT in str(rendered)


def test_long_title_fits_the_header() -> None:
    """A 4000-character description still gives a valid header."""
    rendered = blocks.render_status_card(make_task(description="é" * 4000), now=NOW)
    assert len(rendered[0]["text"]["text"]) <= 150
    assert block_errors(rendered) == []


def test_user_text_cannot_mention_or_link() -> None:
    """Slack control sequences in a description are escaped, not interpreted."""
    rendered = blocks.render_status_card(
        make_task(description="ping <!channel> and <@U999> <https://evil|click>"), now=NOW
    )
    section = rendered[1]["text"]["text"]
    assert "<!channel>" not in section and "&lt;!channel&gt;" in section


def test_decided_plan_replaces_buttons_with_who_decided() -> None:
    """After approval the buttons are gone and the approver and comment are shown."""
    task = make_task(state="approved", plan=huge_plan())
    approvals = [Approval(task_id=12, user_id="UAPP", decision="approve", comment="ship it")]
    rendered = blocks.render_plan(task, approvals)
    assert blocks.APPROVE not in str(rendered)
    assert "Approved by <@UAPP> — ship it" in str(rendered)
    rejected = blocks.render_plan(
        make_task(state="rejected", plan=huge_plan()),
        [Approval(task_id=12, user_id="UAPP", decision="reject", comment="too risky")],
    )
    assert "Rejected by <@UAPP>: too risky" in str(rejected)


def test_scripted_agent_is_never_presented_as_ai() -> None:
    """Cards say plainly when the scripted agent did the work."""
    text = str(blocks.render_status_card(make_task(), scripted=True, now=NOW))
    assert "scripted agent" in text and "not AI" in text


def many_steps_plan(steps: int) -> dict[str, object]:
    return {
        "summary": "Split the billing module.",
        "root_cause": "One module does everything.",
        "affected_files": [f"src/billing/part_{n}.py" for n in range(300)],
        "steps": [
            {"kind": "implement", "description": f"Move function {n} <& co> " + "d" * 150}
            for n in range(1, steps + 1)
        ],
        "test_command": "pytest -q",
        "risk": "medium",
        "estimated_minutes": 600,
    }


def test_a_plan_of_very_many_steps_is_cut_to_fifty_blocks_keeping_its_buttons() -> None:
    """Hundreds of steps: at most 50 valid blocks, whole steps in order, a note, the buttons."""
    plan = many_steps_plan(1000)
    task = make_task(state="awaiting_approval", plan=plan)
    rendered = blocks.render_plan(task)

    # Uncut, the steps alone would need far more than Slack's 50 blocks.
    assert len(blocks.listed("*Steps*", ["x" * 170] * 1000)) > blocks.MAX_BLOCKS
    assert len(rendered) == blocks.MAX_BLOCKS
    assert block_errors(rendered) == []
    for block in Block.parse_all(rendered):
        assert block is not None
        block.validate_json()
    assert blocks.LEFT_OUT in str(rendered)
    # The decision survives the cut: the last block holds the plan's four buttons.
    assert [e["action_id"] for e in rendered[-1]["elements"]] == [
        blocks.APPROVE,
        blocks.APPROVE_WITH_COMMENT,
        blocks.REQUEST_CHANGES,
        blocks.REJECT,
    ]
    assert "*Test command*" in str(rendered) and "Approvals needed" in str(rendered)
    # Steps shown are whole and numbered from 1 without a gap, more than one section holds.
    shown = re.findall(
        r"^(\d+)\. \*implement\* — Move function (\d+) &lt;&amp; co&gt; d{150}$",
        "\n".join(b["text"]["text"] for b in rendered if b["type"] == "section" and "text" in b),
        re.MULTILINE,
    )
    numbers = [int(n) for n, _ in shown]
    assert numbers == list(range(1, len(numbers) + 1))
    assert all(n == m for n, m in shown)
    assert 20 < len(numbers) < 1000


def test_finish_keeps_the_last_blocks_it_is_told_to() -> None:
    """Over 50 blocks: the head is cut, the note follows it, the kept tail ends the message."""
    many = [blocks.section(f"line {n}") for n in range(70)]
    rendered = blocks.finish(many, keep_last=3)
    texts = [
        b["text"]["text"] if b["type"] == "section" else b["elements"][0]["text"] for b in rendered
    ]
    assert len(rendered) == 50
    assert texts[:46] == [f"line {n}" for n in range(46)]
    assert texts[46] == blocks.LEFT_OUT
    assert texts[47:] == ["line 67", "line 68", "line 69"]
    assert len(blocks.finish(many[:50])) == 50


WHOLE_ENTITIES = re.compile(r"(?:[^&]|&amp;|&lt;|&gt;)*")


def test_clip_never_cuts_through_an_entity() -> None:
    """Wherever the limit falls in escaped text, no `&am` or `&l` is left at the cut."""
    for entity in blocks.ENTITIES:
        for prefix in range(6):
            text = "x" * prefix + entity * 40
            for limit in range(len(blocks.TRUNCATED) + 1, 60):
                clipped = blocks.clip(text, limit)
                assert len(clipped) <= limit
                assert clipped.endswith(blocks.TRUNCATED)
                assert WHOLE_ENTITIES.fullmatch(clipped.removesuffix(blocks.TRUNCATED)), clipped
            for limit in range(2, 60):
                plain = blocks.plain_clip(text, limit)
                assert len(plain) <= limit
                assert WHOLE_ENTITIES.fullmatch(plain.removesuffix("…")), plain


def test_clip_of_escaped_user_text_stays_within_the_section_limit() -> None:
    """Escaped `<`, `>` and `&` cut at Slack's section limit: valid, whole entities, a note."""
    rendered = blocks.section(blocks.escape("<@U1> & <!here> " * 400)).to_dict()
    text = rendered["text"]["text"]
    assert len(text) <= blocks.SECTION_LIMIT and text.endswith(blocks.TRUNCATED)
    assert WHOLE_ENTITIES.fullmatch(text.removesuffix(blocks.TRUNCATED))


def test_every_card_of_an_unsandboxed_task_says_so() -> None:
    """With `[agent] sandbox = "off"` the status card, the plan and the outcome all say it."""
    task = make_task(state="succeeded", result={"pr_url": "https://github.example/pull/1"})
    unsandboxed = [
        blocks.render_status_card(task, sandboxed=False, now=NOW),
        blocks.render_plan(make_task(), sandboxed=False),
        blocks.render_outcome(task, sandboxed=False),
    ]
    for card in unsandboxed:
        assert "*unsandboxed*" in str(card)
        assert not block_errors(card)
    sandboxed = [
        blocks.render_status_card(task, now=NOW),
        blocks.render_plan(make_task()),
        blocks.render_outcome(task),
    ]
    assert all("unsandboxed" not in str(card) for card in sandboxed)


def test_rejected_card_says_why() -> None:
    """The card of a rejected task names who rejected it and the reason they gave."""
    rendered = blocks.render_status_card(
        make_task(state="rejected"),
        [Approval(task_id=12, user_id="UGRACE", decision="reject", comment="needs a test first")],
        now=NOW,
    )
    fields = [f["text"] for f in rendered[2]["fields"]]
    assert "*Rejected by*\n<@UGRACE>: needs a test first" in fields


def test_a_long_description_shows_its_head_on_the_card() -> None:
    """A 4 kB description: the card shows a short head and points to the thread."""
    description = "The checkout total is wrong when a coupon applies.\n" + "detail " * 600
    rendered = blocks.render_status_card(make_task(description=description), now=NOW)
    shown = rendered[1]["text"]["text"]
    assert shown.startswith("The checkout total is wrong when a coupon applies.")
    assert len(shown) < 400 and "The full description is in the thread" in shown
    assert blocks.description_is_long(make_task(description=description))
    full = blocks.render_full_description(make_task(description=description))
    assert full.count("detail") == 600
    short = blocks.render_status_card(make_task(), now=NOW)[1]["text"]["text"]
    assert short == "fix the login redirect"


def test_outcome_without_a_pull_request_names_the_branch_and_counts_turns() -> None:
    """No pull request: the field says Branch, and one turn is one turn."""
    result = {
        "branch": "agent/T-12",
        "agent_runs": [{"phase": "execute", "turns": 1, "cost_usd": 0.01}],
        "github": "unconfigured",
    }
    rendered = blocks.render_outcome(make_task(state="succeeded", result=result))
    fields = [f["text"] for block in rendered for f in block.get("fields", [])]
    assert "*Branch*\n`agent/T-12`" in fields
    assert not any(f.startswith("*Pull request*") for f in fields)
    plan = make_task(
        state="awaiting_approval",
        plan=many_steps_plan(1),
        result={"agent_runs": [{"phase": "plan", "turns": 1, "cost_usd": 0.01}]},
    )
    assert " · 1 turn · $0.01" in str(blocks.render_plan(plan))
