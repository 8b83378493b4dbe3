"""The HTTP surface: Slack events, health, readiness, metrics (a WSGI app)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from slack_bolt import App, BoltRequest
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse

from bot import metrics
from bot.frames import content_problem, frame_problem
from bot.services import Services
from bot.signing import signature_refusal

log = logging.getLogger(__name__)

# What a signed body Bolt cannot read is answered with.
UNREADABLE = "Agentbot cannot read this request."
# Slack's payloads are a few kilobytes (a modal's state, a message's blocks); anything
# past this is not Slack, and is refused before it is read, let alone verified.
MAX_SLACK_BODY = 1024 * 1024
TOO_LARGE = "Agentbot takes Slack requests of up to 1 MiB."

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
        self.app = app
        self.signing_secret = services.settings.slack_signing_secret.get_secret_value()
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

    def slack(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Hand a verified Slack request to Bolt; anything else is refused first.

        The signature is checked on the raw bytes before anything is parsed: a request
        that is not signed by Slack within the last five minutes is answered 401 and
        goes no further, so no table, queue or outbound call ever sees it. A signed
        body Bolt cannot read (a payload that is not JSON, or `user` that is not an
        object) would escape Bolt as a 500; it is answered 400, as Slack never sends
        one and there is nothing to retry.
        """
        length = self._length(environ)
        if length > MAX_SLACK_BODY:
            return _reply(start_response, "413 Content Too Large", TOO_LARGE, "text/plain")
        request = WsgiHttpRequest(environ)
        raw = self._body(environ, length)
        headers = request.get_headers()
        if self.signing_secret:
            refusal = signature_refusal(
                self.signing_secret,
                raw,
                timestamp=headers.get("x-slack-request-timestamp"),
                signature=headers.get("x-slack-signature"),
            )
            if refusal is not None:
                log.warning("refused an unverified Slack request: %s", refusal)
                return _json(start_response, "401 Unauthorized", {"error": "invalid request"})
        problem: str | None
        try:
            body = raw.decode("utf-8")
            bolt_request = BoltRequest(body=body, query=request.query_string, headers=headers)
            problem = frame_problem(bolt_request.body) or content_problem(
                bolt_request.content_type, bolt_request.body
            )
        # Parsing a body does no I/O: whatever it raises means the body is unreadable.
        except Exception as exc:
            problem = f"unreadable body ({type(exc).__name__})"
        if problem is not None:
            log.warning("refused a signed Slack request: %s", problem)
            return _reply(start_response, "400 Bad Request", UNREADABLE, "text/plain")
        response = self.app.dispatch(bolt_request)
        answer = WsgiHttpResponse(
            status=response.status, headers=response.headers, body=response.body
        )
        start_response(answer.status, answer.get_headers())
        return answer.get_body()

    @staticmethod
    def _length(environ: Environ) -> int:
        """The body's declared length (0 when none, or not a number)."""
        try:
            return int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0

    @staticmethod
    def _body(environ: Environ, length: int) -> bytes:
        stream = environ.get("wsgi.input")
        if stream is None or length <= 0:
            return b""
        return bytes(stream.read(length))

    def _may_scrape(self, environ: Environ) -> bool:
        """Whether /metrics may answer: always without METRICS_TOKEN, else to its bearer."""
        token = self.services.settings.metrics_token.get_secret_value()
        if not token:
            return True
        sent = str(environ.get("HTTP_AUTHORIZATION") or "")
        scheme, _, credentials = sent.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("utf-8", "replace"), token.encode()
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # Each request starts from a clean logging context: what one request bound (its
        # task and job) must not name the next one served on the same thread.
        structlog.contextvars.clear_contextvars()
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
            if not self._may_scrape(environ):
                start_response(
                    "401 Unauthorized",
                    [
                        ("Content-Type", "application/json"),
                        ("WWW-Authenticate", 'Bearer realm="metrics"'),
                    ],
                )
                return [json.dumps({"error": "a bearer token is required"}).encode()]
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
