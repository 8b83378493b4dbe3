"""Fixtures for the sandbox page's tests: the bot reachable over HTTP, as Slack reaches it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.web import WebApp
from sandbox.inprocess import WSGIThread
from tests.slackclient import SlackUser


@pytest.fixture
def events_url(user: SlackUser) -> Iterator[str]:
    """The bot's WSGI app (the real Bolt app behind it) on a loopback port."""
    server = WSGIThread(WebApp(user.services, user.app)).start()
    yield f"{server.url}/slack/events"
    server.stop()
