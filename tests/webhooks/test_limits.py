"""A webhook source starts at most `limits.webhook_tasks_per_hour` tasks an hour."""

from __future__ import annotations

import pytest

from bot import metrics
from bot.services import Services
from jobs.config import AgentbotConfig, LimitsConfig
from tests.webhooks.conftest import Hooks, load, tasks


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The webhook configuration, with two tasks an hour per source."""
    return config.model_copy(update={"limits": LimitsConfig(webhook_tasks_per_hour=2)})


def alert(issue_id: str) -> dict[str, object]:
    payload = load("sentry_event_alert.json")
    payload["data"]["event"]["issue_id"] = issue_id  # type: ignore[index]
    return payload


def test_a_storm_of_distinct_alerts_is_answered_429_past_the_hourly_cap(
    hooks: Hooks, services: Services
) -> None:
    """Three Sentry issues in an hour with a cap of two: the third is 429, naming the
    limit, and no task is made; other sources keep their own allowance."""
    assert [hooks.sentry(alert(str(n))).status for n in (1, 2)] == [201, 201]

    refused = hooks.sentry(alert("3"))

    assert refused.status == 429
    assert refused.body["limit"] == "webhook_tasks_per_hour"
    assert "limits.webhook_tasks_per_hour" in refused.body["error"]
    assert len(tasks(services)) == 2
    assert hooks.jira(load("jira_issue_created.json")).status == 201
    scraped = metrics.render(services).decode()
    assert 'agentbot_limit_refusals_total{limit="webhook_tasks_per_hour"} 1.0' in scraped
    # The refused alert was not recorded: delivered again later, it is processed.
    assert hooks.sentry(alert("3")).status == 429
