"""The real web app on a loopback HTTP server, with webhook secrets, GitHub and Slack fakes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.app import build_app
from bot.services import Services
from bot.settings import Settings
from bot.web import WebApp
from bot.webhooks import register
from jobs.config import (
    AgentbotConfig,
    GitHubWebhookConfig,
    JiraWebhookConfig,
    SentryWebhookConfig,
    WebhooksConfig,
)
from jobs.models import SlackDelivery, Task
from tests.conftest import APPROVER, CHANNEL, REQUESTER, STRANGER
from tests.fakes.github_server import FakeGitHub

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"
GITHUB_SECRET = "gh-hook-secret-for-tests"
SENTRY_SECRET = "sentry-client-secret-for-tests"
JIRA_SECRET = "jira-hook-secret-for-tests"
GITHUB_USERS = {"octo-reporter": REQUESTER, "octo-lead": APPROVER, "octo-stranger": STRANGER}


def load(name: str) -> dict[str, Any]:
    """A recorded payload from tests/fixtures/webhooks, stamped as if written just now.

    Each sender dates its body (GitHub's comment and issue, Sentry's event, Jira's
    delivery), and a body older than the delivery window is refused as a replay.
    """
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    now = datetime.now(UTC)
    iso = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(data.get("comment"), dict):
        data["comment"]["created_at"] = data["comment"]["updated_at"] = iso
    if isinstance(data.get("issue"), dict) and "updated_at" in data["issue"]:
        data["issue"]["updated_at"] = iso
    event = (data.get("data") or {}).get("event") if isinstance(data.get("data"), dict) else None
    if isinstance(event, dict):
        event["timestamp"] = now.timestamp()
        event["datetime"] = now.isoformat().replace("+00:00", "Z")
    if "webhookEvent" in data:
        data["timestamp"] = int(now.timestamp() * 1000)
    return data


def sign(secret: str, body: bytes, prefix: str = "sha256=") -> str:
    """The HMAC-SHA256 signature a sender computes over the exact bytes it posts."""
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any] | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


@dataclass
class Reply:
    """What the web app answered."""

    status: int
    body: dict[str, Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Hooks:
    """Posts webhook deliveries to the running app, signed as each service signs them."""

    url: str

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                parsed = {"raw": raw.decode("utf-8", "replace")}
            return Reply(exc.code, parsed)

    def github(
        self,
        payload: dict[str, Any] | bytes,
        event: str,
        *,
        delivery: str | None = None,
        secret: str = GITHUB_SECRET,
        signature: str | None = None,
    ) -> Reply:
        body = encode(payload)
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "109948940",
            "User-Agent": "GitHub-Hookshot/044aadd",
            "X-Hub-Signature-256": sign(secret, body) if signature is None else signature,
        }
        return self.post("/webhooks/github", body, {k: v for k, v in headers.items() if v})

    def sentry(
        self,
        payload: dict[str, Any] | bytes,
        resource: str = "event_alert",
        *,
        request_id: str | None = None,
        secret: str = SENTRY_SECRET,
        signature: str | None = None,
    ) -> Reply:
        body = encode(payload)
        headers = {
            "Request-ID": request_id or str(uuid.uuid4()),
            "Sentry-Hook-Resource": resource,
            "Sentry-Hook-Timestamp": "1566248778",
            "Sentry-Hook-Signature": sign(secret, body, prefix="")
            if signature is None
            else signature,
        }
        return self.post("/webhooks/sentry", body, {k: v for k, v in headers.items() if v})

    def jira(
        self,
        payload: dict[str, Any] | bytes,
        *,
        identifier: str | None = None,
        secret: str = JIRA_SECRET,
        signature: str | None = None,
    ) -> Reply:
        body = encode(payload)
        headers = {
            "X-Atlassian-Webhook-Identifier": identifier or str(uuid.uuid4()),
            "X-Atlassian-Webhook-Flow": "Primary",
            "X-Hub-Signature": sign(secret, body) if signature is None else signature,
        }
        return self.post("/webhooks/jira", body, {k: v for k, v in headers.items() if v})


@pytest.fixture
def settings(settings: Settings, github: FakeGitHub) -> Settings:
    """The test settings plus webhook secrets and a GitHub token for the fake."""
    return settings.model_copy(
        update={
            "github_webhook_secret": SecretStr(GITHUB_SECRET),
            "sentry_client_secret": SecretStr(SENTRY_SECRET),
            "jira_webhook_secret": SecretStr(JIRA_SECRET),
            "github_token": SecretStr(github.token),
            "github_api_url": github.url,
        }
    )


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The test configuration with the repo's channel and the webhooks section."""
    repo = config.repos[0].model_copy(update={"channel": CHANNEL})
    webhooks = WebhooksConfig(
        github=GitHubWebhookConfig(repos=(repo.name,)),
        sentry=SentryWebhookConfig(projects={"front-end": repo.name}),
        jira=JiraWebhookConfig(projects={"PAY": repo.name}),
        github_users=GITHUB_USERS,
    )
    return AgentbotConfig.model_validate(
        {**config.model_dump(), "repos": [repo.model_dump()], "webhooks": webhooks.model_dump()}
    )


def serve(services: Services) -> Iterator[Hooks]:
    """The real WSGI app, webhooks registered, on a threaded loopback server."""
    web = WebApp(services, build_app(services))
    register(web, services)
    server = make_server(
        "127.0.0.1", 0, web, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Hooks(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hooks(services: Services) -> Iterator[Hooks]:
    """Deliveries to the running app."""
    yield from serve(services)


def tasks(services: Services) -> list[Task]:
    """Every task row, oldest first."""
    with services.db.session() as session:
        return list(session.execute(select(Task).order_by(Task.id)).scalars())


def deliveries(services: Services) -> int:
    """How many deliveries are recorded as seen."""
    with services.db.session() as session:
        return int(session.execute(select(func.count()).select_from(SlackDelivery)).scalar_one())
