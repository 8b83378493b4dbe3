"""`agentbot dev` in one process: SQLite, in-process Redis, thread workers, the page."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agents.claude_code import claude_environment
from bot import blocks
from bot.runtime import cli_options
from bot.settings import ConfigError, load_config_file
from sandbox.dev import (
    APPROVER,
    DEV_CHANNEL,
    REQUESTER,
    SAMPLE_REPO,
    DevOptions,
    Sandbox,
    choose_agent,
    claude_agent_env,
    dev_config,
    to_toml,
    with_demo_aws,
    with_webhooks,
)
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
    """The TOML the sandbox writes parses to the same data (odd paths, webhooks, AWS too)."""
    data = dev_config(tmp_path / 'a "quoted" \\ path', tmp_path / "ws", "scripted")
    keys = {source: f"{source}-secret" for source in ("github", "sentry", "jira")}
    data = with_demo_aws(with_webhooks(data, keys))
    assert tomllib.loads(to_toml(data)) == data


def test_a_stored_claude_login_reaches_the_agent_through_its_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Signed in only by a stored login, Claude Code (private HOME) is pointed at it."""
    home = tmp_path / "person"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / ".credentials.json").write_text("{}")
    monkeypatch.setenv("HOME", str(home))
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)

    # The configuration the sandbox writes, read back, and the CLI environment built from it.
    data = dev_config(tmp_path / "remote", tmp_path / "ws", "claude-code", claude_agent_env())
    (tmp_path / "agentbot.toml").write_text(to_toml(data))
    agent = load_config_file(tmp_path / "agentbot.toml").agent
    env = claude_environment(cli_options(agent))
    assert env["CLAUDE_CONFIG_DIR"] == str((home / ".claude").resolve())
    assert env["HOME"] == str((tmp_path / "ws" / "home").resolve())

    # A login kept where CLAUDE_CONFIG_DIR says is the one lent.
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / ".credentials.json").write_text("{}")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(profile))
    assert claude_agent_env() == {"CLAUDE_CONFIG_DIR": str(profile.resolve())}
    # CLAUDE_CONFIG_DIR names where the CLI looks: no login there, none lent.
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "empty"))
    assert claude_agent_env() == {}
    # An API key signs the CLI in by itself: no login is lent.
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(profile))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0000000000")
    assert claude_agent_env() == {}


def test_a_signed_github_issue_reaches_the_sandbox_like_serve(tmp_path: Path):
    """A labelled issue signed with the sandbox's secret becomes a task card in #dev."""
    fixture = Path(__file__).parents[1] / "fixtures" / "webhooks" / "github_issues_labeled.json"
    payload = json.loads(fixture.read_text())
    payload["repository"]["full_name"] = SAMPLE_REPO
    # Labelled just now: a body older than the delivery window is refused as a replay.
    payload["issue"]["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = json.dumps(payload).encode()
    options = DevOptions(port=0, data_dir=tmp_path / "dev", agent="scripted", aws=False)
    with Sandbox(options, say=print) as sandbox:
        secret = sandbox.webhook_secrets["github"]
        written = tomllib.loads((sandbox.data_dir / "agentbot.toml").read_text())
        assert written["webhooks"]["github"]["secret"] == secret
        assert f"{sandbox.bot_url}/webhooks/github|sentry|jira" in sandbox.banner(1.0)

        def deliver(signature: str) -> int:
            request = urllib.request.Request(
                f"{sandbox.bot_url}/webhooks/github",
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "issues",
                    "X-GitHub-Delivery": "sandbox-delivery-1",
                    "X-Hub-Signature-256": signature,
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert deliver("sha256=" + "0" * 64) == 401
        signed = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert deliver(signed) in (200, 201, 202)
        page = Page(sandbox.url)
        title = payload["issue"]["title"]
        state = page.wait(REQUESTER.id, lambda s: find(s, f"T-1 · {title}", thread=False))
        card = find(state, f"T-1 · {title}", thread=False)
        assert card is not None and card["channel"] == DEV_CHANNEL.id


def test_a_production_database_url_in_the_shell_has_no_say_in_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A broken DATABASE_URL left in the shell neither stops the sandbox nor is used by it."""
    monkeypatch.setenv("DATABASE_URL", "not a url")
    data = tmp_path / "dev"
    with Sandbox(DevOptions(port=0, data_dir=data, agent="scripted", aws=False), say=print) as box:
        page = Page(box.url)
        page.post("/ui/command", user=REQUESTER.id, channel=DEV_CHANNEL.id, text="run fix it")
        page.wait(REQUESTER.id, lambda s: find(s, "T-1", thread=False))
    assert (data / "agentbot.db").is_file()


def test_claude_code_asked_for_but_missing_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agentbot dev --agent claude-code` with no `claude` on PATH names the install command."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        choose_agent("claude-code")
    assert "npm install -g @anthropic-ai/claude-code" in str(raised.value)
    assert "--agent scripted" in str(raised.value)


def test_unsandboxed_start_says_so_in_the_banner_the_config_and_the_card(tmp_path: Path):
    """`--unsandboxed` is the explicit opt-out: written as `sandbox = "off"`, shown everywhere."""
    options = DevOptions(
        port=0, data_dir=tmp_path / "dev", agent="scripted", aws=False, sandboxed=False
    )
    with Sandbox(options, say=[].append) as sandbox:
        written = tomllib.loads((sandbox.data_dir / "agentbot.toml").read_text())
        assert written["agent"]["sandbox"] == "off"
        assert "off (--unsandboxed)" in sandbox.banner(1.0)
        page = Page(sandbox.url)
        page.post(
            "/ui/command",
            user=REQUESTER.id,
            channel=DEV_CHANNEL.id,
            text="/agent run fix the discount calculation",
        )
        state = page.wait(REQUESTER.id, lambda s: find(s, "unsandboxed", thread=False))
        card = find(state, "unsandboxed", thread=False)
        assert card is not None and "fix the discount calculation" in visible_text(card)


def test_a_machine_without_bubblewrap_is_told_at_start_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """No bwrap on PATH: the banner says every task would fail, and what to install or pass."""
    found = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "bwrap" else found(name, *a, **k)
    )
    options = DevOptions(port=0, data_dir=tmp_path / "dev", agent="scripted", aws=False)
    with Sandbox(options, say=[].append) as sandbox:
        banner = sandbox.banner(1.0)
        written = tomllib.loads((sandbox.data_dir / "agentbot.toml").read_text())
    line = next(row for row in banner.splitlines() if "Agent sandbox" in row)
    assert "UNAVAILABLE: bubblewrap (bwrap) is not installed" in line
    assert "apt-get install bubblewrap socat" in line and "--unsandboxed" in line
    # Fail closed: the sandbox is not switched off behind the person's back.
    assert "sandbox" not in written["agent"]


def test_a_machine_with_bubblewrap_shows_the_sandbox_on(tmp_path: Path):
    """Where bubblewrap works (as here), the banner says the agent is contained."""
    options = DevOptions(port=0, data_dir=tmp_path / "dev", agent="scripted", aws=False)
    with Sandbox(options, say=[].append) as sandbox:
        line = next(row for row in sandbox.banner(1.0).splitlines() if "Agent sandbox" in row)
    assert line.split("Agent sandbox", 1)[1].strip().startswith("bubblewrap:")
