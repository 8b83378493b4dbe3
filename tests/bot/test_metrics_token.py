"""METRICS_TOKEN puts /metrics behind a bearer token, as Prometheus scrapes support."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.app import build_app
from bot.services import Services, build_services
from bot.settings import Settings
from bot.web import WebApp
from jobs.config import AgentbotConfig

TOKEN = "scrape-token-for-tests"


def scrape(web: WebApp, authorization: str | None) -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    answer: list[tuple[str, dict[str, str]]] = []
    chunks = web(environ, lambda status, headers: answer.append((status, dict(headers))))
    return answer[0][0], answer[0][1], b"".join(chunks)


@pytest.fixture
def guarded(settings: Settings, config: AgentbotConfig, services: Services) -> Iterator[WebApp]:
    built = build_services(
        settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}).with_config(config)
    )
    yield WebApp(built, build_app(built))
    built.db.dispose()
    built.redis.close()


@pytest.mark.parametrize("sent", [None, "", "Bearer wrong", f"Basic {TOKEN}", "Bearer é"])
def test_metrics_without_the_token_are_refused(guarded: WebApp, sent: str | None) -> None:
    """No token, a wrong one, or another scheme: 401 with a Bearer challenge, no figures."""
    status, headers, body = scrape(guarded, sent)
    assert status == "401 Unauthorized"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert b"agentbot_" not in body


def test_metrics_with_the_token_are_served(guarded: WebApp) -> None:
    """Prometheus' `Authorization: Bearer <token>` gets the figures."""
    status, _, body = scrape(guarded, f"Bearer {TOKEN}")
    assert status == "200 OK"
    assert b'agentbot_tasks{state="queued"} 0.0' in body


def test_metrics_stay_open_without_a_token_configured(services: Services) -> None:
    """Without METRICS_TOKEN nothing changes for existing scrapes."""
    status, _, _ = scrape(WebApp(services, build_app(services)), None)
    assert status == "200 OK"
