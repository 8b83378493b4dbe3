"""The Home's team and ops figures: throughput over 14 days, the median time to a result,
the week's agent cost, and, with AWS configured, the last scan and the month's cost."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from agents.aws.config import AwsConfig
from agents.aws.cost_config import CostConfig
from bot.services import Services
from jobs.aws.cost_history import DailyCost
from jobs.aws.snapshots import AwsScan
from jobs.config import AgentbotConfig
from jobs.home import week_start
from jobs.models import Task
from jobs.states import TaskState
from jobs.tasks import create_task
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, CHANNEL, REQUESTER
from tests.slackclient import SlackUser, view_text

NOW = datetime.now(UTC)


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The shared configuration with AWS and a monthly budget just above the month so far."""
    yesterday = (NOW - timedelta(days=1)).date()
    return config.model_copy(
        update={
            "aws": AwsConfig(regions=["eu-west-1"]),
            "cost": CostConfig(monthly_budget_usd=10.0 * yesterday.day + 5),
        }
    )


@pytest.fixture
def stored(services: Services) -> Iterator[None]:
    """Two succeeded tasks, one scan and this month's daily costs, removed afterwards."""
    finished = [(NOW, 600, 1.25), (NOW - timedelta(days=2), 1800, 0.75)]
    yesterday = (NOW - timedelta(days=1)).date()
    with services.db.session() as session:
        for ended, seconds, cost in finished:
            task = create_task(
                session, description="done", repo="acme/calc", requester=REQUESTER, channel=CHANNEL
            )
            session.execute(
                update(Task)
                .where(Task.id == task.id)
                .values(
                    state=TaskState.SUCCEEDED.value,
                    created_at=ended - timedelta(seconds=seconds),
                    finished_at=ended,
                    agent_cost_usd=cost,
                )
            )
        session.add(
            AwsScan(
                scope_key="home-test",
                scope={"accounts": ["prod", "staging"], "regions": ["eu-west-1"], "services": []},
                started_at=NOW - timedelta(minutes=5),
                finished_at=NOW - timedelta(minutes=4),
                units_total=4,
                counts={"healthy": 5, "unhealthy": 2},
                errors=[],
            )
        )
        for day in range(1, yesterday.day + 1):
            session.add(
                DailyCost(
                    day=yesterday.replace(day=day),
                    account_id="111111111111",
                    service="Amazon EC2",
                    metric="UnblendedCost",
                    basis="no-credits-refunds",
                    amount=10.0,
                    estimated=False,
                    fetched_at=NOW,
                )
            )
    yield
    with services.db.session() as session:
        session.execute(delete(AwsScan).where(AwsScan.scope_key == "home-test"))
        session.execute(delete(DailyCost).where(DailyCost.account_id == "111111111111"))


def test_team_and_ops_figures(user: SlackUser, slack: FakeSlack, stored: None) -> None:
    """Successes per day, the median time to a result, the week's cost, the last scan and
    the month against its budget all show on Home."""
    user.open_home(APPROVER)
    user.work("default")
    home = view_text(user.home(APPROVER))

    assert "2 in 14 days, at most 1 a day" in home
    line = next(part for part in home.split("`") if len(part) == 14 and set(part) <= set("▁█"))
    assert line.endswith("█▁█")
    assert "20m 00s (2 tasks, 14 days)" in home  # the median of 10 and 30 minutes
    week = week_start(NOW)
    cost = sum(
        c
        for e, s, c in [(NOW, 600, 1.25), (NOW - timedelta(days=2), 1800, 0.75)]
        if e - timedelta(seconds=s) >= week
    )
    assert f"${cost:.2f}" in home
    assert "succeeded 2" in home
    assert "5 healthy, 2 unhealthy · 2 account(s), 1 region(s)" in home
    yesterday = (NOW - timedelta(days=1)).date()
    month = 10.0 * yesterday.day
    days = calendar.monthrange(yesterday.year, yesterday.month)[1]
    state = "on track" if yesterday.day == days else "at risk"
    assert f"Yesterday ({yesterday:%d %b}) $10.00 · month to date ${month:,.2f}" in home
    assert f"budget ${month + 5:,.0f}: *{state}*" in home
