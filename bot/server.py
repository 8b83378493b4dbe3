"""`agentbot serve`: the WSGI app under gunicorn's threaded workers."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from bot.logging import gunicorn_logger_class
from bot.settings import Settings


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


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return make_wsgi_app(self.settings)


def serve(settings: Settings, *, port: int, workers: int = 2, threads: int = 8) -> None:
    """Run gunicorn in the foreground until it is told to stop."""
    _Gunicorn(
        settings,
        {
            "bind": f"0.0.0.0:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 5,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": settings.log_level.lower(),
            # Error and access lines as JSON, through the same redaction as the rest.
            "logger_class": gunicorn_logger_class(),
        },
    ).run()
