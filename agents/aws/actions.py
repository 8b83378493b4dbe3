"""Changes to AWS that savings recommendations become, each proven by a dry run first.

An action runs in four steps, and stops at the first that fails:

1. **check**: the resource is still what the recommendation saw (the volume is still
   unattached, the address still free, the instance still running, the volume still
   gp2); if not, nothing is changed.
2. **dry run**: every call the action will make is sent with `DryRun=True`; EC2 answers
   `DryRunOperation` when the real call would be allowed, `UnauthorizedOperation`
   when it would not.
3. **change**: the real calls. Deleting a volume snapshots it first and waits for the
   snapshot to complete, so the data can be restored.
4. **verify**: the resource is read back to confirm the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agents.aws.cost_config import ActionKind
from agents.aws.prices import gp2_performance

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_ec2 import EC2Client

DRY_RUN_OK = "DryRunOperation"
SNAPSHOT_WAIT_DELAY = 5
SNAPSHOT_WAIT_ATTEMPTS = 120


class ActionSpec(BaseModel):
    """What to change, where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ActionKind
    account: str
    region: str
    resource_id: str
    reference: str = Field("", description="who asked, for tags and descriptions (T-12)")


class ActionResult(BaseModel):
    """What an action did, step by step."""

    steps: list[str] = Field(default_factory=list)
    dry_run: str = ""
    summary: str = ""
    snapshot_id: str | None = None


class ActionError(Exception):
    """The action stopped; `str()` says why, and `result` what was done before it."""

    def __init__(self, message: str, result: ActionResult, *, changed: bool = False) -> None:
        super().__init__(message)
        self.result = result
        self.changed = changed


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Error"))


