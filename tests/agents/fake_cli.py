"""A stand-in agent CLI: a real executable that prints scripted JSON lines.

It exercises what surrounds the CLI (argv, environment, process groups, timeouts,
unreadable output) in milliseconds; the real Claude Code CLI is exercised by
`tests/agents/test_claude_e2e.py`. Each run appends its argv, environment and working
directory to a calls file, then plays the next entry of `runs`:

    {"lines": [<event dict or raw str>...], "sleep": 0, "exit": 0, "stderr": "",
     "spawn": "<shell command started in a session of its own>",
     "write": {"relative/path": "content"}}
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agents.config import AgentConfig
from agents.runner import CliOptions
from agents.sandbox import Sandbox

PROGRAM = """\
import json, os, subprocess, sys, time
script = json.load(open(os.environ["FAKE_CLI_SCRIPT"]))
with open(script["calls"], "a") as calls:
    calls.write(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ),
                            "cwd": os.getcwd()}) + "\\n")
with open(script["calls"]) as calls:
    number = len(calls.readlines())
run = script["runs"][min(number, len(script["runs"])) - 1]
if run.get("spawn"):
    subprocess.Popen(["/bin/sh", "-c", run["spawn"]], start_new_session=True)
for name, content in run.get("write", {}).items():
    with open(name, "w") as handle:
        handle.write(content)
for line in run.get("lines", []):
    print(line if isinstance(line, str) else json.dumps(line), flush=True)
time.sleep(run.get("sleep", 0))
sys.stderr.write(run.get("stderr", ""))
sys.exit(run.get("exit", 0))
"""


@dataclass
class FakeCli:
    """One fake CLI executable and its script."""

    directory: Path

    @property
    def executable(self) -> Path:
        """The program to configure as the agent command."""
        return self.directory / "fake-agent"

    @property
    def calls_file(self) -> Path:
        """Where each run records its argv and environment."""
        return self.directory / "calls.jsonl"

    def script(self, *runs: dict[str, Any]) -> None:
        """Set what the next runs print and do."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.executable.write_text(f"#!{sys.executable}\n{PROGRAM}")
        self.executable.chmod(0o755)
        (self.directory / "script.json").write_text(
            json.dumps({"calls": str(self.calls_file), "runs": list(runs)})
        )

    def options(self, **overrides: Any) -> CliOptions:
        """CLI options that run this fake (its script travels in `env`).

        `overrides` are `[agent]` keys, as the TOML file would give them.
        """
        env = {"FAKE_CLI_SCRIPT": str(self.directory / "script.json")}
        env.update(overrides.pop("env", {}))
        table: dict[str, Any] = {"command": str(self.executable), "timeout_seconds": 30}
        table.update(overrides)
        # The fake runs sandboxed like any agent; it may only also write its calls file.
        sandbox = Sandbox(writable=(str(self.directory),))
        return agent_options(self.directory, sandbox=sandbox, env=env, **table)

    def calls(self) -> list[dict[str, Any]]:
        """Every recorded run: argv, env and cwd."""
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]


def init(session: str = "sess-1", model: str = "claude-test") -> dict[str, Any]:
    """A `system/init` event."""
    return {"type": "system", "subtype": "init", "session_id": session, "model": model}


def tool(name: str, tool_input: dict[str, Any], session: str = "sess-1") -> dict[str, Any]:
    """An `assistant` event carrying one tool call."""
    block = {"type": "tool_use", "id": "toolu_1", "name": name, "input": tool_input}
    return {"type": "assistant", "session_id": session, "message": {"content": [block]}}


def result(
    text: str = "done",
    *,
    session: str = "sess-1",
    turns: int = 3,
    cost: float = 0.02,
    is_error: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A final `result` event."""
    return {
        "type": "result",
        "subtype": "success",
        "is_error": is_error,
        "result": text,
        "session_id": session,
        "num_turns": turns,
        "total_cost_usd": cost,
        "usage": {"input_tokens": 100, "output_tokens": 20},
        **extra,
    }


def agent_options(directory: Path, *, sandbox: Sandbox | None = None, **agent: Any) -> CliOptions:
    """Options of a Claude Code run from an `[agent]` table validated as the TOML's would be.

    Its workspaces, and so the agents' homes and MCP files, are under `directory`.
    """
    table = {"kind": "claude-code", "workspace_dir": str(directory / "workspaces"), **agent}
    return CliOptions(AgentConfig.model_validate(table), sandbox=sandbox or Sandbox())


def with_timeout(options: CliOptions, seconds: int) -> CliOptions:
    """The same options with a timeout below what `[agent]` accepts (5 s), to keep a test short."""
    return replace(options, agent=options.agent.model_copy(update={"timeout_seconds": seconds}))
