"""`[limits]`: one requester, everyone together, and each webhook source are capped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from bot import metrics
from bot.app import build_app
from bot.services import Services, build_services
from bot.settings import Settings
from jobs.config import AgentbotConfig, LimitsConfig
from jobs.models import Task
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, SIGNING_SECRET
from tests.slackclient import SlackUser


def count_tasks(services: Services) -> int:
    with services.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Task)).scalar_one())


def refusals(services: Services) -> str:
    """The refusal counters as /metrics shows them."""
    lines = metrics.render(services).decode().splitlines()
    return "\n".join(line for line in lines if line.startswith("agentbot_limit_refusals_total"))


def test_a_fresh_install_lets_one_requester_have_five_unfinished_tasks(
    user: SlackUser, services: Services
) -> None:
    """With no `[limits]` in the file, the sixth unfinished task of one person is refused,
    privately and naming the limit, and nothing is written or queued for it."""
    assert services.config.limits == LimitsConfig()
    for n in range(1, 6):
        assert f"T-{n} queued" in user.reply_text(user.command(f"run fix bug number {n}"))

    refused = user.command("run fix one bug too many")

    body = json.loads(refused.body)
    assert body["response_type"] == "ephemeral"
    assert "limits.open_tasks_per_requester" in body["text"]
    assert "5 unfinished tasks" in body["text"]
    assert count_tasks(services) == 5
    assert services.queues.lengths()["plan"] == 5
    assert (
        refusals(services) == 'agentbot_limit_refusals_total{limit="open_tasks_per_requester"} 1.0'
    )
    # Someone else may still ask.
    assert "T-6 queued" in user.reply_text(user.command("run fix theirs", user=APPROVER))


@pytest.fixture
def tight(
    settings: Settings, config: AgentbotConfig, services: Services, slack: FakeSlack
) -> Iterator[SlackUser]:
    """A bot whose limits are two per requester and three in all."""
    limited = config.model_copy(
        update={"limits": LimitsConfig(open_tasks_per_requester=2, open_tasks_total=3)}
    )
    built = build_services(settings.with_config(limited))
    yield SlackUser(build_app(built), SIGNING_SECRET, slack, built)
    built.db.dispose()
    built.redis.close()


def test_the_total_limit_holds_across_requesters(tight: SlackUser) -> None:
    """Three unfinished tasks in all: the fourth is refused whoever asks."""
    tight.command("run one")
    tight.command("run two")
    tight.command("run three", user=APPROVER)
    refused = tight.reply_text(tight.command("run four", user=APPROVER))
    assert "limits.open_tasks_total" in refused
    assert count_tasks(tight.services) == 3


def test_a_finished_task_frees_its_place(tight: SlackUser) -> None:
    """Limits count unfinished tasks only: cancelling one lets the next in."""
    tight.command("run one")
    tight.command("run two")
    assert "limits.open_tasks_per_requester" in tight.reply_text(tight.command("run three"))
    tight.command("cancel T-1")
    assert "T-3 queued" in tight.reply_text(tight.command("run three"))


def test_a_burst_from_one_requester_makes_no_more_tasks_than_the_limit(
    user: SlackUser, services: Services
) -> None:
    """Forty concurrent `/agent run` from one person: exactly five tasks, the rest refused."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda n: user.command(f"run burst {n}"), range(40)))
    texts = [user.reply_text(reply) for reply in replies]
    assert sum("queued" in text for text in texts) == 5
    assert sum("limits.open_tasks_per_requester" in text for text in texts) == 35
    assert count_tasks(services) == 5
    assert refusals(services).endswith(" 35.0")
    assert all(reply.status == 200 for reply in replies)
