"""The ECS container agent's task scale-in protection endpoint, on loopback.

Answers `PUT` and `GET` on `<uri>/task-protection/v1/state` the way the agent does:
`{"protection": {...}}` on success, `{"failure": {...}}` (HTTP 200) when ECS refused,
`{"error": {...}}` with a 4xx for a malformed request. It records every request and keeps
the task's protection state so tests can ask what ECS would see.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/agentbot/0123456789abcdef0123456789abcdef"
STATE_PATH = "/task-protection/v1/state"


@dataclass
class FakeEcsAgent:
    """State and server of the fake; `uri` is what ECS_AGENT_URI would hold."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    protected: bool = False
    # When set, PUTs are answered with this ECS failure reason (e.g. TASK_NOT_VALID).
    refuse_with: str | None = None

    def __post_init__(self) -> None:
        agent = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _state(self) -> dict[str, Any]:
                return {"protection": {"ProtectionEnabled": agent.protected, "TaskArn": TASK_ARN}}

            def do_GET(self) -> None:
                if self.path != "/api/task" + STATE_PATH:
                    self._answer(404, {"error": {"Code": "NotFound", "Message": self.path}})
                    return
                self._answer(200, self._state())

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/api/task" + STATE_PATH:
                    self._answer(404, {"error": {"Code": "NotFound", "Message": self.path}})
                    return
                try:
                    body = json.loads(raw)
                    enabled = body["ProtectionEnabled"]
                except (ValueError, KeyError, TypeError):
                    self._answer(
                        400,
                        {
                            "error": {
                                "Arn": TASK_ARN,
                                "Code": "InvalidRequest",
                                "Message": "Invalid request: does not contain "
                                "'ProtectionEnabled' field",
                            }
                        },
                    )
                    return
                with lock:
                    agent.requests.append(
                        {"content_type": self.headers.get("Content-Type"), "body": body}
                    )
                    if agent.refuse_with:
                        self._answer(
                            200,
                            {
                                "failure": {
                                    "Arn": TASK_ARN,
                                    "Reason": agent.refuse_with,
                                    "Detail": None,
                                }
                            },
                        )
                        return
                    agent.protected = bool(enabled)
                state = self._state()
                if enabled:
                    minutes = int(body.get("ExpiresInMinutes", 120))
                    expires = datetime.now(UTC) + timedelta(minutes=minutes)
                    state["protection"]["ExpirationDate"] = expires.isoformat()
                self._answer(200, state)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        """The agent URI a task's containers are given."""
        return f"http://127.0.0.1:{self._server.server_port}/api/task"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the PUTs, in order."""
        return [r["body"] for r in self.requests]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
