"""`agentbot dev` in a real browser: type a task, approve it, see it succeed.

The sandbox runs as the command a newcomer types, in its own process; headless
Chromium (Debian's package) is driven by playwright-core from `drive.mjs`.
Screenshots are kept under `test-artifacts/sandbox/`.
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
from pathlib import Path

import pytest

from tests.sandbox.browser import REPO_ROOT, ensure_chromium, ensure_playwright_core

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


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[DevProcess, str]]:
    """`agentbot dev` on a free port, stopped afterwards."""
    port = free_port()
    process = DevProcess(tmp_path / "dev", port)
    yield process, f"http://127.0.0.1:{port}"
    process.stop()


def test_type_approve_and_see_the_completion_card_in_chromium(dev: tuple[DevProcess, str]):
    """Ada types /agent run, Grace clicks Approve, the thread shows the completion card."""
    chromium = ensure_chromium()
    if chromium is None:
        pytest.skip("Debian's chromium cannot be installed here (run scripts/ensure-chromium.sh)")
    playwright = ensure_playwright_core()
    node = shutil.which("node")
    assert node is not None, "node is needed to drive the browser"
    process, url = dev
    ready_seconds = process.wait_ready()

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    drive = subprocess.run(
        [node, str(Path(__file__).with_name("drive.mjs")), str(playwright), url, str(ARTIFACTS)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "CHROMIUM": str(chromium)},
    )
    result = json.loads(drive.stdout.strip().splitlines()[-1]) if drive.stdout.strip() else {}
    assert result.get("ok"), f"{result}\n{drive.stderr[-3000:]}\n{''.join(process.output)}"
    assert "Pull request" in result["outcomeText"] and "branch agent/T-1" in result["outcomeText"]
    assert "4 passed, 0 failed" in result["outcomeText"]
    assert "succeeded" in result["cardText"] and "@Grace" in result["cardText"]
    assert "2 accounts, 2 regions" in result["estateText"]
    assert result["problems"] == []
    for shot in ("01-command-acknowledged", "02-plan-in-thread", "03-completion-card"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 10_000
    (ARTIFACTS / "timings.json").write_text(
        json.dumps({"ready_seconds": round(ready_seconds, 2), **result["timings"]}, indent=2)
    )
    stop_seconds = process.stop()
    assert process.process.returncode == 0, "".join(process.output)
    assert "Agentbot sandbox stopped." in "".join(process.output)
    assert stop_seconds < 20
