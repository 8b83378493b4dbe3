"""`/agent aws cost` and `/agent aws optimize` through Slack, and actions through approval.

A real Bolt app takes signed requests, real forked RQ workers run the jobs, moto
answers on loopback and FakeSlack records what people would see.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError
from slack_bolt import BoltResponse
from sqlalchemy import func, select

from agents.aws.cost_config import ActionKind, ActionsConfig
from bot import blocks
from bot.aws.cost_blocks import CREATE_ACTION
from jobs.models import Task
from jobs.tasks import get_task
from sandbox.fakeslack import FakeSlack, Message
from tests.conftest import APPROVER, CHANNEL, REQUESTER
from tests.cost.conftest import Clients, history, queue_ce_results, reconfigure
from tests.slackclient import SlackUser, texts


def click_accessory(user: SlackUser, message: Message, text: str, who: str) -> BoltResponse:
    """Click the "Create action" button beside the recommendation whose text contains `text`."""
    for block in message.blocks:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == CREATE_ACTION and text in block["text"]["text"]:
            break
    else:
        raise AssertionError(f"no Create action button beside {text!r}")
    body = {
        "type": "block_actions",
        "user": {"id": who, "username": who.lower(), "team_id": "TSANDBOX"},
        "api_app_id": "AAGENTBOT",
        "team": {"id": "TSANDBOX", "domain": "sandbox"},
        "channel": {"id": message.channel, "name": "dev"},
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "message": message.to_dict(),
        "trigger_id": f"trig-{uuid.uuid4().hex}",
        "response_url": user.slack.new_response_url(
            user=who, channel=message.channel, message_ts=message.ts
        ),
        "actions": [
            {
                "type": "button",
                "action_id": CREATE_ACTION,
                "block_id": block.get("block_id", ""),
                "value": accessory["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return user.deliver(urlencode({"payload": json.dumps(body)}))


def parent(slack: FakeSlack, words: str) -> Message:
    """The acknowledgement message a report is posted under."""
    [message] = [m for m in slack.channel_messages(CHANNEL) if words in m.text]
    return message


def task(user: SlackUser, task_id: int = 1) -> Task:
    with user.services.db.session() as session:
        return get_task(session, task_id)


def test_cost_report_replaces_its_acknowledgement_with_details_in_the_thread(
    user: SlackUser, slack: FakeSlack, aws_endpoint: str
) -> None:
    """`/agent aws cost week`: an ack, then the "it follows" message becomes the summary,
    with the chart and every other figure in its thread."""
    as_of = datetime.now(UTC).date() - timedelta(days=1)
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(as_of, 70)})

    response = user.command("aws cost week")
    assert "Making the AWS cost report (week)" in user.reply_text(response)
    # Bolt answers at ack(); the listener posts the note and queues the job after it.
    slack.wait_for(lambda: user.services.queues.lengths()["default"])
    [coming] = slack.channel_messages(CHANNEL)
    assert "it follows in the thread" in coming.text
    user.work("default")

    [summary] = slack.channel_messages(CHANNEL)
    body = texts(summary)
    assert summary.ts == coming.ts and "it follows in the thread" not in body
    assert "AWS cost report · week" in body
    # The week: 6 usual days (1,158) and the Lambda spike day (448).
    assert f"*$1,606.00* last 7 days ({(as_of - timedelta(days=6)).isoformat()} to" in body
    assert "on the 7 days before" in body
    assert "30-day chart in the thread" in body
    chart, details = slack.thread(CHANNEL, summary.ts)
    assert "1 Cost Explorer request for this report" in texts(details)
    [file] = chart.files
    assert slack.files[file["id"]]["data"].startswith(b"\x89PNG")


def test_bad_cost_period_gets_usage_and_changes_nothing(
    user: SlackUser, slack: FakeSlack, aws_endpoint: str
) -> None:
    """A period that is not yesterday, week or month: usage, no message, no job."""
    response = user.command("aws cost fortnight")
    assert "Usage: `/agent aws cost [yesterday|week|month]`" in user.reply_text(response)
    assert slack.channel_messages(CHANNEL) == []
    assert user.services.queues.lengths()["default"] == 0


def savings_message(user: SlackUser, slack: FakeSlack) -> Message:
    """Ask for savings and return the recommendations message from its thread."""
    response = user.command("aws optimize")
    assert "Looking for savings" in user.reply_text(response)
    slack.wait_for(lambda: user.services.queues.lengths()["default"])
    user.work("default")
    done = parent(slack, "AWS savings for")
    assert ":hourglass" not in done.text  # the "it follows" note says it is done
    [message] = slack.thread(CHANNEL, done.ts)
    return message


@pytest.fixture
def waste(aws_endpoint: str) -> dict[str, str]:
    """An unattached gp2 volume, an unused Elastic IP and a gp2 volume in use."""
    ec2 = Clients(boto3.Session())("ec2")
    scratch = ec2.create_volume(Size=100, VolumeType="gp2", AvailabilityZone="us-east-1a")
    ip = ec2.allocate_address(Domain="vpc")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    data = ec2.create_volume(Size=500, VolumeType="gp2", AvailabilityZone="us-east-1a")
    ec2.attach_volume(
        VolumeId=data["VolumeId"], InstanceId=instance["InstanceId"], Device="/dev/sdf"
    )
    return {"scratch": scratch["VolumeId"], "ip": ip["AllocationId"], "data": data["VolumeId"]}


def test_approved_action_deletes_the_volume_after_a_snapshot(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """Recommendation -> action task -> plan in the thread -> Approve -> the volume is gone."""
    message = savings_message(user, slack)
    assert "3 recommendations, about $13.65/month" in texts(message)
    response = click_accessory(user, message, waste["scratch"], REQUESTER)
    assert response.status == 200
    user.work("default")

    assert task(user).state == "awaiting_approval"
    assert task(user).source == "aws-action"
    card = user.card()
    assert "T-1 · AWS action" in texts(card)
    plan = next(m for m in user.thread() if "Proposed AWS change · T-1" in texts(m))
    assert f"Snapshot, then delete volume {waste['scratch']}" in texts(plan)
    assert "DeleteVolume (DryRun=True)" in texts(plan)
    ec2 = Clients(boto3.Session())("ec2")
    assert ec2.describe_volumes(VolumeIds=[waste["scratch"]])["Volumes"]  # still there

    user.click(plan, blocks.APPROVE, APPROVER)
    user.work("execute", "default")

    done = task(user)
    assert done.state == "succeeded", done.error
    with pytest.raises(ClientError, match=r"InvalidVolume\.NotFound"):
        ec2.describe_volumes(VolumeIds=[waste["scratch"]])
    snapshot_id = done.result["action"]["snapshot_id"]
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert snapshot["VolumeId"] == waste["scratch"]
    outcome = next(m for m in user.thread() if "T-1 succeeded" in texts(m))
    assert "Dry run of DeleteVolume: allowed" in texts(outcome)
    assert f"Snapshot kept: `{snapshot_id}`" in texts(outcome)


def test_rejected_action_changes_nothing(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """An approver rejects the release of an address: it stays allocated."""
    message = savings_message(user, slack)
    click_accessory(user, message, waste["ip"], REQUESTER)
    user.work("default")

    response = user.command("reject T-1 that address is in our DNS", user=APPROVER)
    assert "You rejected T-1" in user.reply_text(response)
    user.work("execute", "default")

    assert task(user).state == "rejected"
    ec2 = Clients(boto3.Session())("ec2")
    assert ec2.describe_addresses(AllocationIds=[waste["ip"]])["Addresses"]
    assert any("nothing was changed in AWS" in texts(m) for m in user.thread())

    status = user.command("status T-1")
    card = Message(CHANNEL, "0", "", json.loads(str(status.body))["blocks"])
    assert "T-1 · AWS action" in texts(card)
    assert "rejected" in texts(card) and waste["ip"] in texts(card)


def test_same_change_cannot_be_proposed_twice(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """A second click on the same recommendation names the open action instead."""
    message = savings_message(user, slack)
    click_accessory(user, message, waste["ip"], REQUESTER)
    click_accessory(user, message, waste["ip"], REQUESTER)

    with user.services.db.session() as session:
        assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 1
    assert any("T-1 already proposes this change" in t for t in user.ephemeral_texts(REQUESTER))


def test_steward_autonomy_runs_only_the_listed_kinds_without_approval(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """gp2 -> gp3 is listed and the EC2 steward (6) is at the threshold: it runs at once;
    deleting a volume, irreversible and not listed, still waits for approvers."""
    reconfigure(
        user.services,
        actions={"enabled": True, "autonomy_threshold": 6, "auto_approve": ["migrate_gp3"]},
    )
    message = savings_message(user, slack)
    click_accessory(user, message, waste["data"], REQUESTER)
    click_accessory(user, message, waste["scratch"], REQUESTER)
    user.work("default", "execute")

    assert task(user, 1).state == "succeeded", task(user, 1).error
    assert task(user, 2).state == "awaiting_approval"
    ec2 = Clients(boto3.Session())("ec2")
    assert ec2.describe_volumes(VolumeIds=[waste["data"]])["Volumes"][0]["VolumeType"] == "gp3"
    assert ec2.describe_volumes(VolumeIds=[waste["scratch"]])["Volumes"][0]["State"] == (
        "available"
    )
    first = task(user, 1)
    assert first.thread_ts is not None
    thread = " ".join(texts(m) for m in slack.thread(first.channel, first.thread_ts))
    assert "Runs without approval: migrate_gp3 is auto-approved for steward Bill Gates" in thread
    assert "autonomy 6 is at or above the configured threshold 6" in thread


def test_a_low_threshold_alone_approves_nothing(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """Lowering autonomy_threshold to 0 without listing kinds lets no action skip approval."""
    reconfigure(user.services, actions={"enabled": True, "autonomy_threshold": 0})
    message = savings_message(user, slack)
    click_accessory(user, message, waste["ip"], REQUESTER)
    click_accessory(user, message, waste["data"], REQUESTER)
    user.work("default", "execute")

    assert [task(user, n).state for n in (1, 2)] == ["awaiting_approval"] * 2
    ec2 = Clients(boto3.Session())("ec2")
    assert ec2.describe_addresses(AllocationIds=[waste["ip"]])["Addresses"]
    assert ec2.describe_volumes(VolumeIds=[waste["data"]])["Volumes"][0]["VolumeType"] == "gp2"


def test_a_kind_disallowed_after_approval_changes_nothing(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """The configuration is read again at execution: an approved release no longer allowed
    fails with a reason, and the address stays allocated."""
    message = savings_message(user, slack)
    click_accessory(user, message, waste["ip"], REQUESTER)
    user.work("default")
    plan = next(m for m in user.thread() if "Proposed AWS change · T-1" in texts(m))
    user.click(plan, blocks.APPROVE, APPROVER)
    reconfigure(user.services, actions={"enabled": True, "allowed": ["migrate_gp3"]})
    user.work("execute", "default")

    done = task(user)
    assert done.state == "failed"
    assert done.error == (
        "release_address actions are no longer allowed by the configuration; nothing was changed."
    )
    ec2 = Clients(boto3.Session())("ec2")
    assert ec2.describe_addresses(AllocationIds=[waste["ip"]])["Addresses"]


def test_auto_approval_withdrawn_before_execution_changes_nothing(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """An action Agentbot approved itself does not run once its kind is no longer listed."""
    reconfigure(
        user.services,
        actions={"enabled": True, "autonomy_threshold": 6, "auto_approve": ["migrate_gp3"]},
    )
    message = savings_message(user, slack)
    click_accessory(user, message, waste["data"], REQUESTER)
    reconfigure(user.services, actions={"enabled": True, "autonomy_threshold": 6})
    user.work("default", "execute")

    done = task(user)
    assert done.state == "failed"
    assert "no longer runs without approval" in (done.error or "")
    ec2 = Clients(boto3.Session())("ec2")
    assert ec2.describe_volumes(VolumeIds=[waste["data"]])["Volumes"][0]["VolumeType"] == "gp2"


@pytest.mark.parametrize(
    ("actions", "error"),
    [
        ({"auto_approve": ["migrate_gp3"]}, "auto_approve needs autonomy_threshold"),
        (
            {
                "autonomy_threshold": 5,
                "allowed": ["stop_instance"],
                "auto_approve": ["migrate_gp3"],
            },
            "auto_approve lists kinds that are not allowed: migrate_gp3",
        ),
    ],
)
def test_auto_approve_mistakes_are_refused_at_load(actions: dict[str, Any], error: str) -> None:
    """A list without a threshold, or a kind that is not allowed, is a configuration error."""
    with pytest.raises(ValidationError, match=error):
        ActionsConfig.model_validate({"enabled": True, **actions})
    assert ActionsConfig().auto_approve == ()
    assert not ActionsConfig(enabled=True, autonomy_threshold=0).runs_unapproved(
        ActionKind.MIGRATE_GP3, 10
    )


def test_actions_off_means_advice_only(
    user: SlackUser, slack: FakeSlack, waste: dict[str, str]
) -> None:
    """Without `[cost.actions] enabled`, no buttons, and a forged click changes nothing."""
    reconfigure(user.services, actions={"enabled": False})
    message = savings_message(user, slack)
    assert "Advice only: AWS actions are off" in texts(message)
    assert not any((b.get("accessory") or {}).get("action_id") for b in message.blocks)

    forged = Message(
        channel=message.channel,
        ts=message.ts,
        text=message.text,
        blocks=[
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": waste["ip"]},
                "accessory": {"type": "button", "action_id": CREATE_ACTION, "value": "1"},
            }
        ],
    )
    click_accessory(user, forged, waste["ip"], REQUESTER)
    assert any("AWS actions are turned off" in t for t in user.ephemeral_texts(REQUESTER))
    with user.services.db.session() as session:
        assert session.execute(select(func.count()).select_from(Task)).scalar_one() == 0
