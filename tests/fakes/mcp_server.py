"""A small stdio MCP server for the tests, built on the official Python SDK (`mcp`).

It stands in for Sentry's server with one tool, `get_issue_events`, whose answer is a
canned stack trace. Each call also writes what the server could see to the JSON file
named by its first argument: its own environment, and the environment and command line
of the process that started it (the agent CLI), so a test can tell where a secret went,
and whether the host path given as its second argument was visible to it (a sandboxed
server sees none of the host's files beyond those bound in).

Run as `python tests/fakes/mcp_server.py RECORD.json [HOST_PATH]` for stdio.
`RemoteMcpServer` serves the same tool over streamable HTTP on loopback, answering only
requests that carry the expected `Authorization` header.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from mcp.server import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

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


def _record(path: Path, issue_id: str, probe: Path | None) -> None:
    parent = os.getppid()
    calls: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    calls.append(
        {
            "issue_id": issue_id,
            "probe_visible": probe.exists() if probe is not None else None,
            "env": dict(os.environ),
            "parent_env": _environ(_proc(parent, "environ")),
            "parent_argv": [a for a in _proc(parent, "cmdline").decode().split("\0") if a],
        }
    )
    path.write_text(json.dumps(calls))


def build(record: Path, probe: Path | None = None) -> MCPServer:
    """The server with its one tool, recording each call to `record`."""
    server = MCPServer("sentry")

    @server.tool(name=TOOL, description="The latest events of a Sentry issue, with stack traces.")
    def get_issue_events(issue_id: str) -> str:
        _record(record, issue_id, probe)
        return f"Issue {issue_id}, latest event:\n{STACK_TRACE}"

    return server


class _RequireAuthorization:
    """Refuses, with 401, every HTTP request whose Authorization header is not `expected`."""

    def __init__(self, app: ASGIApp, expected: str, seen: list[str]) -> None:
        self.app, self.expected, self.seen = app, expected, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            given = headers.get(b"authorization", b"").decode()
            self.seen.append(given)
            if given != self.expected:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


class RemoteMcpServer:
    """The tool over streamable HTTP at `url`, on loopback, in a thread of this process."""

    def __init__(self, record: Path, authorization: str) -> None:
        self.seen_authorization: list[str] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        app = _RequireAuthorization(
            build(record).streamable_http_app(), authorization, self.seen_authorization
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        """The server's MCP endpoint."""
        return f"http://127.0.0.1:{self.port}/mcp"

    def __enter__(self) -> RemoteMcpServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def main() -> None:
    probe = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    build(Path(sys.argv[1]), probe).run("stdio")


if __name__ == "__main__":
    main()
