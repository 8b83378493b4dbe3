"""A hostile agent command and a hostile test command, run for real in the sandbox.

`tests/agents/hostile.py` tries each way out: the bot's `.env`, configuration and
database file, other processes' environments, Redis, PostgreSQL, the metadata address,
a loopback port that is not the model's, writing outside the worktree. The same probe
run unsandboxed gets through, so each "no" below is the sandbox's doing.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agents.base import Plan, RepoSpec, TaskBrief
from agents.config import AgentConfig
from agents.sandbox import Endpoint, Sandbox, SandboxError
from agents.scripted import SCRIPT_PATH, ScriptedExecutor
from agents.testing import run_tests
from bot.runtime import base_sandbox, bot_files
from bot.settings import Settings
from jobs.config import AgentbotConfig
from jobs.tasks import get_task
from sandbox.sample import PLAN
from tests.conftest import APPROVER, git
from tests.slackclient import SlackUser

HOSTILE = Path(__file__).with_name("hostile.py")
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-sandbox-secret-slack",
    "DATABASE_URL": "postgresql://bot:sandbox-secret-db@127.0.0.1/agentbot",
    "GITHUB_TOKEN": "ghp_sandbox_secret_github",
    "AWS_SECRET_ACCESS_KEY": "sandbox-secret-aws",
}


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[Endpoint]:
    """A loopback HTTP server answering 200: the model, or a port that is not it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Endpoint("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


other_listener = listener


@pytest.fixture
def bot_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bot's working directory: `.env`, configuration, SQLite database, workspaces."""
    directory = tmp_path / "bot"
    directory.mkdir()
    env = "".join(f"{name}={value}\n" for name, value in SECRETS.items())
    (directory / ".env").write_text(env)
    (directory / "agentbot.toml").write_text(f"# {SECRETS['GITHUB_TOKEN']}\n[agent]\n")
    (directory / "agentbot.db").write_text(f"SQLite format 3 {SECRETS['DATABASE_URL']}")
    monkeypatch.chdir(directory)
    return directory


@pytest.fixture
def worker_stand_in() -> Iterator[int]:
    """A process holding the bot's secrets in its environment, as the worker and tini do."""
    process = subprocess.Popen(["sleep", "120"], env={**SECRETS, "PATH": os.environ["PATH"]})
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def worktree(bot_dir: Path) -> Path:
    """A task's worktree where the default configuration puts it: under the bot's directory."""
    path = bot_dir / ".agentbot" / "workspaces" / "worktrees" / "acme_calc" / "T-1"
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    shutil.copy(HOSTILE, path / "hostile.py")
    return path


def _sandbox(bot_dir: Path, **agent: object) -> Sandbox:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL="sqlite:///agentbot.db",
        AGENTBOT_CONFIG=str(bot_dir / "agentbot.toml"),
    )
    return base_sandbox(AgentConfig(**agent), bot_files(settings))  # type: ignore[arg-type]


def _targets(
    worktree: Path, bot_dir: Path, redis_url: str, model: Endpoint, other: Endpoint
) -> Path:
    redis = urlsplit(redis_url)
    other_task = bot_dir / ".agentbot" / "workspaces" / "worktrees" / "acme_calc" / "T-2"
    other_task.mkdir(parents=True, exist_ok=True)
    targets = {
        "files": {
            "env": str(bot_dir / ".env"),
            "config": str(bot_dir / "agentbot.toml"),
            "database": str(bot_dir / "agentbot.db"),
        },
        # Names only: the targets file lands in the branch, which must hold no secret.
        "secret_names": list(SECRETS),
        "services": {
            "redis": [redis.hostname, redis.port],
            "postgresql": ["127.0.0.1", 5432],
            "metadata": ["169.254.169.254", 80],
            "another loopback port": [other.host, other.port],
        },
        "model": [model.host, model.port],
        "outside": {
            "the bot's directory": str(bot_dir / "pwned"),
            "another task's worktree": str(other_task / "pwned"),
            "the system": "/usr/pwned",
        },
    }
    path = worktree / "targets.json"
    path.write_text(json.dumps(targets))
    return path


def _escapes(report: Path) -> dict[str, bool]:
    """What got through, as the probe saw it inside (writes are checked from outside)."""
    return {
        attempt: got
        for attempt, got in json.loads(report.read_text()).items()
        if got and not attempt.startswith("write ")
    }


def _nothing_written_outside(bot_dir: Path) -> None:
    """The probe's writes outside the worktree landed nowhere on the host."""
    other_task = bot_dir / ".agentbot" / "workspaces" / "worktrees" / "acme_calc" / "T-2"
    assert not (bot_dir / "pwned").exists()
    assert not (other_task / "pwned").exists()
    assert not Path("/usr/pwned").exists()


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS.values():
            assert secret not in text


