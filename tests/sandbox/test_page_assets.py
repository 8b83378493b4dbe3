"""The sandbox page's own parts a person notices: emoji, times, and a quiet terminal."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import sandbox
from sandbox.fakeslack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
APP_JS = Path(sandbox.__file__).with_name("ui") / "app.js"
# A code between colons in a string the bot sends: `:warning: …`, `":tada: "`.
EMOJI_CODE = re.compile(r"(?<![\w:/.-]):([a-z][a-z0-9_+]*):(?=[\s\"'`])")
NOT_EMOJI = {"memory"}  # SQLite's ":memory:" database


def page_emoji() -> set[str]:
    """The emoji codes the page turns into emoji."""
    table = APP_JS.read_text(encoding="utf-8").split("const EMOJI = {", 1)[1].split("};", 1)[0]
    return set(re.findall(r"\"?([a-z0-9_+]+)\"?:\s*\"", table))


def test_every_emoji_code_the_bot_sends_renders_on_the_page() -> None:
    """No `:arrow_up_small:` left as raw text: each code in the bot's messages has its emoji."""
    used: set[str] = set()
    for package in ("bot", "jobs", "agents", "sandbox"):
        for path in (ROOT / package).rglob("*.py"):
            used |= set(EMOJI_CODE.findall(path.read_text(encoding="utf-8")))
    used -= NOT_EMOJI
    assert {"arrow_up_small", "arrow_down_small", "warning"} <= used
    assert sorted(used - page_emoji()) == []


def test_messages_carry_the_time_they_were_posted() -> None:
    """A message's ts is the moment it was posted, as Slack's is, so the page can show it."""
    slack = FakeSlack(token="xoxb-test").start()
    try:
        before = time.time()
        first = slack.post_message("U0ADA", "C0DEV", "hello", [])
        second = slack.post_message("U0ADA", "C0DEV", "again", [])
    finally:
        slack.stop()
    assert before - 1 <= float(first.ts) <= time.time() + 1
    assert float(second.ts) > float(first.ts)


def test_a_reader_who_hangs_up_prints_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    """A closed tab mid-answer is not an error worth a traceback; a real fault still is."""
    slack = FakeSlack(token="xoxb-test")
    try:
        for gone in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise gone
            except ConnectionError:
                # What socketserver calls when a handler raised, as the answer was written.
                slack._server.handle_error(None, ("127.0.0.1", 50000))
        quiet = capfd.readouterr().err
        try:
            raise ValueError("a real fault")
        except ValueError:
            slack._server.handle_error(None, ("127.0.0.1", 50000))
        loud = capfd.readouterr().err
    finally:
        slack.stop()
    assert quiet == ""
    assert "Traceback" in loud and "a real fault" in loud
