"""Bad deliveries are refused with the right status and write nothing."""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot import server
from bot.services import Services
from bot.settings import Settings
from jobs import lifecycle
from jobs.config import AgentbotConfig
from jobs.exceptions import Unavailable
from tests.webhooks.conftest import (
    GITHUB_SECRET,
    Hooks,
    Reply,
    deliveries,
    load,
    serve,
    sign,
    tasks,
)

Send = Callable[..., Reply]


def senders(hooks: Hooks) -> dict[str, tuple[Send, dict[str, Any]]]:
    """Each endpoint with a delivery that would create a task."""
    return {
        "github": (
            lambda payload, **kw: hooks.github(payload, "issues", **kw),
            load("github_issues_labeled.json"),
        ),
        "sentry": (hooks.sentry, load("sentry_event_alert.json")),
        "jira": (hooks.jira, load("jira_issue_created.json")),
    }


SOURCES = ("github", "sentry", "jira")


def assert_nothing_written(services: Services) -> None:
    assert tasks(services) == []
    assert deliveries(services) == 0
    assert services.queues.lengths() == {"plan": 0, "execute": 0, "default": 0}


@pytest.mark.parametrize("source", SOURCES)
def test_wrong_or_missing_signature_is_401(hooks: Hooks, services: Services, source: str) -> None:
    """A signature made with another secret, a tampered one, or none at all: 401."""
    send, payload = senders(hooks)[source]
    wrong = send(payload, secret="not-the-secret")
    tampered = send(payload, signature="sha256=" + "0" * 64)
    missing = send(payload, signature="")
    for reply in (wrong, tampered, missing):
        assert reply.status == 401, reply.body
    assert "missing" in missing.body["error"]
    assert "does not match" in wrong.body["error"]
    assert_nothing_written(services)


MALFORMED = {
    "empty": b"",
    "text": b"not json",
    "array": b"[1, 2, 3]",
    "string": b'"a string"',
    "truncated": b'{"action": "labeled", "issue": {',
    "binary": b"\xff\xfe\x00",
    "deep": b"[" * 100_000,
    "huge number": b'{"n": ' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("source", SOURCES)
def test_malformed_body_is_400(hooks: Hooks, services: Services, source: str) -> None:
    """Correctly signed bodies that are not a JSON object: 400 each, nothing written."""
    send, _ = senders(hooks)[source]
    for name, body in MALFORMED.items():
        reply = send(body)
        assert reply.status == 400, (name, reply.body)
        assert reply.body["error"]
    assert_nothing_written(services)


@pytest.mark.parametrize("source", SOURCES)
def test_object_missing_what_the_service_documents_is_400(
    hooks: Hooks, services: Services, source: str
) -> None:
    """A JSON object without the issue or event the event type promises: 400."""
    send, payload = senders(hooks)[source]
    if source == "github":
        broken = {**payload, "issue": "seven"}
    elif source == "sentry":
        broken = {**payload, "data": {"event": None}}
    else:
        broken = {**payload, "issue": {"key": 17, "fields": []}}
    reply = send(broken)
    assert reply.status == 400, reply.body
    assert_nothing_written(services)


@pytest.mark.parametrize("source", SOURCES)
def test_body_over_a_megabyte_is_413(hooks: Hooks, services: Services, source: str) -> None:
    """A body over 1 MB is refused before it is read or verified."""
    send, payload = senders(hooks)[source]
    huge = {**payload, "padding": "x" * (1024 * 1024)}
    reply = send(huge)
    assert reply.status == 413
    assert_nothing_written(services)


def test_unknown_endpoint_and_wrong_method(hooks: Hooks, services: Services) -> None:
    """An unknown sender is 404; anything but POST is 405."""
    assert hooks.post("/webhooks/gitlab", b"{}", {}).status == 404
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(hooks.url + "/webhooks/github", timeout=10)
    assert caught.value.code == 405
    assert_nothing_written(services)


@pytest.fixture
def unconfigured(services: Services) -> Iterator[Hooks]:
    """The app with no webhook secret anywhere."""
    blank = services.settings.model_copy(
        update={
            "github_webhook_secret": SecretStr(""),
            "sentry_client_secret": SecretStr("changeme"),
            "jira_webhook_secret": SecretStr(""),
        }
    )
    yield from serve(dataclasses.replace(services, settings=blank))


@pytest.mark.parametrize("source", SOURCES)
def test_without_a_secret_every_delivery_is_refused(
    unconfigured: Hooks, services: Services, source: str
) -> None:
    """No secret (or a placeholder) configured: deliveries cannot be verified, so 401."""
    send, payload = senders(unconfigured)[source]
    reply = send(payload)
    assert reply.status == 401 and "no secret is configured" in reply.body["error"]
    assert_nothing_written(services)


@pytest.fixture
def no_channel(services: Services, config: AgentbotConfig) -> Iterator[Hooks]:
    """The app with neither a repo channel nor a notification channel."""
    repo = config.repos[0].model_copy(update={"channel": None})
    bare = config.model_copy(update={"repos": (repo,)})
    yield from serve(dataclasses.replace(services, config=bare))


@pytest.mark.parametrize("source", SOURCES)
def test_no_channel_configured_is_202_with_the_reason(
    no_channel: Hooks, services: Services, source: str
) -> None:
    """Without a channel for the card the task is not created, and the sender is told why."""
    send, payload = senders(no_channel)[source]
    reply = send(payload)
    assert reply.status == 202
    assert "no channel configured for acme/calc" in reply.body["reason"]
    assert_nothing_written(services)


def test_a_failed_first_delivery_can_be_delivered_again(
    hooks: Hooks, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If creation fails after the delivery was claimed, the claim rolls back with it."""
    real = lifecycle.create_task
    calls = []

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the disk filled up")
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "create_task", fail_once)
    payload = load("github_issues_labeled.json")
    first = hooks.github(payload, "issues", delivery="d-42")
    assert first.status == 500
    assert first.body == {"error": "internal error; it has been logged"}
    assert_nothing_written(services)

    again = hooks.github(payload, "issues", delivery="d-42")
    assert again.status == 201, again.body
    assert len(tasks(services)) == 1


def test_database_down_is_503_and_nothing_is_claimed(
    hooks: Hooks, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database outage answers 503 so the sender retries; the retry then succeeds."""

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable()

    with monkeypatch.context() as patch:
        patch.setattr(lifecycle, "create_task", unavailable)
        reply = hooks.sentry(load("sentry_event_alert.json"), request_id="r-9")
    assert reply.status == 503
    assert_nothing_written(services)
    assert hooks.sentry(load("sentry_event_alert.json"), request_id="r-9").status == 201


def test_serve_registers_the_three_endpoints(settings: Settings) -> None:
    """`agentbot serve` builds the app with /webhooks/github, sentry and jira."""
    web = server.make_wsgi_app(settings)
    assert set(web.webhooks) == {"github", "sentry", "jira"}


def test_signature_is_over_the_exact_bytes(hooks: Hooks, services: Services) -> None:
    """Re-serializing the JSON (other spacing) breaks the signature: the raw body is signed."""
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    signature = sign(GITHUB_SECRET, body)
    assert hooks.github(body, "ping", signature=signature).status == 200
    respaced = b'{"zen":"Design for failure.","hook_id":1}'
    assert hooks.github(respaced, "ping", signature=signature).status == 401
