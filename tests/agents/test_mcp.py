"""MCP servers for the agents: configuration, secrets by reference, per-run files, prompts."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.base import AgentError, RepoSpec, TaskBrief
from agents.claude_code import ClaudeCodeRunner, claude_command
from agents.config import AgentConfig
from agents.mcp import McpServerConfig, config_file, egress_hosts, source_hint
from agents.prompts import planner_prompt
from agents.runner import CliPlanner, describe_tool
from bot.runtime import agent_factory, cli_options
from bot.settings import ConfigError, load_config_file
from jobs.config import AgentbotConfig
from sandbox.sample import PLAN
from tests.agents.fake_cli import FakeCli, agent_options, init, result
from tests.fakes.anthropic_server import FakeAnthropicServer, Reply, ScriptedModel
from tests.fakes.claude_cli import ensure_claude_cli
from tests.fakes.mcp_server import STACK_TRACE, TOOL, RemoteMcpServer

SERVER_SCRIPT = Path(__file__).parents[1] / "fakes" / "mcp_server.py"
REPOS = """
[[repos]]
name = "acme/web"
git_url = "https://github.com/acme/web.git"

[[repos]]
name = "acme/api"
git_url = "https://github.com/acme/api.git"
"""

SENTRY = """
[agent]
kind = "claude-code"

[agent.mcp.sentry]
command = "npx"
args = ["-y", "@sentry/mcp-server"]
env = { SENTRY_ACCESS_TOKEN = "env:SENTRY_AUTH_TOKEN", SENTRY_HOST = "sentry.acme.io" }
tools = ["get_issue_details", "search_events"]

[agent.mcp.github]
url = "https://api.githubcopilot.com/mcp/"
headers = { Authorization = "Bearer {env:GITHUB_MCP_TOKEN}" }
roles = ["planner", "executor"]
tools = ["*"]

[agent.mcp.github.repos."acme/api"]
enabled = false

