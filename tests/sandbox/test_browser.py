"""`agentbot dev` in a real browser: approve a task from Home, reject one, see the digest.

The sandbox runs as the command a newcomer types, in its own process; headless
Chromium (Debian's package) is driven by playwright-core from `drive.mjs`.
Screenshots, one per step and numbered, are kept under `test-artifacts/sandbox/`.
Without Chromium, node or playwright-core the test skips, except in CI or with
`AGENTBOT_REQUIRE_ALL=1`, where it fails.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from tests.sandbox.browser import (
    REPO_ROOT,
    BrowserUnavailableError,
    browser_required,
    ensure_chromium,
    ensure_playwright_core,
)

ARTIFACTS = REPO_ROOT / "test-artifacts" / "sandbox"
READY = "Agentbot sandbox ready in "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevProcess:
    """`agentbot dev` as a child process, with its output collected line by line."""

    def __init__(self, data_dir: Path, port: int) -> None:
        script = Path(sys.executable).with_name("agentbot")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "LOG_LEVEL")}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [*command, "dev", "--port", str(port), "--data-dir", str(data_dir)],
            cwd=data_dir.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from launch to the ready line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith(READY):
                return time.monotonic() - self.started
        raise AssertionError("agentbot dev never became ready:\n" + "".join(self.output))

    def stop(self) -> float:
        """Stop it as Ctrl-C would; seconds it took to exit."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started


@dataclass
class Browser:
    """What drives the page: the system Chromium, node, and playwright-core."""

    chromium: Path
    node: str
    playwright: Path


def unavailable(reason: str) -> NoReturn:
    """Fail where every test must run (CI, AGENTBOT_REQUIRE_ALL=1); skip elsewhere."""
    if browser_required():
        pytest.fail(f"{reason} (run scripts/ensure-chromium.sh)", pytrace=False)
    pytest.skip(f"{reason} (run scripts/ensure-chromium.sh)")


@pytest.fixture
def browser() -> Browser:
    """Chromium, node and playwright-core, or the test fails or skips saying which is missing."""
    chromium = ensure_chromium()
    if chromium is None:
        unavailable("Debian's chromium is not at /usr/bin/chromium and cannot be installed here")
    node = shutil.which("node")
    if node is None:
        unavailable("node is not on PATH")
    try:
        playwright = ensure_playwright_core()
    except BrowserUnavailableError as exc:
        unavailable(str(exc))
    return Browser(chromium=chromium, node=node, playwright=playwright)


@pytest.fixture
def dev(browser: Browser, tmp_path: Path) -> Iterator[tuple[DevProcess, str]]:
    """`agentbot dev` on a free port (once the browser is known to be there), stopped after."""
    port = free_port()
    process = DevProcess(tmp_path / "dev", port)
    yield process, f"http://127.0.0.1:{port}"
    process.stop()


SHOTS = (
    "01-command-acknowledged",
    "02-plan-in-thread",
    "02b-home-waiting-for-you",
    "03-completion-card",
    "04-reject-reason-modal",
    "05-rejected-with-reason",
    "06-digest-chart",
)


def test_approve_reject_and_see_the_digest_chart_in_chromium(
    browser: Browser, dev: tuple[DevProcess, str]
):
    """Grace approves one task from her Home tab and rejects another with a reason in its
    thread; the digest chart shows."""
    process, url = dev
    ready_seconds = process.wait_ready()

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    drive = subprocess.run(
        [
            browser.node,
            str(Path(__file__).with_name("drive.mjs")),
            str(browser.playwright),
            url,
            str(ARTIFACTS),
        ],
        capture_output=True,
        text=True,
        timeout=360,
        env={**os.environ, "CHROMIUM": str(browser.chromium)},
    )
    result = json.loads(drive.stdout.strip().splitlines()[-1]) if drive.stdout.strip() else {}
    assert result.get("ok"), f"{result}\n{drive.stderr[-3000:]}\n{''.join(process.output)}"
    assert "Branch" in result["outcomeText"] and "agent/T-1" in result["outcomeText"]
    assert "4 passed, 0 failed" in result["outcomeText"]
    # Her Home listed the plan with the thread's buttons, then lost it once approved.
    assert "Waiting for you" in result["homeText"] and "Approve" in result["homeText"]
    assert "Workers online" in result["homeText"]
    assert "T-1" in result["homeAfterText"]  # still there, under Team's latest tasks
    assert "succeeded" in result["cardText"] and "@Grace" in result["cardText"]
    rejected = result["rejectedText"]
    assert "Rejected by" in rejected and "@Grace" in rejected, rejected
    assert "we keep pricing in Python; fix the bug instead" in rejected
    assert "2 accounts, 2 regions" in result["estateText"]
    assert "AWS cost digest" in result["digestText"]
    width, height = result["chartSize"]
    assert width > 300 and height > 150, "the digest chart did not render as an image"
    assert result["problems"] == []
    # The thread pane is there only with a thread open, and closes with its close button.
    assert result["paneAtStart"] is False and result["paneAfterClose"] is False
    # The card itself says why it was rejected, not only who rejected it.
    assert "we keep pricing in Python; fix the bug instead" in result["rejectedCardText"]
    assert result["rawEmoji"] == [], result["rawEmoji"]
    for shot in SHOTS:
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 10_000
    (ARTIFACTS / "timings.json").write_text(
        json.dumps({"ready_seconds": round(ready_seconds, 2), **result["timings"]}, indent=2)
    )
    stop_seconds = process.stop()
    assert process.process.returncode == 0, "".join(process.output)
    assert "Agentbot sandbox stopped." in "".join(process.output)
    assert stop_seconds < 20
