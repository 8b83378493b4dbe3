"""Reading `codex exec --json` output, on the event format Codex documents.

`DOCUMENTED_SAMPLE` is the sample output of Codex's own documentation (docs/exec.md,
"JSON output mode"); the file-change and failure events follow the event types in
its source (codex-rs/exec/src/exec_events.rs). No real Codex run is involved: the
CLI needs an OpenAI account. The runner around the parser is exercised with the fake
CLI below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.base import AgentError
from agents.codex import CodexRunner, CodexStream, codex_command
from agents.runner import CliOptions, RolePermissions, StreamExit
from tests.agents.fake_cli import FakeCli

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
    assert feed(stream, DOCUMENTED_SAMPLE) == ["Codex started", "Running ls"]
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


def test_command_line_maps_roles_to_sandboxes() -> None:
    """Planner read-only, executor workspace-write; resume goes after the flags."""
    options = CliOptions(
        command="codex",
        model="gpt-5-codex",
        planner=RolePermissions("dontAsk", sandbox="read-only"),
        executor=RolePermissions("acceptEdits", sandbox="workspace-write"),
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
    assert seen[:2] == ["Codex started", "Running ls"]
    call = fake.calls()[0]
    assert call["argv"][:2] == ["exec", "--json"]
    assert call["env"]["OPENAI_API_KEY"] == "sk-test"