[agent.mcp.sentry.repos."acme/api"]
tools = ["get_issue_details"]
"""


def load(tmp_path: Path, text: str) -> AgentbotConfig:
    path = tmp_path / "agentbot.toml"
    path.write_text(REPOS + text)
    return load_config_file(path)


def test_servers_reach_only_their_roles_with_only_their_allowed_tools(tmp_path: Path) -> None:
    """Each role's allowlist gains exactly its servers' allowed tools; `*` allows a server."""
    options = cli_options(load(tmp_path, SENTRY).agent, repo="acme/web")

    planner = claude_command(options, "go", system="", role="planner")
    executor = claude_command(options, "go", system="", role="executor")

    allowed = planner[planner.index("--allowedTools") + 1].split(",")
    assert allowed == [
        "Read",
        "Glob",
        "Grep",
        "mcp__sentry__get_issue_details",
        "mcp__sentry__search_events",
        "mcp__github",
    ]
    allowed = executor[executor.index("--allowedTools") + 1].split(",")
    assert "mcp__github" in allowed and not any("sentry" in rule for rule in allowed)
    # The file tools are kept out of the folder of the runs' files, with their secrets.
    folder = Path(options.agent.mcp_dir).resolve()
    for argv in (planner, executor):
        denied = argv[argv.index("--disallowedTools") + 1].split(",")
        assert {f"Read(/{folder}/**)", f"Edit(/{folder}/**)"} <= set(denied)
    # Only the bot's own per-run file is read; a repository's .mcp.json never is.
    assert "--strict-mcp-config" in planner and "--strict-mcp-config" in executor


def test_a_repository_may_turn_a_server_off_or_narrow_it(tmp_path: Path) -> None:
    """Per-repo overrides: acme/api has no GitHub server and one Sentry tool."""
    options = cli_options(load(tmp_path, SENTRY).agent, repo="acme/api")

    assert set(options.mcp) == {"sentry"}
    assert options.mcp["sentry"].tools == ("get_issue_details",)
    assert options.mcp["sentry"].env["SENTRY_HOST"] == "sentry.acme.io"


def test_egress_is_the_remote_servers_hosts_of_that_run_only(tmp_path: Path) -> None:
    """A remote server's host joins its roles' runs' egress; stdio servers add nothing."""
    agent = load(tmp_path, SENTRY).agent
    web = cli_options(agent, repo="acme/web")

    assert web.mcp_egress("planner") == (("api.githubcopilot.com", 443),)
    assert web.mcp_egress("executor") == (("api.githubcopilot.com", 443),)
    assert cli_options(agent, repo="acme/api").mcp_egress("planner") == ()
    remote = {"url": "http://mcp.acme.internal:8080/mcp", "tools": ["*"]}
    assert egress_hosts({"a": McpServerConfig.model_validate(remote)}) == (
        ("mcp.acme.internal", 8080),
    )
    # A stdio server calls its own service: the hosts it names join its roles' runs.
    local = {"command": "x", "tools": ["t"], "egress": ["sentry.io:443"], "roles": ["executor"]}
    options = agent_options(tmp_path, mcp={"s": local})
    assert options.mcp_egress("executor") == (("sentry.io", 443),)
    assert options.mcp_egress("planner") == ()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[agent.mcp.s]\ncommand = "x"\nurl = "https://x.io"\ntools = ["t"]',
            "agent.mcp.s: Value error, give either command (a stdio server) or url",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = []',
            "agent.mcp.s.tools: Tuple should have at least 1 item",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = ["t"]\nenv = { T = "env:SLACK_BOT_TOKEN" }',
            "env.T: SLACK_BOT_TOKEN is the bot's own; give the server a token of its own",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = ["t"]\nenv = { T = "$env:TOKEN" }',
            "env.T: write a secret as env:NAME, or {env:NAME} inside a value",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = ["t"]\negress = ["sentry.io"]',
            "agent.mcp.s.egress: Value error, 'sentry.io' is not host:port",
        ),
        (
            '[agent.mcp.s]\nurl = "ftp://x.io"\ntools = ["t"]',
            "url must be an http(s) URL with a host",
        ),
        (
            '[agent.mcp.a__b]\ncommand = "x"\ntools = ["t"]',
            "agent.mcp: Value error, 'a__b': a server name is letters, digits, - and single _",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = ["t"]\n[agent.mcp.s.repos."acme/nope"]\n'
            "enabled = false",
            "agent.mcp.s.repos: acme/nope is not one of the configured repos",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = ["t"]\n[agent.mcp.s.repos."acme/web"]\n'
            'env = { T = "env:GITHUB_TOKEN" }',
            "repos.acme/web: env.T: GITHUB_TOKEN is the bot's own",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = ["t"]\n[agent.mcp.s.repos."acme/web"]\n'
            'tools = ["no good"]',
            "repos.acme/web: tools: 'no good' is not a tool name",
        ),
        (
            '[agent.mcp.s]\ncommand = "x"\ntools = ["t"]\nroles = ["reviewer"]',
            "agent.mcp.s.roles.0: Input should be 'planner' or 'executor'",
        ),
    ],
)
def test_bad_server_tables_are_refused_in_one_line(
    tmp_path: Path, table: str, message: str
) -> None:
    """A mistake in `[agent.mcp.*]` stops the bot at start with one line naming the key."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f'[agent]\nkind = "claude-code"\n{table}\n')
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_codex_is_not_given_servers_it_would_ignore() -> None:
    """MCP servers are refused for Codex rather than silently dropped."""
    with pytest.raises(ValueError, match="MCP servers are given to Claude Code only"):
        AgentConfig.model_validate(
            {"kind": "codex", "mcp": {"s": {"command": "x", "tools": ["t"]}}}
        )


def test_the_run_file_holds_the_resolved_secret_privately_and_is_removed(
    tmp_path: Path,
) -> None:
    """The secret is resolved into the server's own entry, in a 0600 file, gone after."""
    agent = load(tmp_path, SENTRY).agent
    servers = cli_options(agent, repo="acme/web").mcp_servers("planner")
    source = {"SENTRY_AUTH_TOKEN": "sntrys_secret", "GITHUB_MCP_TOKEN": "github_pat_x"}

    with config_file(servers, tmp_path / "mcp", source) as path:
        assert path is not None and path.is_relative_to(tmp_path / "mcp")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        document = json.loads(path.read_text())
    assert not path.exists() and not path.parent.exists()
    sentry = document["mcpServers"]["sentry"]
    assert sentry["env"] == {
        "SENTRY_ACCESS_TOKEN": "sntrys_secret",
        "SENTRY_HOST": "sentry.acme.io",
    }
    assert sentry["command"] == "npx" and sentry["args"] == ["-y", "@sentry/mcp-server"]
    assert document["mcpServers"]["github"] == {
        "type": "http",
        "url": "https://api.githubcopilot.com/mcp/",
        "headers": {"Authorization": "Bearer github_pat_x"},
    }


