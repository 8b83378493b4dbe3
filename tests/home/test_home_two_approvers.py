"""Home where a plan needs two approvers: the first approval from Home is recorded and said."""

from __future__ import annotations

import pytest

from bot import blocks
from bot.services import Services
from jobs.config import AgentbotConfig
from jobs.states import TaskState
from jobs.tasks import get_task
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, APPROVER_2
from tests.slackclient import SlackUser, view_text


@pytest.fixture
def config(config: AgentbotConfig) -> AgentbotConfig:
    """The shared configuration, with two approvals required."""
    return config.model_copy(
        update={"access": config.access.model_copy(update={"approvals_required": 2})}
    )


def test_first_of_two_approvals_from_home(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """The first approver's Home says their approval is recorded and offers no second
    click; the second approver's Approve moves the task on."""
    user.command("run fix the discount calculation")
    user.work()
    for person in (APPROVER, APPROVER_2):
        user.open_home(person)
    user.work("default")

    assert user.click_home(APPROVER, blocks.APPROVE, "1:1").status == 200
    user.work("default")
    first = view_text(user.home(APPROVER))
    assert "Your approval of T-1 is recorded (1 of 2)." in first
    assert "You approved; it waits for another approver." in first
    assert ":warning:" not in first

    assert user.click_home(APPROVER_2, blocks.APPROVE, "1:1").status == 200
    with services.db.session() as session:
        assert get_task(session, 1).task_state == TaskState.APPROVED
