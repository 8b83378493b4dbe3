"""A seeded estate with one of each kind of waste, for the savings scan and actions.

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

from tests.cost.conftest import Clients

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
