"""The real Codex CLI against the fake Responses API: how its failures reach a task.

Each test runs the pinned CLI through the bot's own `CodexRunner`, so what is checked
is what a task would report; the outputs recorded in `tests/fixtures/codex_stream*.jsonl`
came from these same runs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.base import AgentError
from agents.codex import CodexRunner
from agents.runner import RunResult
from agents.sandbox import Sandbox
from tests.agents.fake_cli import agent_options
from tests.fakes.codex_cli import MODEL, ensure_codex_cli
from tests.fakes.responses_server import FakeResponsesServer, Reply


@pytest.fixture(scope="module")
def codex() -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the Codex CLI cannot be fetched")
    return ensure_codex_cli()


def run_codex(
    codex: Path,
    tmp_path: Path,
    handler: Callable[[dict[str, object]], Reply],
    seen: list[str],
    role: str = "executor",
) -> tuple[RunResult, FakeResponsesServer]:
    workspace = tmp_path / "repo"
    workspace.mkdir(exist_ok=True)
    with FakeResponsesServer(handler) as server:
        options = agent_options(
            tmp_path,
            kind="codex",
            command=str(codex),
            model=MODEL,
            timeout_seconds=60,
            home=str(tmp_path / "home"),
            env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-smoke"},
        )
        try:
            run = CodexRunner(options).run(
                "Say hello.",
                system="",
                workspace=workspace,
                role="planner" if role == "planner" else "executor",
                progress=seen.append,
                cancelled=lambda: False,
            )
        finally:
            server.stop()
    return run, server


def test_one_server_error_is_retried_and_the_run_succeeds(codex: Path, tmp_path: Path) -> None:
    """A 500 is retried by the CLI on its own; the task sees only the answer."""
    calls: list[int] = []

    def handler(request: dict[str, object]) -> Reply:
        calls.append(1)
        return Reply.error(500, message="boom") if len(calls) == 1 else Reply.message("hello")

    seen: list[str] = []
    run, _ = run_codex(codex, tmp_path, handler, seen)
    assert run.text == "hello" and len(calls) == 2
    assert (run.input_tokens, run.output_tokens) == (1000, 50)


def test_a_failing_stream_is_retried_then_fails_readably(codex: Path, tmp_path: Path) -> None:
    """response.failed five times over: each retry is shown, then one clear reason."""
    seen: list[str] = []
    with pytest.raises(AgentError) as failed:
        run_codex(codex, tmp_path, lambda _: Reply.failure(message="The model had a problem"), seen)
    assert str(failed.value) == (
        "Codex reported an error: stream disconnected before completion: The model had a problem"
    )
    assert "Codex lost the model connection; retrying (5/5)" in seen


def test_a_rejected_request_fails_with_the_api_message(codex: Path, tmp_path: Path) -> None:
    """A 400 is not retried; the reason is the API's message, not its JSON body."""
    seen: list[str] = []
    with pytest.raises(AgentError) as failed:
        run_codex(
            codex,
            tmp_path,
            lambda _: Reply.error(400, "invalid_request_error", "Unsupported parameter: x"),
            seen,
        )
    assert str(failed.value) == "Codex reported an error: Unsupported parameter: x"


def test_an_endpoint_without_its_key_fails_clearly(codex: Path, tmp_path: Path) -> None:
    """OPENAI_BASE_URL without OPENAI_API_KEY: a one-line reason and no request sent."""
    workspace = tmp_path / "repo"
    workspace.mkdir()
    with FakeResponsesServer(lambda _: Reply.message("hello")) as server:
        options = agent_options(
            tmp_path,
            kind="codex",
            command=str(codex),
            model=MODEL,
            timeout_seconds=60,
            home=str(tmp_path / "home"),
            env={"OPENAI_BASE_URL": server.base_url},
        )
        with pytest.raises(AgentError) as failed:
            CodexRunner(options).run(
                "Say hello.",
                system="",
                workspace=workspace,
                role="executor",
                progress=lambda _: None,
                cancelled=lambda: False,
            )
        assert server.requests == []
    assert str(failed.value) == (
        "Codex reported an error: Missing environment variable: `OPENAI_API_KEY`."
    )


@pytest.mark.parametrize("sandboxed", [True, False])
def test_an_unreachable_endpoint_stops_the_run_with_a_reason(
    codex: Path, tmp_path: Path, sandboxed: bool
) -> None:
    """Nothing listening at the endpoint: the run ends soon, saying it was not reached.

    In the bot's sandbox the egress proxy answers 502 and Codex gives up; without it
    Codex would wait for the network forever and the runner stops it.
    """
    workspace = tmp_path / "repo"
    workspace.mkdir()
    with FakeResponsesServer(lambda _: Reply.message("hello")) as server:
        dead = server.base_url
    options = agent_options(
        tmp_path,
        kind="codex",
        command=str(codex),
        model=MODEL,
        timeout_seconds=120,
        home=str(tmp_path / "home"),
        env={"OPENAI_BASE_URL": dead, "OPENAI_API_KEY": "sk-smoke"},
        sandbox=Sandbox(enabled=sandboxed),
    )
    seen: list[str] = []
    started = time.monotonic()
    with pytest.raises(AgentError) as failed:
        CodexRunner(options).run(
            "Say hello.",
            system="",
            workspace=workspace,
            role="executor",
            progress=seen.append,
            cancelled=lambda: False,
        )
    assert time.monotonic() - started < 60
    if sandboxed:
        endpoint = dead.removeprefix("http://").removesuffix("/v1")
        assert f"Agentbot sandbox: {endpoint} could not be reached." in str(failed.value)
    else:
        assert str(failed.value).startswith(
            "Codex could not reach its model endpoint, so it was stopped: Connection failed"
        )
        assert seen.count("Codex lost the model connection; retrying") == 3
