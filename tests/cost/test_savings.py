"""Savings recommendations and the AWS changes they become, against moto on loopback.

The estate and the ages injected into it are in `tests.cost.estate`.
"""

from __future__ import annotations

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
from tests.cost.estate import NOW, Estate


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
