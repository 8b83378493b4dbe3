"""`agentbot dev` in one process: SQLite, in-process Redis, thread workers, the page."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from bot import blocks
from bot.settings import ConfigError
from sandbox.dev import APPROVER, DEV_CHANNEL, REQUESTER, DevOptions, Sandbox, dev_config, to_toml
from tests.sandbox.pageclient import Page, button_block, find, visible_text


def test_sandbox_runs_a_task_from_command_to_pushed_fix(tmp_path: Path):
    """Ada's command is planned, Grace approves, the fix lands on the sample repo's branch."""
    said: list[str] = []
    options = DevOptions(port=0, data_dir=tmp_path / "dev", agent="scripted", aws=False)
    with Sandbox(options, say=said.append) as sandbox:
        page = Page(sandbox.url)
        status, answer = page.post(
            "/ui/command",
            user=REQUESTER.id,
            channel=DEV_CHANNEL.id,
            text="/agent run fix the discount calculation",
        )
        assert status == 200 and answer["status"] == 200, answer

        state = page.wait(APPROVER.id, lambda s: find(s, "Plan for T-1", thread=True))
        plan = find(state, "Plan for T-1", thread=True)
        assert plan is not None
        # Ada is no approver: she is told so, privately, and the task waits.
        page.post(
            "/ui/click",
            user=REQUESTER.id,
            channel=DEV_CHANNEL.id,
            ts=plan["ts"],
            action_id=blocks.APPROVE,
        )
        page.wait(
            REQUESTER.id, lambda s: any("Only approvers" in e["text"] for e in s["ephemerals"])
        )
        assert not any("Only approvers" in e["text"] for e in page.state(APPROVER.id)["ephemerals"])

        status, answer = page.post(
            "/ui/click",
            user=APPROVER.id,
            channel=DEV_CHANNEL.id,
            ts=plan["ts"],
            action_id=blocks.APPROVE,
            block_id=button_block(plan, blocks.APPROVE),
        )
        assert answer["status"] == 200
        state = page.wait(REQUESTER.id, lambda s: find(s, "T-1 succeeded", thread=True))
        thread = "\n".join(visible_text(m) for m in state["messages"])
        assert "RED as expected" in thread and "GREEN" in thread

        remote = sandbox.data_dir / "remote" / "shop-pricing.git"
        fixed = subprocess.run(
            ["git", "show", "agent/T-1:pricing.py"],
            cwd=remote,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "percent / 100" in fixed
        assert (sandbox.data_dir / "agentbot.db").is_file()
        banner = sandbox.banner(1.0)
    assert sandbox.url in banner and "scripted agent" in banner


def test_second_start_begins_afresh_and_a_taken_port_is_a_clear_error(tmp_path: Path):
    """A restart forgets the previous run's tasks; a busy port or data directory is named."""
    data = tmp_path / "dev"
    with Sandbox(DevOptions(port=0, data_dir=data, agent="scripted", aws=False), say=print) as one:
        page = Page(one.url)
        page.post("/ui/command", user=REQUESTER.id, channel=DEV_CHANNEL.id, text="run fix it")
        page.wait(REQUESTER.id, lambda s: find(s, "T-1", thread=False))
        busy = int(one.url.rsplit(":", 1)[1])
        with pytest.raises(ConfigError, match=f"--port {busy}"):
            Sandbox(
                DevOptions(port=busy, data_dir=tmp_path / "other", aws=False), say=print
            ).start()
        # A second sandbox on the same data directory would wipe this one's files.
        with pytest.raises(ConfigError, match="another agentbot dev is using it"):
            Sandbox(DevOptions(port=0, data_dir=data, aws=False), say=print).start()
        assert (data / "agentbot.db").is_file()
        assert find(page.state(REQUESTER.id), "T-1", thread=False) is not None
    with Sandbox(DevOptions(port=0, data_dir=data, agent="scripted", aws=False), say=print) as two:
        page = Page(two.url)
        page.post("/ui/command", user=REQUESTER.id, channel=DEV_CHANNEL.id, text="run fix it")
        state = page.wait(REQUESTER.id, lambda s: s["messages"])
        assert find(state, "T-1", thread=False) is not None


def test_generated_config_reads_back_as_written(tmp_path: Path):
    """The TOML the sandbox writes parses to the same data (paths with odd characters too)."""
    data = dev_config(tmp_path / 'a "quoted" \\ path', tmp_path / "ws", "scripted")
    assert tomllib.loads(to_toml(data)) == data