def test_a_missing_secret_names_the_variable_and_writes_nothing(tmp_path: Path) -> None:
    """An unset referenced variable fails the run with its name, never a value or a file."""
    servers = cli_options(load(tmp_path, SENTRY).agent, repo="acme/api").mcp_servers("planner")

    with pytest.raises(AgentError) as caught, config_file(servers, tmp_path / "mcp", {}):
        pass
    assert str(caught.value) == (
        "The MCP server sentry needs SENTRY_AUTH_TOKEN from the bot's environment, "
        "which is not set."
    )
    assert not (tmp_path / "mcp").exists()


def test_mcp_tool_calls_get_progress_lines_like_other_tools(tmp_path: Path) -> None:
    """`mcp__sentry__get_issue_events` shows as "Sentry: get_issue_events 4211"."""
    names = {"sentry": "Sentry", "jira-cloud": "Jira"}
    line = describe_tool("mcp__sentry__get_issue_events", {"issue_id": "4211"}, tmp_path, names)
    assert line == "Sentry: get_issue_events 4211"
    line = describe_tool(
        "mcp__jira-cloud__getJiraIssue", {"issueIdOrKey": "PAY-7"}, tmp_path, names
    )
    assert line == "Jira: getJiraIssue PAY-7"
    # The id is shown rather than the organisation it lives in.
    line = describe_tool(
        "mcp__sentry__get_issue_details", {"organizationSlug": "acme", "issueId": 4211}, tmp_path
    )
    assert line == "Sentry: get_issue_details 4211"
    # Long or structured arguments are left out rather than flooding the thread.
    line = describe_tool("mcp__github__search_code", {"query": "x" * 200, "n": 3}, tmp_path)
    assert line == "GitHub: search_code 3"


def brief(source: str, data: dict[str, str]) -> TaskBrief:
    repo = RepoSpec("acme/web", "https://github.com/acme/web.git", "main", "pytest -q")
    return TaskBrief(
        key="T-9", description="it crashes", repo=repo, source=source, source_data=data
    )


def test_sentry_and_jira_tasks_tell_the_planner_which_server_and_ids(tmp_path: Path) -> None:
    """A Sentry task names the issue to look up and the server's tools; Jira, GitHub likewise."""
    text = SENTRY + '\n[agent.mcp.atlassian]\ncommand = "x"\ntools = ["getJiraIssue"]\n'
    config = load(tmp_path, text)
    pair = agent_factory(config.agent, repo=config.repo("acme/web"))
    planner = pair.planner
    assert isinstance(planner, CliPlanner)
    sentry = planner_prompt(
        brief("sentry", {"issue_id": "4211", "project": "web"}),
        source_hint("sentry", {"issue_id": "4211", "project": "web"}, planner.mcp),
    )
    assert "The MCP server sentry can look up Sentry issue 4211 in project web" in sentry
    assert "mcp__sentry__get_issue_details, mcp__sentry__search_events" in sentry
    jira = source_hint("jira", {"key": "PAY-7"}, planner.mcp)
    assert "The MCP server atlassian can read Jira issue PAY-7" in jira
    assert "mcp__atlassian__getJiraIssue" in jira
    github = source_hint("github", {"repo": "acme/web", "number": 12}, planner.mcp)
    assert "The MCP server github can read GitHub issue acme/web#12" in github
    # No server for the source, or a plain Slack task: nothing is claimed.
    assert source_hint("sentry", {"issue_id": "1"}, {}) == ""
    assert source_hint("slack", {}, planner.mcp) == ""


# -- with the real Claude Code CLI --------------------------------------------------------


@pytest.fixture(scope="module")
def claude() -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the Claude Code CLI cannot be fetched")
    return ensure_claude_cli()


