"""Savings recommendations and the AWS changes they become, against moto on loopback.

Two ages moto cannot produce are injected with botocore `after-call` hooks on the
session the scan uses (hooks on the base session reach every client made from it):
moto stamps a stopped instance's state-transition reason and a snapshot's start time
with the current time and offers no way to set them, so the hooks rewrite them in the
parsed responses, as AWS would report an instance stopped a month ago and a snapshot
taken 200 days ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from agents.aws.actions import ActionError, ActionSpec, execute_action
from agents.aws.cost_config import ActionKind, OptimizeConfig
from agents.aws.optimize import Finding, find_savings, render_text
from agents.aws.prices import PriceTable
from tests.cost.conftest import AWS, EAST, Clients

NOW = datetime.now(UTC)
IMAGE = "ami-12c6146b"


@dataclass
class Estate:
    """Ids of the seeded resources."""

    idle: str
    busy: str
    fresh: str
    stopped: str
    web_data: str
    scratch: str
    free_ip: str
    used_ip: str
    old_snapshot: str
    new_snapshot: str


def launch(ec2: Any, name: str, instance_type: str) -> str:
    """Run one tagged instance."""
    reservation = ec2.run_instances(
        ImageId=IMAGE,
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        Placement={"AvailabilityZone": "us-east-1a"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )
    return str(reservation["Instances"][0]["InstanceId"])


def put_cpu(cloudwatch: Any, instance_id: str, percent: float, days: int = 14) -> None:
    """Publish CPUUtilization every three hours for `days` days."""
    points = [
        {
            "MetricName": "CPUUtilization",
            "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
            "Timestamp": NOW - timedelta(hours=3 * n, minutes=10),
            "Value": percent + (n % 3) * 0.5,
        }
        for n in range(days * 8)
    ]
    cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=points)


def volume(ec2: Any, size: int, name: str, kind: str = "gp2") -> str:
    """Create a tagged volume."""
    created = ec2.create_volume(
        Size=size,
        VolumeType=kind,
        AvailabilityZone="us-east-1a",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": name}]}],
    )
    return str(created["VolumeId"])


def seed(session: boto3.Session) -> Estate:
    """An estate with one of each kind of waste, and resources that are not waste."""
    client = Clients(session)
    ec2, cloudwatch = client("ec2"), client("cloudwatch")
    idle = launch(ec2, "idle-batch", "t3.large")
    busy = launch(ec2, "web", "t3.large")
    fresh = launch(ec2, "fresh", "t3.micro")  # no CPU data yet: no verdict
    stopped = launch(ec2, "old-worker", "t3.medium")
    put_cpu(cloudwatch, idle, 1.0)
    put_cpu(cloudwatch, busy, 60.0)

    web_data = volume(ec2, 500, "web-data")
    ec2.attach_volume(VolumeId=web_data, InstanceId=busy, Device="/dev/sdf")
    worker_data = volume(ec2, 50, "worker-data")
    ec2.attach_volume(VolumeId=worker_data, InstanceId=stopped, Device="/dev/sdf")
    ec2.stop_instances(InstanceIds=[stopped])
    scratch = volume(ec2, 100, "scratch")

    free_ip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    used_ip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=used_ip, InstanceId=busy)

    old_snapshot = ec2.create_snapshot(VolumeId=web_data, Description="old")["SnapshotId"]
    new_snapshot = ec2.create_snapshot(VolumeId=scratch, Description="new")["SnapshotId"]
    return Estate(
        idle, busy, fresh, stopped, web_data, scratch, free_ip, used_ip, old_snapshot, new_snapshot
    )


def age(session: boto3.Session, estate: Estate) -> None:
    """Make the stopped instance a month stopped and the old snapshot 200 days old."""
    stopped_at = (NOW - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")

    def instances(parsed: dict[str, Any], **_: Any) -> None:
        for reservation in parsed.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if instance["InstanceId"] == estate.stopped:
                    instance["StateTransitionReason"] = f"User initiated ({stopped_at} GMT)"

    def snapshots(parsed: dict[str, Any], **_: Any) -> None:
        for snapshot in parsed.get("Snapshots", []):
            if snapshot["SnapshotId"] == estate.old_snapshot:
                snapshot["StartTime"] = NOW - timedelta(days=200)

    session.events.register("after-call.ec2.DescribeInstances", instances)
    session.events.register("after-call.ec2.DescribeSnapshots", snapshots)


@pytest.fixture
def session(aws_endpoint: str) -> boto3.Session:
    """A base session on the freshly reset moto."""
    return boto3.Session()


@pytest.fixture
def estate(session: boto3.Session) -> Estate:
    """The seeded estate, with the two ages injected on `session`."""
    seeded = seed(session)
    age(session, seeded)
    return seeded


def test_each_kind_of_waste_is_found_with_its_saving(
    session: boto3.Session, estate: Estate
) -> None:
    """Idle, long-stopped, unattached, unused, old and gp2 - and nothing that is in use."""
    report = find_savings(session, AWS, OptimizeConfig(), now=NOW)

    found = {(r.finding, r.resource_id): r for r in report.recommendations}
    savings = {key: round(r.monthly_savings or 0, 2) for key, r in found.items()}
    assert savings == {
        # t3.large on demand: $0.0832/h x 730 h.
        (Finding.IDLE_INSTANCE, estate.idle): 60.74,
        # 500 GiB snapshot at $0.05/GB-month, at most.
        (Finding.OLD_SNAPSHOT, estate.old_snapshot): 25.00,
        # Its 8 GiB root and 50 GiB data volumes, gp2 at $0.10/GB-month.
        (Finding.STOPPED_INSTANCE, estate.stopped): 5.80,
        # 500 GiB gp2 $50.00 vs gp3 $40.00 + 125 MB/s above the free 125 at $0.04 = $45.00.
        (Finding.GP2_VOLUME, estate.web_data): 5.00,
        # 100 GiB gp2 $10.00, less the $5.00 snapshot kept before deleting it.
        (Finding.UNATTACHED_VOLUME, estate.scratch): 5.00,
        # One public IPv4 address: $0.005/h x 730 h.
        (Finding.UNUSED_ADDRESS, estate.free_ip): 3.65,
    }
    assert report.errors == []
    assert report.units == 2  # prod and staging (assumed role), one region
    idle = found[(Finding.IDLE_INSTANCE, estate.idle)]
    assert idle.name == "idle-batch" and idle.steward == "Bill Gates"
    assert "average CPU 1.5%" in idle.evidence and "over the last 14 days" in idle.evidence
    assert "stopped since" in found[(Finding.STOPPED_INSTANCE, estate.stopped)].evidence
    assert "200 days ago" in found[(Finding.OLD_SNAPSHOT, estate.old_snapshot)].evidence
    # Largest saving first.
    assert report.recommendations[0].resource_id == estate.idle
    assert "about $105.19/month" in render_text(report)


def test_price_table_and_thresholds_come_from_configuration(
    session: boto3.Session, estate: Estate
) -> None:
    """A region's prices override the defaults; a stricter CPU threshold spares the idle box."""
    config = OptimizeConfig(
        idle_cpu_percent=1.0,
        prices={EAST: PriceTable.model_validate({"public_ipv4_hour": 0.01})},
    )
    report = find_savings(session, AWS, config, now=NOW)

    by_finding = {r.finding: r for r in report.recommendations}
    assert Finding.IDLE_INSTANCE not in by_finding
    assert round(by_finding[Finding.UNUSED_ADDRESS].monthly_savings or 0, 2) == 7.30
    # Keys not overridden keep their defaults.
    assert round(by_finding[Finding.UNATTACHED_VOLUME].monthly_savings or 0, 2) == 5.00