def test_a_hostile_test_command_gets_nowhere(
    worktree: Path,
    bot_dir: Path,
    redis_url: str,
    listener: Endpoint,
    other_listener: Endpoint,
    worker_stand_in: int,
) -> None:
    """The test command reads no bot file or environ, reaches no service, writes nothing else."""
    targets = _targets(worktree, bot_dir, redis_url, listener, other_listener)
    command = f"{sys.executable} hostile.py report.json {targets.name}"
    run = run_tests(command, worktree, timeout=60, home=None, sandbox=_sandbox(bot_dir))
    assert run.exit_code == 0, run.output_tail
    # A test run has no network at all unless the repo allows it: not even the model.
    assert _escapes(worktree / "report.json") == {}
    _no_secret_in((worktree / "loot.txt").read_text(), run.output_tail)
    _nothing_written_outside(bot_dir)


def test_a_hostile_agent_command_reaches_only_its_allowlist(
    worktree: Path,
    bot_dir: Path,
    redis_url: str,
    listener: Endpoint,
    other_listener: Endpoint,
    worker_stand_in: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An agent's command gets the model's endpoint through the proxy, and nothing else."""
    targets = _targets(worktree, bot_dir, redis_url, listener, other_listener)
    script = {
        "scenarios": [
            {
                "match": ["discount"],
                "plan": PLAN,
                "command": [sys.executable, "hostile.py", "report.json", targets.name],
            }
        ]
    }
    (worktree / SCRIPT_PATH).parent.mkdir(parents=True)
    (worktree / SCRIPT_PATH).write_text(json.dumps(script))
    home = bot_dir / ".agentbot" / "workspaces" / "home"
    executor = ScriptedExecutor(home=str(home), sandbox=_sandbox(bot_dir).allowing([listener]))
    brief = TaskBrief(
        "T-1", "fix the discount", RepoSpec("acme/calc", "/srv/calc.git", "main", "true")
    )
    caplog.set_level(logging.INFO, logger="agents.sandbox")

    executor.write_failing_test(
        brief, Plan.model_validate(PLAN), worktree, lambda _: None, lambda: False
    )

    assert _escapes(worktree / "report.json") == {"model through the proxy": True}
    _no_secret_in((worktree / "loot.txt").read_text(), caplog.text)
    _nothing_written_outside(bot_dir)
    assert f"sandbox egress refused: {other_listener}" in caplog.text


def test_the_same_probe_unsandboxed_gets_through(
    worktree: Path,
    bot_dir: Path,
    redis_url: str,
    listener: Endpoint,
    other_listener: Endpoint,
    worker_stand_in: int,
) -> None:
    """With `[agent] sandbox = "off"` the probe reads the .env and reaches Redis: it can tell."""
    targets = _targets(worktree, bot_dir, redis_url, listener, other_listener)
    command = f"{sys.executable} hostile.py report.json {targets.name}"
    off = _sandbox(bot_dir, sandbox="off")
    run = run_tests(command, worktree, timeout=60, sandbox=off)
    assert run.exit_code == 0, run.output_tail
    escapes = _escapes(worktree / "report.json")
    for attempt in (
        "read env",
        "read .env by climbing",
        "a secret in /proc/*/environ",
        "connect redis",
        "connect another loopback port",
    ):
        assert escapes.get(attempt), attempt
    assert (bot_dir / "pwned").read_text() == "pwned"
    (bot_dir / "pwned").unlink()
    Path("/usr/pwned").unlink(missing_ok=True)


def test_the_bots_files_stay_hidden_even_under_a_listed_toolchain(
    worktree: Path, bot_dir: Path
) -> None:
    """A read-only path that holds the bot's directory still shows no .env, config or DB."""
    sandbox = _sandbox(bot_dir, sandbox_read_only=(str(bot_dir),))
    command = "cat ../../../../../.env ../../../../../agentbot.toml ../../../../../agentbot.db"
    run = run_tests(command, worktree, timeout=60, sandbox=sandbox)
    _no_secret_in(run.output_tail)
    assert (bot_dir / ".env").read_text().startswith("SLACK_BOT_TOKEN=")


def test_without_bubblewrap_the_run_fails_saying_how_to_fix_it(worktree: Path) -> None:
    """No bwrap: the command never runs unsandboxed; the error names the fix and the opt-out."""
    sandbox = Sandbox(bwrap=str(worktree / "no-such-bwrap"))
    with pytest.raises(SandboxError, match=r"bubblewrap \(bwrap\) is not installed.*sandbox = "):
        run_tests("touch ran", worktree, timeout=60, sandbox=sandbox)
    assert not (worktree / "ran").exists()


def test_a_sandbox_that_cannot_start_fails_the_run_with_bwraps_reason(worktree: Path) -> None:
    """bwrap refusing (no user namespaces, say) is a sandbox failure, not a test failure."""
    refusing = worktree / "bwrap"
    refusing.write_text(
        "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"
    )
    refusing.chmod(0o755)
    with pytest.raises(SandboxError, match=r"setting up uid map: Permission denied.*namespaces"):
        run_tests("true", worktree, timeout=60, sandbox=Sandbox(bwrap=str(refusing)))


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The sample repo, whose test command runs the probe before the suite."""
    repo = config.repos[0]
    # The report goes to the task's agent home (baseline and RED run with it): what the bot's
    # own test runs write in the worktree stays out of the commit.
    probe = f'{sys.executable} tests/hostile.py "$HOME/test-report.json" targets.json tests/t.txt'
    command = f"{probe} && {repo.test_command}"
    return config.model_copy(update={"repos": (repo.model_copy(update={"test_command": command}),)})


def test_a_hostile_task_ends_cleanly_and_leaks_nothing(
    user: SlackUser,
    config: AgentbotConfig,
    sample_repo: Path,
    bot_dir: Path,
    redis_url: str,
    listener: Endpoint,
    other_listener: Endpoint,
    worker_stand_in: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the real app: the agent's command and every test run try each escape, in vain.

    The task still succeeds, and no secret is in the pushed branch, in Slack or the logs.
    """
    caplog.set_level(logging.INFO)
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(sample_repo), str(clone), cwd=tmp_path)
    (clone / "tests" / "hostile.py").write_text(HOSTILE.read_text())
    _targets(clone, bot_dir, redis_url, listener, other_listener)
    script = json.loads((clone / SCRIPT_PATH).read_text())
    probe = [sys.executable, "tests/hostile.py", "tests/agent-report.json", "targets.json"]
    discount = next(s for s in script["scenarios"] if s["match"] == ["discount"])
    discount["command"] = [*probe, "tests/agent-loot.txt"]
    (clone / SCRIPT_PATH).write_text(json.dumps(script))
    git("add", "--all", cwd=clone)
    git("commit", "--quiet", "-m", "hostile", cwd=clone)
    git("push", "--quiet", "origin", "main", cwd=clone)

    user.command("run fix the discount calculation")
    user.work("default", "plan")
    user.command("approve T-1", user=APPROVER)
    user.work("default", "execute")

    with user.services.db.session() as session:
        task = get_task(session, 1)
    assert task.state == "succeeded", task.error
    git("fetch", "--quiet", "origin", cwd=clone)
    pushed = git("archive", "--format=tar", "origin/agent/T-1", cwd=clone)
    # The agent's command and the test command really ran the probe; nothing got out.
    agent_report = git("show", "origin/agent/T-1:tests/agent-report.json", cwd=clone)
    assert config.agent.home is not None
    test_report = (Path(config.agent.home) / "T-1" / "test-report.json").read_text()
    for shown in (agent_report, test_report):
        assert {k: v for k, v in json.loads(shown).items() if v and k[:6] != "write "} == {}
    # What the test runs wrote in the worktree is not the agent's change: not committed.
    assert "tests/t.txt" not in git("ls-tree", "-r", "--name-only", "origin/agent/T-1", cwd=clone)
    _nothing_written_outside(bot_dir)
    _no_secret_in(pushed, json.dumps(user.slack.snapshot()), caplog.text, json.dumps(task.result))


@pytest.mark.parametrize("entry", ["pypi.org", "pypi.org:0", "http://pypi.org:443", "a b:80"])
def test_an_egress_entry_that_is_not_host_port_is_refused_saying_so(entry: str) -> None:
    """A bad allowlist entry stops the configuration from loading, with what is expected."""
    with pytest.raises(ValueError, match=r"is not host:port \(e\.g\. pypi\.org:443\)"):
        AgentConfig(egress=(entry,))


def test_a_sandbox_that_can_start_has_no_problem_and_one_that_cannot_says_why(
    worktree: Path,
) -> None:
    """The start-up probe runs a real command inside: None here, bwrap's reason elsewhere."""
    assert Sandbox().problem() is None
    missing = Sandbox(bwrap=str(worktree / "no-such-bwrap")).problem()
    assert missing is not None and "bubblewrap (bwrap) is not installed" in missing
    refusing = worktree / "bwrap"
    refusing.write_text(
        "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"
    )
    refusing.chmod(0o755)
    said = Sandbox(bwrap=str(refusing)).problem()
    assert said is not None and "setting up uid map: Permission denied" in said
