"""A small stdio MCP server for the tests, built on the official Python SDK (`mcp`).

It stands in for Sentry's server with one tool, `get_issue_events`, whose answer is a
canned stack trace. Each call also writes what the server could see to the JSON file
named by its first argument: its own environment, and the environment and command line
of the process that started it (the agent CLI), so a test can tell where a secret went.

Run as `python tests/fakes/mcp_server.py RECORD.json`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp.server import MCPServer

TOOL = "get_issue_events"
STACK_TRACE = (
    "ZeroDivisionError: division by zero\n"
    '  File "calc/discount.py", line 3, in apply_discount\n'
    "    return round(price / (100 - percent), 2)"
)


def _proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _environ(raw: bytes) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if item)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _record(path: Path, issue_id: str) -> None:
    parent = os.getppid()
    calls: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    calls.append(
        {
            "issue_id": issue_id,
            "env": dict(os.environ),
            "parent_env": _environ(_proc(parent, "environ")),
            "parent_argv": [a for a in _proc(parent, "cmdline").decode().split("\0") if a],
        }
    )
    path.write_text(json.dumps(calls))


def main() -> None:
    record = Path(sys.argv[1])
    server = MCPServer("sentry")

    @server.tool(name=TOOL, description="The latest events of a Sentry issue, with stack traces.")
    def get_issue_events(issue_id: str) -> str:
        _record(record, issue_id)
        return f"Issue {issue_id}, latest event:\n{STACK_TRACE}"

    server.run("stdio")


if __name__ == "__main__":
    main()