@pytest.fixture
def model() -> Iterator[FakeAnthropicServer]:
    script = ScriptedModel(turns=[Reply.tool("mcp__planted__anything", {}), Reply.text("done")])
    with FakeAnthropicServer(script) as server:
        yield server


def test_servers_a_repository_plants_are_never_started(
    claude: Path, model: FakeAnthropicServer, tmp_path: Path
) -> None:
    """A worktree's `.mcp.json`, even enabled by its `.claude/settings.json`, starts nothing."""
    workspace = tmp_path / "repo"
    (workspace / ".claude").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    # In the worktree, which the sandbox lets a run write.
    marker = workspace / "planted-server-ran"
    planted = {"command": sys.executable, "args": ["-c", f"open({str(marker)!r}, 'w')"]}
    (workspace / ".mcp.json").write_text(json.dumps({"mcpServers": {"planted": planted}}))
    (workspace / ".claude" / "settings.json").write_text(
        json.dumps({"enableAllProjectMcpServers": True, "permissions": {"allow": ["mcp__planted"]}})
    )
    options = agent_options(
        tmp_path,
        command=str(claude),
        timeout_seconds=60,
        home=str(tmp_path / "home"),
        env={
            "ANTHROPIC_BASE_URL": model.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-fake",
            "CLAUDE_CODE_MAX_RETRIES": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        },
    )

    ClaudeCodeRunner(options).run(
        "go",
        system="",
        workspace=workspace,
        role="executor",
        progress=lambda line: None,
        cancelled=lambda: False,
    )

    assert not marker.exists()
    results = model.tool_results()
    assert "No such tool available: mcp__planted__anything" in str(results[0]["content"])


def test_a_remote_server_gets_its_header_secret_and_answers_the_planner(
    claude: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote server's `{env:NAME}` header reaches it; `*` allows its tool; the line names it."""
    monkeypatch.setenv("TRACKER_MCP_TOKEN", "trk_remote_secret_77")
    record = tmp_path / "record.json"
    workspace = tmp_path / "repo"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    script = ScriptedModel(
        turns=[Reply.tool(f"mcp__tracker__{TOOL}", {"issue_id": "4211"}), Reply.text("done")]
    )
    with (
        RemoteMcpServer(record, "Bearer trk_remote_secret_77") as remote,
        FakeAnthropicServer(script) as model,
    ):
        server = McpServerConfig.model_validate(
            {
                "url": remote.url,
                "headers": {"Authorization": "Bearer {env:TRACKER_MCP_TOKEN}"},
                "tools": ["*"],
                "label": "Tracker",
            }
        )
        options = agent_options(
            tmp_path,
            command=str(claude),
            timeout_seconds=60,
            home=str(tmp_path / "home"),
            env={
                "ANTHROPIC_BASE_URL": model.base_url,
                "ANTHROPIC_API_KEY": "sk-ant-fake",
                "CLAUDE_CODE_MAX_RETRIES": "1",
                "NO_PROXY": "127.0.0.1,localhost",
            },
            mcp={"tracker": server},
        )
        lines: list[str] = []
        ClaudeCodeRunner(options).run(
            "go",
            system="",
            workspace=workspace,
            role="planner",
            progress=lines.append,
            cancelled=lambda: False,
        )

        assert options.mcp_egress("planner") == (("127.0.0.1", remote.port),)
        assert "Bearer trk_remote_secret_77" in remote.seen_authorization
        answer = model.tool_results()[0]
        assert not answer.get("is_error") and STACK_TRACE.splitlines()[0] in str(answer["content"])
        assert "Tracker: get_issue_events 4211" in lines
        assert "trk_remote_secret_77" not in json.dumps([r.body for r in model.requests])
        assert list(Path(options.agent.mcp_dir).iterdir()) == []


def test_a_sentry_task_planned_with_the_server_names_it_in_the_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the configured pair: the planner's run gets the file and the lookup hint."""
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "sntrys_for_the_fake")
    fake = FakeCli(tmp_path / "cli")
    fake.script({"lines": [init(), result(json.dumps(PLAN))]})
    config = load(tmp_path, SENTRY)
    agent = config.agent.model_copy(
        update={
            "command": str(fake.executable),
            "env": fake.options().agent.env,
            # The fake runs sandboxed like any agent; it may only also write its calls file.
            "sandbox_writable": (str(fake.directory),),
        }
    )
    workspace = tmp_path / "repo"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    task = brief("sentry", {"issue_id": "4211", "project": "web"})

    agent_factory(agent, repo=config.repo("acme/api")).planner.plan(
        task, workspace, progress=lambda _: None, cancelled=lambda: False
    )

    (call,) = fake.calls()
    argv = call["argv"]
    prompt = argv[argv.index("-p") + 1]
    assert "The MCP server sentry can look up Sentry issue 4211 in project web" in prompt
    assert "mcp__sentry__get_issue_details" in prompt
    mcp_file = Path(argv[argv.index("--mcp-config") + 1])
    assert not mcp_file.exists() and not mcp_file.is_relative_to(workspace)
    assert "sntrys_for_the_fake" not in json.dumps(call["env"])


