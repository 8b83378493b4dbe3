"""Reading Claude Code's stream-json output, on streams recorded from the real CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from agents.base import AgentError
from agents.claude_code import ClaudeStream, claude_command
from agents.runner import StreamExit, describe_tool, short_command
from tests.agents.fake_cli import agent_options

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path("/tmp/claude-fixture/repo")


def exit_with(code: int = 0, **changes: Any) -> StreamExit:
    values: dict[str, Any] = {
        "returncode": code,
        "stderr_tail": "",
        "unreadable": (),
        "timed_out": False,
        "cancelled": False,
        "duration_seconds": 1.5,
    }
    values.update(changes)
    return StreamExit(**values)


def feed(name: str) -> tuple[ClaudeStream, list[str]]:
    stream = ClaudeStream(REPO)
    lines = []
    for raw in (FIXTURES / name).read_text().splitlines():
        line = stream.feed(json.loads(raw))
        if line:
            lines.append(line)
    return stream, lines


def test_recorded_run_gives_progress_lines_and_the_result() -> None:
    """Tool calls become short lines; the result event gives answer, session, turns, cost."""
    stream, lines = feed("claude_stream.jsonl")
    assert lines == [
        "Claude Code started (claude-sonnet-4-5)",
        "Reading app.py",
        "Writing test_app.py",
        "Running pytest",
    ]
    run = stream.finish(exit_with(0), timeout=60)
    assert run.text == "Added test_app.py; the test passes."
    assert run.session_id == "cdd27c8f-38f6-48d1-a1d2-09ba90eb30f6"
    assert run.turns == 4
    assert run.cost_usd == pytest.approx(0.0024)
    assert run.duration_seconds == 1.5


def test_recorded_api_outage_fails_with_the_api_error() -> None:
    """`is_error` fails the step even though the subtype says "success"."""
    stream, lines = feed("claude_stream_error.jsonl")
    assert any(line.startswith("Model API unavailable (529); retrying") for line in lines)
    with pytest.raises(AgentError, match=r"Claude Code reported an error: API Error: 529"):
        stream.finish(exit_with(1), timeout=60)


def test_max_turns_result_names_the_limit() -> None:
    """A run stopped by --max-turns says so (its result has `errors`, no `result`)."""
    stream = ClaudeStream(REPO)
    stream.feed(
        {
            "type": "result",
            "subtype": "error_max_turns",
            "is_error": True,
            "errors": ["Reached maximum number of turns (2)"],
            "session_id": "s",
            "num_turns": 3,
        }
    )
    with pytest.raises(AgentError, match=r"Reached maximum number of turns \(2\)"):
        stream.finish(exit_with(1), timeout=60)


def test_stream_without_result_is_a_readable_failure() -> None:
    """No result event: the reason quotes stderr, or the unreadable output."""
    with pytest.raises(AgentError, match=r"exited with status 1 without a result: boom"):
        ClaudeStream(REPO).finish(exit_with(1, stderr_tail="warming up\nboom"), timeout=60)
    with pytest.raises(AgentError, match=r"output could not be read .*Segmentation"):
        ClaudeStream(REPO).finish(exit_with(139, unreadable=("Segmentation fault",)), timeout=60)


def test_timeout_and_cancel_win_over_whatever_was_printed() -> None:
    """A stopped run fails as stopped, even if a result had already arrived."""
    stream, _ = feed("claude_stream.jsonl")
    with pytest.raises(AgentError, match=r"did not finish within 5 s"):
        stream.finish(exit_with(-9, timed_out=True), timeout=5)
    with pytest.raises(AgentError, match=r"^Cancelled\.$"):
        stream.finish(exit_with(-9, cancelled=True), timeout=5)


@pytest.mark.parametrize(
    ("command", "short"),
    [
        ("python -m pytest -q tests/", "pytest"),
        ("python3.12 -m pytest", "pytest"),
        ("cd /repo && PYTHONPATH=. pytest -x", "pytest"),
        ("uv run pytest -q", "pytest"),
        ("npm test -- --grep auth", "npm test"),
        ("bash -lc 'cargo test --all'", "cargo test"),
        ("git diff --stat", "git diff"),
        ("/usr/bin/make check", "make check"),
        ("ls -la", "ls"),
    ],
)
def test_commands_are_named_in_a_word_or_two(command: str, short: str) -> None:
    """`Running pytest`, not the whole command line."""
    assert short_command(command) == short


def test_tool_lines_use_paths_relative_to_the_repo() -> None:
    """Paths inside the workspace are shown relative; others as given."""
    assert describe_tool("Edit", {"file_path": "/w/src/auth.py"}, Path("/w")) == (
        "Editing src/auth.py"
    )
    assert describe_tool("Read", {"file_path": "/etc/hosts"}, Path("/w")) == "Reading /etc/hosts"
    assert describe_tool("Grep", {"pattern": "def total"}, Path("/w")) == (
        "Searching for def total"
    )
    assert describe_tool("Frobnicate", {}, Path("/w")) == "Using Frobnicate"


def test_command_line_carries_role_permissions_and_keeps_prompt_whole(tmp_path: Path) -> None:
    """One argv element per value: the prompt and system text are never split or quoted."""
    prompt = 'fix it; rm -rf / $(whoami) `id` "quoted" \n next line'
    options = agent_options(
        tmp_path,
        model="claude-sonnet-4-5",
        max_turns=7,
        extra_args=["--no-session-persistence"],
        planner={"allowed_tools": ["Read", "Grep"], "disallowed_tools": ["Bash", "Write"]},
    )
    args = claude_command(options, prompt, system="rules", role="planner", resume="sess-9")
    assert args[:3] == ["claude", "-p", prompt]
    pairs = dict(itertools.pairwise(args))
    assert pairs["--output-format"] == "stream-json" and "--verbose" in args
    assert pairs["--permission-mode"] == "dontAsk"
    assert pairs["--allowedTools"] == "Read,Grep"
    # Then the deny rules that keep the file tools out of the runs' MCP files.
    assert pairs["--disallowedTools"].split(",")[:2] == ["Bash", "Write"]
    assert pairs["--max-turns"] == "7"
    assert pairs["--model"] == "claude-sonnet-4-5"
    assert pairs["--append-system-prompt"] == "rules"
    assert pairs["--resume"] == "sess-9"
    assert args[-1] == "--no-session-persistence"
    executor = claude_command(options, "go", system="", role="executor")
    assert executor[executor.index("--permission-mode") + 1] == "acceptEdits"
    assert "--resume" not in executor and "--append-system-prompt" not in executor
