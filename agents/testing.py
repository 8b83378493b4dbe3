"""Running a repo's test command and reading what it says, without trusting anyone."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from agents.env import child_environment
from agents.processes import group_process, kill_group

COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
OUTPUT_TAIL = 3000


@dataclass(frozen=True)
class TestRun:
    """One run of the test command, as the bot saw it."""

    command: str
    exit_code: int
    passed: int
    failed: int
    errors: int
    duration_seconds: float
    output_tail: str
    timed_out: bool = False

    @property
    def green(self) -> bool:
        """The whole suite passed."""
        return self.exit_code == 0 and self.failed == 0 and self.errors == 0 and not self.timed_out

    @property
    def red(self) -> bool:
        """Tests ran and at least one failed (not a crash of the runner itself)."""
        return not self.timed_out and self.exit_code != 0 and (self.failed > 0 or self.errors > 0)

    def counts(self) -> str:
        """`3 passed, 1 failed` — the line people read."""
        text = f"{self.passed} passed, {self.failed} failed"
        if self.errors:
            text += f", {self.errors} errors"
        if self.timed_out:
            text += " (timed out)"
        return text


def parse_counts(output: str) -> tuple[int, int, int]:
    """Read passed / failed / error counts from pytest's (or a compatible) summary."""
    passed = failed = errors = 0
    # The summary is the last line mentioning counts; earlier lines may quote test names.
    for line in reversed(output.splitlines()):
        found = COUNT.findall(line)
        if found:
            for number, word in found:
                if word == "passed":
                    passed = int(number)
                elif word == "failed":
                    failed = int(number)
                elif word.startswith("error"):
                    errors = int(number)
            break
    return passed, failed, errors


def run_tests(command: str, cwd: Path, timeout: float = 900) -> TestRun:
    """Run `command` in `cwd` with a clean environment and a hard timeout.

    The command comes from configuration (trusted), so it runs through the shell; it
    never contains anything a Slack user typed.
    """
    started = time.monotonic()
    timed_out = False
    with group_process(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=child_environment(extra={"PYTHONDONTWRITEBYTECODE": "1", "CI": "true"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(process.pid)
            output, _ = process.communicate()
    passed, failed, errors = parse_counts(output)
    return TestRun(
        command=command,
        exit_code=process.returncode,
        passed=passed,
        failed=failed,
        errors=errors,
        duration_seconds=round(time.monotonic() - started, 2),
        output_tail=output[-OUTPUT_TAIL:],
        timed_out=timed_out,
    )
