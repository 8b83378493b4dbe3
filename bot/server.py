"""`agentbot serve`: gunicorn processes, each an asyncio server feeding a thread pool.

gunicorn keeps what it is good at: forking N workers, restarting one that dies,
graceful shutdown on SIGTERM, its error log. Inside each worker, uvicorn (through the
`uvicorn-worker` class) reads connections on an event loop, and `WholeBody` waits
there for a request's entire body against one deadline for the whole body, not per
chunk. Only a complete request reaches the WSGI app, which a2wsgi runs in a pool of
`threads` threads. A client that trickles its body therefore holds a socket, never a
thread: `/healthz` keeps answering while slow clients wait, and one whose body has not
arrived within REQUEST_BODY_TIMEOUT seconds is answered 408 and disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from bot.logging import gunicorn_logger_class
from bot.settings import Settings

log = logging.getLogger("agentbot.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The largest body any route accepts (Slack events and webhooks take up to 1 MiB); one
# declared larger is left unread for the app to refuse by its length.
MAX_BODY = 1024 * 1024
GRACEFUL_TIMEOUT = 20


def too_slow(deadline: float) -> str:
    return f"Agentbot waits up to {deadline:g} s for a request's body; it did not arrive."


TOO_LARGE = "Agentbot takes requests of up to 1 MiB."


class WholeBody:
    """ASGI middleware: the app sees a request only once its whole body is in.

    The body must arrive within `deadline` seconds of the headers, counted over the
    whole body; otherwise the client gets a 408 and the connection is closed. A body
    declared larger than `max_body` is not read at all: the app answers by the
    declared length and the connection closes after the answer. A chunked body that
    grows past `max_body` is answered 413.
    """

    def __init__(self, app: ASGIApp, *, deadline: float, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.deadline = deadline
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body:
            await self.app(scope, _replay(b"", receive), _closing(send))
            return
        try:
            async with asyncio.timeout(self.deadline):
                body = await _read(receive, self.max_body)
        except TimeoutError:
            log.warning(
                "dropped %s %s: its body did not arrive within %g s",
                scope.get("method"),
                scope.get("path"),
                self.deadline,
            )
            await _refuse(send, 408, too_slow(self.deadline))
            return
        if body is None:
            return  # the client went away; there is no one to answer
        if len(body) > self.max_body:
            await _refuse(send, 413, TOO_LARGE)
            return
        await self.app(scope, _replay(body, receive), send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or as much as passes `limit` (None if the client disconnects)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False) or len(body) > limit:
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` whole, then what the connection says next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _closing(send: Send) -> Send:
    """A `send` whose response says the connection closes after it."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return closing


async def _refuse(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def make_wsgi_app(settings: Settings) -> Any:
    """Build the WSGI app (in each gunicorn worker, after the fork)."""
    from bot.app import build_app
    from bot.services import build_services
    from bot.web import WebApp
    from bot.webhooks import register as register_webhooks

    services = build_services(settings)
    web = WebApp(services, build_app(services))
    register_webhooks(web, services)
    return web


def make_asgi_app(settings: Settings, threads: int) -> ASGIApp:
    """The WSGI app behind `WholeBody`, run in a pool of `threads` threads."""
    from a2wsgi import WSGIMiddleware

    # a2wsgi types its messages as TypedDicts; WholeBody passes them through as mappings.
    inner = cast("ASGIApp", WSGIMiddleware(make_wsgi_app(settings), workers=threads))
    return WholeBody(inner, deadline=settings.request_body_timeout)


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn's gunicorn worker, its lines going where gunicorn's own go.

    The stock class copies gunicorn's log handlers onto uvicorn's loggers and stops
    them propagating; gunicorn's handlers were dropped for the JSON root handler (see
    `gunicorn_logger_class`), so uvicorn's lines propagate to it too.
    """

    CONFIG_KWARGS = {  # noqa: RUF012 - the stock class's own extension point
        **UvicornWorker.CONFIG_KWARGS,
        "timeout_graceful_shutdown": GRACEFUL_TIMEOUT,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            logger.handlers = []
            logger.propagate = True


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return make_asgi_app(self.settings, self.cfg.threads)


def serve(settings: Settings, *, port: int, workers: int = 2, threads: int = 8) -> None:
    """Run gunicorn in the foreground until it is told to stop."""
    _Gunicorn(
        settings,
        {
            "bind": f"0.0.0.0:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": Worker,
            "timeout": 30,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "keepalive": 5,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": settings.log_level.lower(),
            # Error and access lines as JSON, through the same redaction as the rest.
            "logger_class": gunicorn_logger_class(),
        },
    ).run()
