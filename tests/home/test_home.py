"""The Home tab through the signed app and the Slack fake: who sees what, its buttons,
its republish after a change, and a rate-limited Slack."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from bot import blocks
from bot.services import Services
from jobs.models import Approval
from jobs.states import TaskState
from jobs.tasks import get_task
from sandbox.fakeslack import FakeSlack
from tests.conftest import APPROVER, APPROVER_2, CHANNEL, REQUESTER, STRANGER
from tests.slackclient import SlackUser, texts, view_text

MEMBER = "UMEMBER"
SECRET = "CSECRET"


def planned(
    user: SlackUser,
    text: str = "run fix the discount calculation",
    *,
    by: str = REQUESTER,
    channel: str = CHANNEL,
) -> None:
    """Run a task and plan it, leaving it awaiting approval."""
    response = user.command(text, user=by, channel=channel)
    assert response.status == 200
    user.work()


def state_of(services: Services, task_id: int = 1) -> TaskState:
    with services.db.session() as session:
        return get_task(session, task_id).task_state


def publishes(slack: FakeSlack, person: str) -> int:
    return sum(
        1
        for call in slack.calls_to("views.publish")
        if call.params.get("user_id") == person and call.status == 200
    )


def test_approver_approves_from_home_and_the_task_executes(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """An approver sees the plan under Waiting for you; Approve there runs the task and
    the thread says who approved, as a click in the thread would."""
    planned(user)
    user.open_home(APPROVER)
    user.work("default")
    home = view_text(user.home(APPROVER))
    assert "Waiting for you" in home and "T-1 · fix the discount calculation" in home

    response = user.click_home(APPROVER, blocks.APPROVE, "1:1")
    assert response.status == 200
    user.work()

    assert state_of(services) == TaskState.SUCCEEDED
    plan = next(m for m in user.thread() if m.text == "Plan for T-1")
    assert f"Approved by <@{APPROVER}>" in texts(plan)
    # The Home was published again after the change: nothing waits any more.
    home = view_text(user.home(APPROVER))
    assert "Nothing waits for your approval." in home


def test_own_plan_is_not_waiting_for_its_requester_when_self_approval_is_off(
    user: SlackUser, slack: FakeSlack
) -> None:
    """An approver's own task waits on another approver's Home, not on theirs; a
    requester who is no approver sees it under Your tasks, with Cancel."""
    planned(user, by=APPROVER)
    planned(user, "run fix the totals")
    for person in (APPROVER, APPROVER_2, REQUESTER):
        user.open_home(person)
    user.work("default")

    own = view_text(user.home(APPROVER))
    assert "T-1 · fix the discount calculation" in own  # under Your tasks
    assert "T-2 · fix the totals" in own
    waiting = user.home(APPROVER)["blocks"]
    values = {
        e.get("value")
        for b in waiting
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == blocks.APPROVE
    }
    assert values == {"2:1"}
    other = user.home(APPROVER_2)["blocks"]
    assert {
        e.get("value")
        for b in other
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == blocks.APPROVE
    } == {"1:1", "2:1"}
    requester = view_text(user.home(REQUESTER))
    assert "Only approvers decide plans" in requester
    assert "T-2 · fix the totals" in requester and "Cancel" in requester
    # Not theirs, and Slack lists no channel they are in: T-1 is nowhere on their Home.
    assert "fix the discount calculation" not in requester


def test_a_private_channels_task_is_not_shown_to_a_non_member(
    user: SlackUser, slack: FakeSlack
) -> None:
    """A task in a private channel reaches the Home of its members only (and approvers)."""
    slack.channel_members[SECRET] = {REQUESTER, MEMBER}
    slack.channel_members[CHANNEL] = {REQUESTER, MEMBER, STRANGER}
    planned(user, "run rotate the secret key --repo acme/calc", channel=SECRET)
    for person in (MEMBER, STRANGER):
        user.open_home(person)
    user.work("default")

    member = view_text(user.home(MEMBER))
    stranger = view_text(user.home(STRANGER))
    assert "rotate the secret key" in member
    assert "awaiting approval 1" in member  # the team's count includes it
    assert "rotate the secret key" not in stranger and "T-1" not in stranger
    assert "No tasks yet." in stranger


def test_a_refused_click_on_home_says_why_there_and_changes_nothing(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """A click on Home by someone who may not decide is refused at the top of their
    Home; the task still waits, and a repeated delivery of a click is dropped."""
    planned(user)
    user.open_home(APPROVER)
    user.work("default")
    view = user.home(APPROVER)
    button = next(
        e
        for b in view["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == blocks.APPROVE
    )
    forged = user.home_click_body(STRANGER, view, button, "home-plan-1")
    user.deliver(_payload(forged))
    user.work("default")
    assert state_of(services) == TaskState.AWAITING_APPROVAL
    assert "Only approvers can approve or reject plans." in view_text(user.home(STRANGER))

    click = user.home_click_body(APPROVER, view, button, "home-plan-1")
    assert user.deliver(_payload(click)).status == 200
    assert user.deliver(_payload(click)).status == 200  # Slack's retry of the same click
    with services.db.session() as session:
        approvals = session.execute(select(Approval).where(Approval.task_id == 1)).all()
    assert len(approvals) == 1
    assert state_of(services) == TaskState.APPROVED


def test_a_burst_of_changes_is_one_publish_per_person(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """Three tasks planned in one go republish each concerned Home once, showing all
    three; a later change publishes again."""
    for words in ("fix one", "fix two", "fix three"):
        assert user.command(f"run {words}").status == 200
    user.work()

    for person in (REQUESTER, APPROVER, APPROVER_2):
        assert publishes(slack, person) == 1, person
    waiting = view_text(user.home(APPROVER))
    assert all(f"T-{n} ·" in waiting for n in (1, 2, 3))
    assert publishes(slack, STRANGER) == 0

    user.command("reject T-2 not now", user=APPROVER)
    user.work()
    assert publishes(slack, APPROVER) == 2
    assert publishes(slack, REQUESTER) == 2
    assert "T-2" not in _waiting_part(view_text(user.home(APPROVER)))


def test_a_rate_limited_publish_is_retried_after_retry_after(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """Slack's 429 on views.publish is waited out (Retry-After) and the Home published."""
    slack.fail_next("views.publish", status=429, times=1, retry_after=1)
    user.open_home(APPROVER)
    started = time.monotonic()
    user.work("default")
    calls = [c.status for c in slack.calls_to("views.publish")]
    assert calls == [429, 200]
    assert time.monotonic() - started >= 1.0
    home = view_text(user.home(APPROVER))
    assert "Waiting for you" in home
    assert "Last AWS status scan" not in home  # no [aws] in this configuration


