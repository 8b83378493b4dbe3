"""A task belongs to its channel: shown there, to its requester and to approvers only."""

from __future__ import annotations

import json

from slack_bolt import BoltResponse

from tests.conftest import APPROVER, CHANNEL, REQUESTER, STRANGER
from tests.slackclient import SlackUser

SECRET_WORK = "fix the payroll rounding for the acquisition"
ELSEWHERE = "COTHER"


def shown(response: BoltResponse) -> str:
    """Everything an ephemeral answer shows: its text and its blocks."""
    body = json.loads(response.body)
    assert body.get("response_type") == "ephemeral"
    return body.get("text", "") + json.dumps(body.get("blocks", []))


def test_status_and_list_elsewhere_show_nothing_of_the_task(user: SlackUser) -> None:
    """Asked in another channel by someone neither requester nor approver: refused, and
    the description appears nowhere in what they see."""
    user.command(f"run {SECRET_WORK}")

    status = shown(user.command("status T-1", user=STRANGER, channel=ELSEWHERE))
    listing = shown(user.command("list", user=STRANGER, channel=ELSEWHERE))

    assert "T-1 belongs to another channel" in status
    assert SECRET_WORK not in status
    assert SECRET_WORK not in listing and "T-1" not in listing


def test_the_channel_the_requester_and_approvers_see_the_task(user: SlackUser) -> None:
    """In its own channel anyone sees it; elsewhere its requester and approvers do."""
    user.command(f"run {SECRET_WORK}")
    askers = [
        (STRANGER, CHANNEL),
        (REQUESTER, ELSEWHERE),
        (APPROVER, ELSEWHERE),
    ]
    for who, where in askers:
        assert SECRET_WORK in shown(user.command("status T-1", user=who, channel=where)), who
        assert SECRET_WORK in shown(user.command("list", user=who, channel=where)), who
