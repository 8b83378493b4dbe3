"""The HTTP surface: Slack events, health, readiness, metrics (a WSGI app)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot import metrics
from bot.services import Services

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def _reply(
    start_response: StartResponse, status: str, body: str | bytes, content_type: str
) -> Iterable[bytes]:
    data = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


def _json(start_response: StartResponse, status: str, payload: dict[str, Any]) -> Iterable[bytes]:
    return _reply(start_response, status, json.dumps(payload), "application/json")


class WebApp:
    """Routes requests to Bolt, probes, metrics and webhooks."""

    def __init__(self, services: Services, app: App) -> None:
        self.services = services
        self.slack = SlackRequestHandler(app)
        self.webhooks: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {}

    def readiness(self) -> dict[str, str]:
        """Which backing services answer."""
        checks: dict[str, str] = {}
        try:
            self.services.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            self.services.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        return checks

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/slack/events":
            if method != "POST":
                return _reply(start_response, "405 Method Not Allowed", "POST only", "text/plain")
            return self.slack(environ, start_response)
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            checks = self.readiness()
            ready = all(value == "ok" for value in checks.values())
            status = "200 OK" if ready else "503 Service Unavailable"
            return _json(start_response, status, {"ready": ready, **checks})
        if path == "/metrics":
            body = metrics.render(self.services)
            return _reply(start_response, "200 OK", body, metrics.CONTENT_TYPE)
        if path.startswith("/webhooks/"):
            handler = self.webhooks.get(path.removeprefix("/webhooks/"))
            if handler is None:
                return _json(start_response, "404 Not Found", {"error": "unknown webhook"})
            if method != "POST":
                return _reply(start_response, "405 Method Not Allowed", "POST only", "text/plain")
            return handler(environ, start_response)
        return _json(start_response, "404 Not Found", {"error": "not found"})