def _message(error: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    return str(error) or type(error).__name__


class _Run:
    def __init__(self, ec2: EC2Client, spec: ActionSpec) -> None:
        self.ec2 = ec2
        self.spec = spec
        self.result = ActionResult()
        self.changed = False

    def step(self, line: str) -> None:
        self.result.steps.append(line)

    def fail(self, message: str) -> ActionError:
        return ActionError(message, self.result, changed=self.changed)

    def dry_run(self, operation: str, call: Callable[[], Any]) -> None:
        from botocore.exceptions import ClientError

        try:
            call()
        except ClientError as error:
            if _code(error) == DRY_RUN_OK:
                self.step(f"Dry run of {operation}: allowed ({DRY_RUN_OK}).")
                return
            raise self.fail(
                f"The dry run of {operation} was refused ({_message(error)}); nothing was changed."
            ) from error
        raise self.fail(
            f"The dry run of {operation} did not answer {DRY_RUN_OK}; stopping before any "
            "real change."
        )

    # -- the four actions -----------------------------------------------------------------

    def stop_instance(self) -> None:
        instance_id = self.spec.resource_id
        state = self._instance_state(instance_id)
        if state != "running":
            raise self.fail(f"{instance_id} is {state} now, not running; nothing was changed.")
        self.step(f"Checked: {instance_id} is running.")
        self.dry_run(
            "StopInstances", lambda: self.ec2.stop_instances(InstanceIds=[instance_id], DryRun=True)
        )
        self.result.dry_run = "StopInstances: allowed"
        self.ec2.stop_instances(InstanceIds=[instance_id])
        self.changed = True
        self.step(f"Stopped {instance_id}.")
        after = self._instance_state(instance_id)
        if after not in ("stopping", "stopped"):
            raise self.fail(f"{instance_id} is {after} after StopInstances.")
        self.step(f"Verified: {instance_id} is {after}.")
        self.result.summary = f"Stopped {instance_id} (now {after}); its volumes are kept."

    def delete_volume(self) -> None:
        from botocore.exceptions import ClientError, WaiterError

        volume_id = self.spec.resource_id
        volume = self._volume(volume_id)
        if volume["State"] != "available":
            raise self.fail(
                f"{volume_id} is {volume['State']} now, not unattached; nothing was changed."
            )
        self.step(f"Checked: {volume_id} is unattached ({volume['Size']} GiB).")
        self.dry_run(
            "CreateSnapshot",
            lambda: self.ec2.create_snapshot(VolumeId=volume_id, DryRun=True),
        )
        self.dry_run(
            "DeleteVolume", lambda: self.ec2.delete_volume(VolumeId=volume_id, DryRun=True)
        )
        self.result.dry_run = "CreateSnapshot, DeleteVolume: allowed"
        reference = self.spec.reference or "Agentbot"
        snapshot = self.ec2.create_snapshot(
            VolumeId=volume_id,
            Description=f"{reference}: kept by Agentbot before deleting {volume_id}",
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [
                        {"Key": "Name", "Value": f"before-delete-{volume_id}"},
                        {"Key": "agentbot:deleted-volume", "Value": volume_id},
                    ],
                }
            ],
        )
        snapshot_id = snapshot["SnapshotId"]
        self.result.snapshot_id = snapshot_id
        self.changed = True
        self.step(f"Snapshot {snapshot_id} started.")
        try:
            self.ec2.get_waiter("snapshot_completed").wait(
                SnapshotIds=[snapshot_id],
                WaiterConfig={"Delay": SNAPSHOT_WAIT_DELAY, "MaxAttempts": SNAPSHOT_WAIT_ATTEMPTS},
            )
        except WaiterError as error:
            raise self.fail(
                f"Snapshot {snapshot_id} did not complete ({error}); {volume_id} was not deleted."
            ) from error
        self.step(f"Snapshot {snapshot_id} completed.")
        self.ec2.delete_volume(VolumeId=volume_id)
        self.step(f"Deleted {volume_id}.")
        try:
            remaining = self._volume(volume_id)
        except ClientError as error:
            if _code(error) != "InvalidVolume.NotFound":
                raise
            remaining = None
        if remaining is not None and remaining["State"] not in ("deleting", "deleted"):
            raise self.fail(f"{volume_id} is still {remaining['State']} after DeleteVolume.")
        self.step(f"Verified: {volume_id} is gone.")
        self.result.summary = (
            f"Deleted {volume_id} after snapshot {snapshot_id} (restore it with CreateVolume "
            "from that snapshot)."
        )

    def release_address(self) -> None:
        allocation_id = self.spec.resource_id
        address = self._address(allocation_id)
        if address is None:
            raise self.fail(f"{allocation_id} no longer exists; nothing was changed.")
        if address.get("AssociationId") or address.get("NetworkInterfaceId"):
            raise self.fail(
                f"{allocation_id} ({address.get('PublicIp')}) is associated now; nothing was "
                "changed."
            )
        self.step(
            f"Checked: {allocation_id} ({address.get('PublicIp')}) is associated with nothing."
        )
        self.dry_run(
            "ReleaseAddress",
            lambda: self.ec2.release_address(AllocationId=allocation_id, DryRun=True),
        )
        self.result.dry_run = "ReleaseAddress: allowed"
        self.ec2.release_address(AllocationId=allocation_id)
        self.changed = True
        self.step(f"Released {allocation_id}.")
        if self._address(allocation_id) is not None:
            raise self.fail(f"{allocation_id} is still allocated after ReleaseAddress.")
        self.step(f"Verified: {allocation_id} is released.")
        self.result.summary = f"Released Elastic IP {address.get('PublicIp')} ({allocation_id})."

    def migrate_gp3(self) -> None:
        volume_id = self.spec.resource_id
        volume = self._volume(volume_id)
        if volume["VolumeType"] != "gp2":
            raise self.fail(
                f"{volume_id} is {volume['VolumeType']} now, not gp2; nothing was changed."
            )
        iops, throughput = gp2_performance(volume["Size"])
        target_iops, target_throughput = max(3000, iops), max(125, throughput)
        self.step(
            f"Checked: {volume_id} is gp2, {volume['Size']} GiB; gp3 target {target_iops} IOPS, "
            f"{target_throughput} MB/s."
        )
        self.dry_run(
            "ModifyVolume",
            lambda: self.ec2.modify_volume(
                VolumeId=volume_id,
                VolumeType="gp3",
                Iops=target_iops,
                Throughput=target_throughput,
                DryRun=True,
            ),
        )
        self.result.dry_run = "ModifyVolume: allowed"
        self.ec2.modify_volume(
            VolumeId=volume_id, VolumeType="gp3", Iops=target_iops, Throughput=target_throughput
        )
        self.changed = True
        self.step(f"Modification of {volume_id} to gp3 started (the volume stays in use).")
        after = self._volume(volume_id)
        modifications = self.ec2.describe_volumes_modifications(VolumeIds=[volume_id]).get(
            "VolumesModifications", []
        )
        targets = {m.get("TargetVolumeType") for m in modifications}
        if after["VolumeType"] != "gp3" and "gp3" not in targets:
            raise self.fail(f"{volume_id} shows no modification to gp3 after ModifyVolume.")
        self.step(f"Verified: {volume_id} is {after['VolumeType']}, target gp3.")
        self.result.summary = (
            f"{volume_id} is moving from gp2 to gp3 ({target_iops} IOPS, {target_throughput} MB/s)."
        )

    # -- reads --------------------------------------------------------------------------

    def _instance_state(self, instance_id: str) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        for reservation in reservations:
            for instance in reservation.get("Instances", []):
                return str(instance["State"]["Name"])
        return "gone"

    def _volume(self, volume_id: str) -> Any:
        return self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]

    def _address(self, allocation_id: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            addresses = self.ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
        except ClientError as error:
            if _code(error) == "InvalidAllocationID.NotFound":
                return None
            raise
        return addresses[0] if addresses else None


def execute_action(ec2: EC2Client, spec: ActionSpec) -> ActionResult:
    """Carry out an action: check, dry run, change, verify.

    Args:
        ec2: An EC2 client for the action's account and region.
        spec: The action.

    Returns:
        What was done, step by step, with a one-line summary.

    Raises:
        ActionError: A step failed; its message says which and whether anything
            changed, and its `result` lists the steps done before.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    run = _Run(ec2, spec)
    steps = {
        ActionKind.STOP_INSTANCE: run.stop_instance,
        ActionKind.DELETE_VOLUME: run.delete_volume,
        ActionKind.RELEASE_ADDRESS: run.release_address,
        ActionKind.MIGRATE_GP3: run.migrate_gp3,
    }
    try:
        steps[spec.kind]()
    except ActionError:
        raise
    except (ClientError, BotoCoreError) as error:
        state = "a change may have been made" if run.changed else "nothing was changed"
        raise ActionError(
            f"AWS refused {spec.kind.value} on {spec.resource_id} ({_message(error)}); {state}.",
            run.result,
            changed=run.changed,
        ) from error
    return run.result