def test_actions_change_the_resources_after_a_dry_run(
    session: boto3.Session, estate: Estate
) -> None:
    """Stop, snapshot-and-delete, release and migrate each really change moto's estate."""
    ec2 = Clients(session)("ec2")

    def act(kind: ActionKind, resource: str) -> Any:
        spec = ActionSpec(kind=kind, account="prod", region=EAST, resource_id=resource)
        return execute_action(ec2, spec)

    stopped = act(ActionKind.STOP_INSTANCE, estate.idle)
    deleted = act(ActionKind.DELETE_VOLUME, estate.scratch)
    released = act(ActionKind.RELEASE_ADDRESS, estate.free_ip)
    migrated = act(ActionKind.MIGRATE_GP3, estate.web_data)

    state = ec2.describe_instances(InstanceIds=[estate.idle])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "stopped"
    with pytest.raises(ClientError, match=r"InvalidVolume\.NotFound"):
        ec2.describe_volumes(VolumeIds=[estate.scratch])
    kept = ec2.describe_snapshots(SnapshotIds=[deleted.snapshot_id])["Snapshots"][0]
    assert kept["VolumeId"] == estate.scratch and kept["State"] == "completed"
    with pytest.raises(ClientError, match=r"InvalidAllocationID\.NotFound"):
        ec2.describe_addresses(AllocationIds=[estate.free_ip])
    web_data = ec2.describe_volumes(VolumeIds=[estate.web_data])["Volumes"][0]
    assert (web_data["VolumeType"], web_data["Iops"], web_data["Throughput"]) == ("gp3", 3000, 250)

    for result in (stopped, deleted, released, migrated):
        assert result.steps[1].startswith("Dry run of ")
        assert "allowed (DryRunOperation)" in result.steps[1]
    assert "after snapshot" in deleted.summary


def test_a_refused_dry_run_changes_nothing(session: boto3.Session, estate: Estate) -> None:
    """Without permission the dry run fails and the real call is never made."""

    def deny(params: dict[str, Any], **_: Any) -> Any:
        # `params` is the serialized request; EC2's query protocol sends DryRun=true.
        if params.get("body", {}).get("DryRun") == "true":
            response = AWSResponse("https://ec2.amazonaws.com/", 403, {}, None)
            error = {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}
            return response, {**error, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return None

    session.events.register("before-call.ec2.DeleteVolume", deny)
    ec2 = Clients(session)("ec2")
    spec = ActionSpec(
        kind=ActionKind.DELETE_VOLUME, account="prod", region=EAST, resource_id=estate.scratch
    )
    with pytest.raises(ActionError, match="dry run of DeleteVolume was refused") as refused:
        execute_action(ec2, spec)

    assert refused.value.changed is False
    assert ec2.describe_volumes(VolumeIds=[estate.scratch])["Volumes"][0]["State"] == "available"
    # The snapshot's own dry run passed, but no snapshot was taken either.
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert sorted(s["SnapshotId"] for s in snapshots if s["VolumeId"] == estate.scratch) == [
        estate.new_snapshot
    ]


def test_a_resource_that_changed_since_is_left_alone(
    session: boto3.Session, estate: Estate
) -> None:
    """The volume was attached after the recommendation: the action stops at its check."""
    ec2 = Clients(session)("ec2")
    ec2.attach_volume(VolumeId=estate.scratch, InstanceId=estate.busy, Device="/dev/sdg")
    spec = ActionSpec(
        kind=ActionKind.DELETE_VOLUME, account="prod", region=EAST, resource_id=estate.scratch
    )
    with pytest.raises(ActionError, match="is in-use now, not unattached; nothing was changed"):
        execute_action(ec2, spec)
    assert ec2.describe_volumes(VolumeIds=[estate.scratch])["Volumes"][0]["State"] == "in-use"
