"""Reading `codex exec --json` output: the documented sample and real recorded runs.

`DOCUMENTED_SAMPLE` is the sample output of Codex's own documentation (docs/exec.md,
"JSON output mode"). The `tests/fixtures/codex_stream*.jsonl` files are real output of
the pinned CLI against the fake Responses API (see `tests/fakes/CODEX_CLI_NOTES.md`;
paths under `/tmp/codex-fixture`); `tests/test_codex_e2e.py` runs the CLI itself. The
runner around the parser is exercised with the fake CLI below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.base import AgentError
from agents.codex import CodexRunner, CodexStream, codex_command, codex_environment
from agents.runner import StreamExit
from tests.agents.fake_cli import FakeCli, agent_options

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED = (FIXTURES / "codex_stream.jsonl").read_text()
RECORDED_RETRIES = (FIXTURES / "codex_stream_retries.jsonl").read_text()
RECORDED_BAD_REQUEST = (FIXTURES / "codex_stream_bad_request.jsonl").read_text()
WORKSPACE = Path("/tmp/codex-fixture/repo")
# Printed by the real CLI for a model it has no metadata for.
METADATA_WARNING = {
    "type": "item.completed",
    "item": {
        "id": "item_0",
        "type": "error",
        "message": "Model metadata for `gpt-test` not found. Defaulting to fallback "
        "metadata; this can degrade performance and cause issues.",
    },
}

DOCUMENTED_SAMPLE = """\
{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Searching for README files**"}}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"","status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"2025-09-11\\nAGENTS.md\\nCHANGELOG.md\\ncliff.toml\\ncodex-cli\\ncodex-rs\\ndocs\\nexamples\\nflake.lock\\nflake.nix\\nLICENSE\\nnode_modules\\nNOTICE\\npackage.json\\npnpm-lock.yaml\\npnpm-workspace.yaml\\nPNPM.md\\nREADME.md\\nscripts\\nsdk\\ntmp\\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"reasoning","text":"**Checking repository root for README**"}}
{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Yep — there’s a `README.md` in the repository root."}}
{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}
"""  # noqa: E501, RUF001

FILE_CHANGE = {
    "type": "item.completed",
    "item": {
        "id": "item_4",
        "type": "file_change",
        "changes": [
            {"path": "/w/src/pricing.py", "kind": "update"},
            {"path": "/w/tests/test_pricing.py", "kind": "add"},
        ],
        "status": "completed",
    },
}
OK_EXIT = StreamExit(0, "", (), False, False, 2.0)


def feed(stream: CodexStream, text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = stream.feed(json.loads(raw))
        if line:
            lines.append(line)
    return lines


def test_documented_sample_gives_progress_and_answer() -> None:
    """The thread id resumes it; the command is a progress line; the message is the answer."""
    stream = CodexStream(Path("/w"))
    assert feed(stream, DOCUMENTED_SAMPLE) == [
        "Codex started",
        "Thinking: Searching for README files",
        "Running ls",
        "Thinking: Checking repository root for README",
    ]
    run = stream.finish(OK_EXIT, timeout=60)
    assert run.text == "Yep — there\u2019s a `README.md` in the repository root."
    assert run.session_id == "0199a213-81c0-7800-8aa1-bbab2a035a53"
    assert run.turns == 1
    assert (run.input_tokens, run.output_tokens) == (24763, 122)
    # Codex reports tokens, not money: the cost is unknown, not zero.
    assert run.cost_known is False


def test_file_changes_become_editing_lines() -> None:
    """A file_change item names its first file, relative to the repo, and counts the rest."""
    stream = CodexStream(Path("/w"))
    assert stream.feed(FILE_CHANGE) == "Editing src/pricing.py and 1 more"


def test_failed_turn_fails_with_its_message() -> None:
    """turn.failed carries the reason the step fails with."""
    stream = CodexStream(Path("/w"))
    feed(stream, DOCUMENTED_SAMPLE.splitlines()[0])
    stream.feed({"type": "turn.failed", "error": {"message": "stream disconnected"}})
    with pytest.raises(AgentError, match="Codex reported an error: stream disconnected"):
        stream.finish(StreamExit(1, "", (), False, False, 1.0), timeout=60)


def test_run_without_a_completed_turn_fails() -> None:
    """No turn.completed: the step fails, quoting stderr."""
    with pytest.raises(AgentError, match="Codex exited with status 2 without a result: bad flag"):
        CodexStream(Path("/w")).finish(StreamExit(2, "bad flag", (), False, False, 0.1), 60)


def test_real_run_gives_progress_answer_and_tokens() -> None:
    """A real run: reasoning, commands and the patch become lines; usage is kept."""
    stream = CodexStream(WORKSPACE)
    assert feed(stream, RECORDED) == [
        "Codex started",
        "Thinking: Reading the pricing code",
        "Running cat",
        "Writing tests/test_discount.py",
        "Running pytest",
    ]
    run = stream.finish(OK_EXIT, timeout=60)
    assert run.text == "Added tests/test_discount.py; it fails as expected."
    assert (run.input_tokens, run.output_tokens) == (4000, 200)
    assert run.session_id == "01a250f7-dc5f-7d92-a7da-a3089b476029"


def test_retry_notices_do_not_fail_a_run_that_completes() -> None:
    """The real CLI prints `error` events while it retries; a completed turn still wins."""
    retry = RECORDED_RETRIES.splitlines()[2]
    assert json.loads(retry)["message"].startswith("Reconnecting... 1/5")
    lines = RECORDED.splitlines()
    stream = CodexStream(WORKSPACE)
    shown = feed(stream, "\n".join([*lines[:2], retry, *lines[2:]]))
    assert "Codex lost the model connection; retrying (1/5)" in shown
    assert stream.finish(OK_EXIT, timeout=60).text.startswith("Added tests/test_discount.py")


def test_waiting_for_the_network_is_shown_as_a_retry() -> None:
    """The real CLI's notice while its endpoint is unreachable reads as a retry."""
    stream = CodexStream(WORKSPACE)
    waiting = {
        "type": "error",
        "message": "Reconnecting... waiting for network (Connection failed: error sending request)",
    }
    assert stream.feed(waiting) == "Codex lost the model connection; retrying"


def test_an_endpoint_that_never_answers_stops_the_run() -> None:
    """Three waits for the network before any answer: stop, saying the endpoint failed."""
    stream = CodexStream(WORKSPACE)
    waiting = {
        "type": "error",
        "message": "Reconnecting... waiting for network (Connection failed: error sending request)",
    }
    stream.feed(json.loads(RECORDED.splitlines()[0]))
    for _ in range(2):
        stream.feed(waiting)
    assert not stream.unreachable
    stream.feed(waiting)
    assert stream.unreachable
    with pytest.raises(AgentError) as failed:
        stream.finish(StreamExit(-9, "", (), False, True, 24.0), timeout=60)
    assert str(failed.value) == (
        "Codex could not reach its model endpoint, so it was stopped: "
        "Connection failed: error sending request"
    )
    # Once the model has answered, a lost connection is waited out as the CLI decides.
    answered = CodexStream(WORKSPACE)
    feed(answered, "\n".join(RECORDED.splitlines()[:3]))
    for _ in range(5):
        answered.feed(waiting)
    assert not answered.unreachable


def test_retries_that_run_out_fail_with_the_reason() -> None:
    """Five reconnects then turn.failed: one readable reason, each retry shown once."""
    stream = CodexStream(WORKSPACE)
    shown = feed(stream, RECORDED_RETRIES)
    assert shown[-1] == "Codex lost the model connection; retrying (5/5)"
    with pytest.raises(AgentError) as failed:
        stream.finish(StreamExit(1, "", (), False, False, 7.0), timeout=60)
    assert str(failed.value) == (
        "Codex reported an error: stream disconnected before completion: The model had a problem"
    )


def test_rejected_request_fails_with_the_api_message_not_its_json() -> None:
    """Codex passes a 400's body on as raw JSON; the reason is the message inside."""
    stream = CodexStream(WORKSPACE)
    feed(stream, RECORDED_BAD_REQUEST)
    with pytest.raises(AgentError) as failed:
        stream.finish(StreamExit(1, "", (), False, False, 0.3), timeout=60)
    assert str(failed.value) == "Codex reported an error: Unsupported parameter: reasoning"


def test_warning_items_are_notes_not_failures() -> None:
    """An `error` item (here, unknown model metadata) is kept as a note; the run succeeds."""
    lines = RECORDED.splitlines()
    stream = CodexStream(WORKSPACE)
    feed(stream, "\n".join([lines[0], json.dumps(METADATA_WARNING), *lines[1:]]))
    assert stream.notes[0].startswith("Model metadata for `gpt-test` not found")
    assert stream.finish(OK_EXIT, timeout=60).turns == 1


def test_web_search_names_its_query() -> None:
    """The real CLI's web_search item (its JSON even repeats `id`) names what is searched."""
    started = (
        '{"type":"item.started","item":{"id":"item_0","type":"web_search","id":"ws_1",'
        '"query":"python round half even","action":{"type":"search",'
        '"query":"python round half even"}}}'
    )
    stream = CodexStream(WORKSPACE)
    assert feed(stream, started) == ["Searching the web for python round half even"]


def test_failed_patch_is_not_reported_as_an_edit() -> None:
    """A file_change that Codex marks failed (a refused patch) shows no editing line."""
    stream = CodexStream(Path("/w"))
    item = {**FILE_CHANGE["item"], "status": "failed"}  # type: ignore[dict-item]
    assert stream.feed({"type": "item.completed", "item": item}) is None


def test_configured_endpoint_becomes_a_model_provider(tmp_path: Path) -> None:
    """OPENAI_BASE_URL names a Responses provider; the CLI is kept off other hosts."""
    options = agent_options(
        tmp_path,
        kind="codex",
        env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-x"},
    )
    argv = codex_command(options, "go", system="", role="executor", workspace=Path("/w"))
    assert "model_provider=agentbot" in argv
    assert (
        'model_providers.agentbot={name="agentbot", base_url="http://127.0.0.1:9/v1", '
        'env_key="OPENAI_API_KEY", wire_api="responses"}'
    ) in argv
    assert argv[argv.index("plugins") - 1] == "--disable"
    assert "analytics.enabled=false" in argv
    exclude = next(a for a in argv if a.startswith("shell_environment_policy.exclude="))
    assert '"OPENAI_API_KEY"' in exclude and '"CODEX_API_KEY"' in exclude
    assert "sk-x" not in " ".join(argv)
    plain = codex_command(
        agent_options(tmp_path, kind="codex"),
        "go",
        system="",
        role="executor",
        workspace=Path("/w"),
    )
    assert not any(a.startswith("model_provider") for a in plain)


def test_codex_home_and_temp_live_in_the_private_home(tmp_path: Path) -> None:
    """CODEX_HOME and TMPDIR are made inside the agent's home, never under the bot's temp."""
    options = agent_options(tmp_path, kind="codex", home=str(tmp_path / "home"))
    env = codex_environment(options, source={})
    assert env["CODEX_HOME"] == str(tmp_path / "home" / ".codex")
    assert env["TMPDIR"] == str(tmp_path / "home" / "tmp")
    assert Path(env["CODEX_HOME"]).is_dir() and Path(env["TMPDIR"]).is_dir()
    assert (Path(env["CODEX_HOME"]).stat().st_mode & 0o777) == 0o700


def test_command_line_maps_roles_to_sandboxes(tmp_path: Path) -> None:
    """Each role's sandbox reaches --sandbox; resume goes after the flags."""
    options = agent_options(
        tmp_path,
        kind="codex",
        model="gpt-5-codex",
        planner={"sandbox": "read-only"},
        executor={"sandbox": "workspace-write"},
    )
    planner = codex_command(
        options, "plan it", system="rules", role="planner", workspace=Path("/w")
    )
    assert planner[:3] == ["codex", "exec", "--json"]
    assert planner[planner.index("--sandbox") + 1] == "read-only"
    assert planner[planner.index("--cd") + 1] == "/w"
    assert planner[planner.index("--model") + 1] == "gpt-5-codex"
    assert planner[-1] == "rules\n\nplan it"
    resumed = codex_command(
        options, "again", system="", role="executor", workspace=Path("/w"), resume="th-1"
    )
    assert resumed[resumed.index("--sandbox") + 1] == "workspace-write"
    assert resumed[-3:] == ["resume", "th-1", "again"]


def test_runner_streams_a_codex_process(tmp_path: Path) -> None:
    """The runner starts the CLI, reports progress as events arrive, and returns the answer."""
    fake = FakeCli(tmp_path / "cli")
    fake.script({"lines": [*DOCUMENTED_SAMPLE.splitlines(), json.dumps(FILE_CHANGE)]})
    workspace = tmp_path / "w"
    workspace.mkdir()
    seen: list[str] = []
    run = CodexRunner(fake.options(env={"OPENAI_API_KEY": "sk-test"})).run(
        "plan it",
        system="",
        workspace=workspace,
        role="planner",
        progress=seen.append,
        cancelled=lambda: False,
    )
    assert run.session_id == "0199a213-81c0-7800-8aa1-bbab2a035a53"
    assert seen[:3] == ["Codex started", "Thinking: Searching for README files", "Running ls"]
    call = fake.calls()[0]
    assert call["argv"][:2] == ["exec", "--json"]
    assert call["env"]["OPENAI_API_KEY"] == "sk-test"
