"""Smoke tests: the real Claude Code CLI, headless, driven by the scripted fake model.

The CLI is installed from npm on first use (see ``claude_cli.py``); the tests are skipped
only when npm itself is missing. Set ``AGENTBOT_RECORD_CLAUDE_FIXTURES=1`` to rewrite
``tests/fixtures/claude_stream*.jsonl`` from these runs (paths are anonymised first).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .anthropic_server import FakeAnthropicServer, Reply, ScriptedModel, system_text
from .claude_cli import (
    CLAUDE_CODE_VERSION,
    HeadlessRun,
    ensure_claude_cli,
    headless_command,
    headless_env,
    parse_stream,
    run_headless,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORD = os.environ.get("AGENTBOT_RECORD_CLAUDE_FIXTURES") == "1"
RUN_TIMEOUT = 120.0
MODEL = "claude-sonnet-4-5"
PROMPT_MARKER = "AGENTBOT-SMOKE-MARKER: keep answers short."

APP_SOURCE = "def add(a: int, b: int) -> int:\n    return a + b\n"
TEST_SOURCE = "from app import add\n\n\ndef test_add() -> None:\n    assert add(2, 3) == 5\n"
# Placeholders that replace this run's temporary paths in recorded fixtures.
FIXTURE_REPO = "/tmp/claude-fixture/repo"
FIXTURE_HOME = "/tmp/claude-fixture/home"


@pytest.fixture(scope="module")
def claude() -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the Claude Code CLI cannot be fetched")
    return ensure_claude_cli()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "app.py").write_text(APP_SOURCE)
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    for args in (["init", "-q"], ["add", "app.py"], ["commit", "-q", "-m", "init"]):
        subprocess.run([*git, *args], cwd=path, check=True, timeout=30, capture_output=True)
    return path


def _env(base_url: str, tmp_path: Path) -> dict[str, str]:
    # The Bash tool resolves python3 through PATH: put this interpreter (which has pytest)
    # first so the agent's test run behaves the same everywhere.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return headless_env(base_url, home=tmp_path / "home", extra={"PATH": path})


def _anonymise(stdout: str, tmp_path: Path) -> str:
    repo, home = str(tmp_path / "repo"), str(tmp_path / "home")
    text = stdout.replace(repo, FIXTURE_REPO).replace(home, FIXTURE_HOME)
    # The CLI names per-project state after the cwd with every other character turned
    # into "-", so the same path shows up in that form too.
    slug = re.sub(r"[^A-Za-z0-9]", "-", repo)
    text = text.replace(slug, re.sub(r"[^A-Za-z0-9]", "-", FIXTURE_REPO))
    assert str(tmp_path) not in text
    return text


def _record(name: str, run: HeadlessRun, tmp_path: Path) -> None:
    if RECORD:
        FIXTURES.mkdir(exist_ok=True)
        (FIXTURES / name).write_text(_anonymise(run.stdout, tmp_path))


def _of_type(run: HeadlessRun, kind: str) -> list[dict[str, Any]]:
    return [e for e in run.events if e.get("type") == kind]


def _content(events: list[dict[str, Any]], block_type: str) -> list[dict[str, Any]]:
    return [
        block
        for event in events
        for block in event["message"]["content"]
        if isinstance(block, dict) and block.get("type") == block_type
    ]


def test_headless_run_reads_writes_and_runs_bash(claude: Path, repo: Path, tmp_path: Path) -> None:
    script = ScriptedModel(
        turns=[
            Reply.tool(
                "Read",
                {"file_path": str(repo / "app.py")},
                text="Reading the module first.",
                tool_id="toolu_smoke_read",
            ),
            Reply.tool(
                "Write",
                {"file_path": str(repo / "test_app.py"), "content": TEST_SOURCE},
                tool_id="toolu_smoke_write",
            ),
            Reply.tool(
                "Bash",
                {
                    "command": "python3 -m pytest -q -p no:cacheprovider test_app.py",
                    "description": "Run the new test",
                },
                tool_id="toolu_smoke_bash",
            ),
            Reply.text("Added test_app.py; the test passes."),
        ]
    )
    with FakeAnthropicServer(script) as server:
        cmd = headless_command(
            claude,
            "Add a unit test for add() and run it.",
            max_turns=10,
            model=MODEL,
            append_system_prompt=PROMPT_MARKER,
        )
        run = run_headless(cmd, cwd=repo, env=_env(server.base_url, tmp_path), timeout=RUN_TIMEOUT)
    _record("claude_stream.jsonl", run, tmp_path)

    assert run.returncode == 0, run.stderr
    assert script.remaining == 0 and script.exhausted_calls == 0
    assert not server.script_errors

    # The tools really ran: the file is on disk and the results came back to the model.
    assert (repo / "test_app.py").read_text() == TEST_SOURCE
    read_result = server.tool_result_for("toolu_smoke_read")
    assert read_result is not None and "return a + b" in json.dumps(read_result)
    write_result = server.tool_result_for("toolu_smoke_write")
    assert write_result is not None and not write_result.get("is_error")
    bash_result = server.tool_result_for("toolu_smoke_bash")
    assert bash_result is not None and bash_result.get("is_error") is False
    assert "1 passed" in json.dumps(bash_result)

    # The flags reached the requests.
    first = server.main_requests()[0]
    assert first["model"] == MODEL
    assert first["stream"] is True
    assert PROMPT_MARKER in system_text(first) or PROMPT_MARKER in json.dumps(first["messages"])
    assert {"Read", "Write", "Edit", "Bash"} <= {t["name"] for t in first["tools"]}

    init = run.events[0]
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert init["permissionMode"] == "acceptEdits"
    assert init["claude_code_version"] == CLAUDE_CODE_VERSION
    tool_uses = _content(_of_type(run, "assistant"), "tool_use")
    assert [t["name"] for t in tool_uses] == ["Read", "Write", "Bash"]
    assert tool_uses[2]["input"]["command"].startswith("python3 -m pytest")
    tool_results = _content(_of_type(run, "user"), "tool_result")
    assert [r["tool_use_id"] for r in tool_results] == [t["id"] for t in tool_uses]

    result = run.events[-1]
    assert result["type"] == "result"
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == "Added test_app.py; the test passes."
    assert result["session_id"] == init["session_id"]
    assert result["num_turns"] >= 4
    assert isinstance(result["total_cost_usd"], int | float)
    assert result["usage"]["output_tokens"] > 0


def test_model_outage_ends_with_error_result(claude: Path, repo: Path, tmp_path: Path) -> None:
    script = ScriptedModel(turns=[], when_exhausted=Reply.error(529, "overloaded_error"))
    with FakeAnthropicServer(script) as server:
        cmd = headless_command(claude, "Say hello.", max_turns=3, model=MODEL)
        run = run_headless(cmd, cwd=repo, env=_env(server.base_url, tmp_path), timeout=RUN_TIMEOUT)
    _record("claude_stream_error.jsonl", run, tmp_path)

    assert run.returncode == 1
    assert len(server.main_requests()) >= 2, "the CLI should retry an overloaded API"
    assert any(e.get("subtype") == "api_retry" for e in _of_type(run, "system"))
    result = run.events[-1]
    assert result["type"] == "result"
    # An API failure is reported with subtype "success": only is_error tells it apart.
    assert result["is_error"] is True
    assert result["api_error_status"] == 529
    assert "API Error" in result["result"]


def test_disallowed_tool_is_refused_to_the_model(claude: Path, repo: Path, tmp_path: Path) -> None:
    script = ScriptedModel(
        turns=[
            Reply.tool("Bash", {"command": "touch pwned"}, tool_id="toolu_smoke_denied"),
            Reply.text("Could not run it."),
        ]
    )
    with FakeAnthropicServer(script) as server:
        cmd = headless_command(claude, "Run a command.", disallowed_tools=["Bash"], max_turns=5)
        run = run_headless(cmd, cwd=repo, env=_env(server.base_url, tmp_path), timeout=RUN_TIMEOUT)

    assert run.returncode == 0, run.stderr
    assert not (repo / "pwned").exists()
    assert "Bash" not in {t["name"] for t in server.main_requests()[0]["tools"]}
    denied = server.tool_result_for("toolu_smoke_denied")
    assert denied is not None and denied.get("is_error") is True
    assert "No such tool available" in json.dumps(denied)
    assert run.result is not None and run.result["is_error"] is False


@pytest.mark.parametrize("name", ["claude_stream.jsonl", "claude_stream_error.jsonl"])
def test_recorded_fixture_is_a_complete_stream(name: str) -> None:
    path = FIXTURES / name
    assert path.exists(), f"{name} is missing from the recorded fixtures"
    events = parse_stream(path.read_text())
    assert len(events) == len(path.read_text().splitlines())
    assert (events[0]["type"], events[0]["subtype"]) == ("system", "init")
    assert events[-1]["type"] == "result"
    assert events[-1]["is_error"] is (name == "claude_stream_error.jsonl")


def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_fake_server_without_the_cli() -> None:
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    user = {"role": "user", "content": "hi"}
    script = ScriptedModel(
        turns=[
            Reply.tool("Bash", {"command": "ls"}, tool_id="toolu_1"),
            Reply.error(500, "api_error", "boom"),
        ]
    )
    with FakeAnthropicServer(script) as server:
        messages = f"{server.base_url}/v1/messages"
        # Housekeeping calls (no tools, or a one-token quota probe) never use up a turn.
        status, body = _post(messages, {"model": "m", "max_tokens": 1, "messages": [user]})
        assert status == 200 and json.loads(body)["content"][0]["text"] == "OK"
        status, body = _post(f"{messages}/count_tokens", {"model": "m", "messages": [user]})
        assert status == 200 and json.loads(body)["input_tokens"] > 0

        status, body = _post(
            messages,
            {"model": "m", "max_tokens": 99, "stream": True, "tools": tools, "messages": [user]},
        )
        events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
        assert events[0]["type"] == "message_start"
        assert events[-1]["type"] == "message_stop"
        partial = "".join(
            e["delta"]["partial_json"]
            for e in events
            if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
        )
        assert json.loads(partial) == {"command": "ls"}
        assert events[-2]["delta"]["stop_reason"] == "tool_use"

        status, body = _post(
            messages, {"model": "m", "max_tokens": 99, "tools": tools, "messages": [user]}
        )
        assert status == 500 and json.loads(body)["error"]["type"] == "api_error"

        status, body = _post(
            messages, {"model": "m", "max_tokens": 99, "tools": tools, "messages": [user]}
        )
        assert json.loads(body)["content"][0]["text"] == "(script exhausted)"
        assert [r.kind for r in server.requests] == ["side", "count_tokens", "main", "main", "main"]
        assert script.exhausted_calls == 1


def test_fake_server_with_a_dynamic_script() -> None:
    def answer(request: dict[str, Any]) -> Reply:
        prompt = request["messages"][-1]["content"]
        if prompt == "boom":
            raise ValueError("no answer scripted")
        return Reply.text(f"echo: {prompt}")

    tools = [{"name": "Read", "input_schema": {"type": "object"}}]

    def ask(url: str, prompt: str) -> tuple[int, str]:
        messages = [{"role": "user", "content": prompt}]
        return _post(url, {"model": "m", "max_tokens": 9, "tools": tools, "messages": messages})

    with FakeAnthropicServer(answer) as server:
        url = f"{server.base_url}/v1/messages"
        status, body = ask(url, "hi")
        assert status == 200 and json.loads(body)["content"][0]["text"] == "echo: hi"
        # A script that raises answers 500 (the CLI would retry) and keeps the exception.
        status, _ = ask(url, "boom")
        assert status == 500
        assert [type(e) for e in server.script_errors] == [ValueError]