def test_a_home_slack_will_not_take_never_touches_the_task(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """When every publish is rate-limited past its retries, the task is planned, its
    plan posted and approvable as if the Home did not exist."""
    slack.fail_next("views.publish", status=429, times=50, retry_after=0)
    planned(user)
    assert state_of(services) == TaskState.AWAITING_APPROVAL
    assert any(m.text == "Plan for T-1" for m in user.thread())
    assert not slack.homes
    plan = next(m for m in user.thread() if m.text == "Plan for T-1")
    user.click(plan, blocks.APPROVE, APPROVER)
    assert state_of(services) == TaskState.APPROVED


def _payload(body: dict[str, object]) -> str:
    import json
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(body)})


def _waiting_part(text: str) -> str:
    return text.split("Your tasks", 1)[0]


@pytest.mark.parametrize(
    ("values", "line"),
    [([0, 0, 0], "▁▁▁"), ([0, 1, 2, 4], "▁▃▅█"), ([3], "█")],
)
def test_sparkline(values: list[int], line: str) -> None:
    """The per-day line is scaled to the busiest day."""
    from bot.home.blocks import sparkline

    assert sparkline(values) == line


def test_manifest_enables_the_home_tab() -> None:
    """The manifest turns the Home tab on, sends app_home_opened, and asks for the scopes
    that tell whose channel a task is in."""
    from pathlib import Path

    import yaml

    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"channels:read", "groups:read"} <= set(manifest["oauth_config"]["scopes"]["bot"])