def test_planning_without_the_servers_secret_fails_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset referenced variable fails the plan in a sentence; the CLI never starts."""
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    fake = FakeCli(tmp_path / "cli")
    fake.script({"lines": [init(), result(json.dumps(PLAN))]})
    config = load(tmp_path, SENTRY)
    agent = config.agent.model_copy(
        update={
            "command": str(fake.executable),
            "env": fake.options().agent.env,
            # The fake runs sandboxed like any agent; it may only also write its calls file.
            "sandbox_writable": (str(fake.directory),),
        }
    )
    workspace = tmp_path / "repo"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)

    with pytest.raises(AgentError, match="needs SENTRY_AUTH_TOKEN from the bot's environment"):
        agent_factory(agent, repo=config.repo("acme/api")).planner.plan(
            brief("slack", {}), workspace, progress=lambda _: None, cancelled=lambda: False
        )
    assert fake.calls() == []


def test_the_agent_cannot_read_the_run_file_holding_the_secret(
    claude: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read, Grep and Glob are refused inside the MCP folder; the secret never reaches the model."""
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "sntrys_never_for_the_model")
    # Where `[agent] workspace_dir` puts the runs' MCP files (`agent_options`).
    mcp_dir = tmp_path / "workspaces" / "mcp"
    workspace = tmp_path / "repo"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)

    def attempt(request: dict[str, Any]) -> Reply:
        # Each step of the loop tries another way in, with the path found at that moment.
        step = sum(1 for m in request["messages"] if m.get("role") == "assistant")
        files = sorted(mcp_dir.glob("*/mcp.json"))
        target = str(files[0]) if files else str(mcp_dir / "missing")
        tries = [
            Reply.tool("Glob", {"pattern": "**/*.json", "path": str(mcp_dir)}),
            Reply.tool("Read", {"file_path": target}),
            Reply.tool(
                "Grep", {"pattern": "sntrys", "path": str(mcp_dir), "output_mode": "content"}
            ),
        ]
        return tries[step] if step < len(tries) else Reply.text("done")

    server = McpServerConfig.model_validate(
        {
            "command": sys.executable,
            "args": [str(SERVER_SCRIPT), str(tmp_path / "record.json")],
            "env": {"SENTRY_ACCESS_TOKEN": "env:SENTRY_AUTH_TOKEN"},
            "tools": [TOOL],
        }
    )
    with FakeAnthropicServer(attempt) as model:
        options = agent_options(
            tmp_path,
            command=str(claude),
            timeout_seconds=60,
            home=str(tmp_path / "home"),
            env={
                "ANTHROPIC_BASE_URL": model.base_url,
                "ANTHROPIC_API_KEY": "sk-ant-fake",
                "CLAUDE_CODE_MAX_RETRIES": "1",
                "NO_PROXY": "127.0.0.1,localhost",
            },
            mcp={"sentry": server},
        )
        assert Path(options.agent.mcp_dir) == mcp_dir
        ClaudeCodeRunner(options).run(
            "go",
            system="",
            workspace=workspace,
            role="planner",
            progress=lambda _: None,
            cancelled=lambda: False,
        )

        results = [str(r["content"]) for r in model.tool_results()]
        assert len(results) == 3
        assert all("denied" in text for text in results), results
        assert "sntrys_never_for_the_model" not in json.dumps([r.body for r in model.requests])