def test_publishes_past_the_minutes_share_wait_for_the_next_minute(
    user: SlackUser, services: Services, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the minute's share of views.publish calls, a Home is scheduled for the next
    minute instead of calling Slack into a 429; its person's mark stays set meanwhile."""
    from rq.registry import ScheduledJobRegistry

    import jobs.home

    monkeypatch.setattr(jobs.home, "PUBLISHES_PER_MINUTE", 1)
    # Not across a minute's edge, where the share starts afresh.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    user.open_home(APPROVER)
    user.open_home(APPROVER_2)
    user.work("default")

    assert len(slack.calls_to("views.publish")) == 1
    scheduled = ScheduledJobRegistry("default", connection=services.redis)
    assert len(scheduled.get_job_ids()) == 1
    assert services.redis.exists(jobs.home.PENDING_KEY.format(user=APPROVER_2))
    # Another opening meanwhile queues nothing more: the scheduled one will show it.
    user.open_home(APPROVER_2)
    assert services.queues.queue("default").count == 0


def test_reject_and_cancel_work_from_home(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """Reject… on Home opens the thread's reason modal and rejects with the reason; the
    requester's Cancel on Home stops their task."""
    planned(user)
    planned(user, "run fix the totals")
    for person in (APPROVER, REQUESTER):
        user.open_home(person)
    user.work("default")

    assert user.click_home(APPROVER, blocks.REJECT, "1:1").status == 200
    modal = slack.views[-1]
    assert modal["callback_id"] == blocks.REJECT_VIEW
    assert user.submit_view(modal, APPROVER, "not this quarter").status == 200
    assert state_of(services, 1) == TaskState.REJECTED

    assert user.click_home(REQUESTER, blocks.CANCEL, "2").status == 200
    assert state_of(services, 2) == TaskState.CANCELLED
    user.work()
    card = next(m for m in slack.channel_messages(CHANNEL) if "T-1 ·" in m.text)
    assert "not this quarter" in texts(card)
    assert "Nothing waits for your approval." in view_text(user.home(APPROVER))
    assert "Cancel" not in view_text(user.home(REQUESTER))


def test_a_failed_task_shows_its_error_and_retries_from_home(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """A failed task is on its requester's Home with its error line and Retry, which
    plans it again."""
    from jobs.tasks import touch

    planned(user)
    with services.db.session() as session:
        touch(session, 1, state=TaskState.FAILED.value, error="Job failed: the repo is gone.")
    services.queues.enqueue_sync(1)
    user.work("default")
    home = view_text(user.home(REQUESTER))
    assert "Job failed: the repo is gone." in home and "Retry" in home

    assert user.click_home(REQUESTER, blocks.RETRY, "1").status == 200
    user.work()
    assert state_of(services) == TaskState.AWAITING_APPROVAL
    assert "Retry" not in view_text(user.home(REQUESTER))


def test_request_changes_from_home_revises_the_plan_and_a_stale_home_cannot_approve(
    user: SlackUser, services: Services, slack: FakeSlack
) -> None:
    """Request changes… on Home opens the thread's modal and makes Plan v2; Home then shows
    v2, and an Approve still carrying v1 (a Home drawn before the revision) is refused."""
    planned(user)
    user.open_home(APPROVER)
    user.work("default")
    stale = user.home(APPROVER)
    assert "Plan for T-1" in view_text(stale)

    assert user.click_home(APPROVER, blocks.REQUEST_CHANGES, "1:1").status == 200
    modal = slack.views[-1]
    assert modal["callback_id"] == blocks.CHANGES_VIEW
    change = "Also cover 25% off 80.00, which must give 60.00."
    assert user.submit_view(modal, APPROVER, change).status == 200
    user.work("default", "plan")
    user.work("default")

    with services.db.session() as session:
        task = get_task(session, 1)
        assert task.task_state == TaskState.AWAITING_APPROVAL and task.plan_version == 2
    assert any(m.text == "Plan v2 for T-1" for m in user.thread())
    assert "Plan v2 for T-1" in view_text(user.home(APPROVER))

    button = next(
        e
        for b in stale["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == blocks.APPROVE
    )
    assert button["value"] == "1:1"
    user.deliver(_payload(user.home_click_body(APPROVER, stale, button, "home-plan-1")))
    user.work("default")
    assert state_of(services) == TaskState.AWAITING_APPROVAL
    assert "Plan v1 of T-1 was superseded by v2" in view_text(user.home(APPROVER))

    assert user.click_home(APPROVER, blocks.APPROVE, "1:2").status == 200
    assert state_of(services) == TaskState.APPROVED
