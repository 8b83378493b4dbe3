"""Savings recommendations: what costs money and does nothing, with the evidence.

Read-only: it only calls Describe APIs and CloudWatch GetMetricData. Each finding
names its resource, the estimated monthly saving (list prices from
`agents.aws.prices`, per region), the steward answerable for it, and the evidence a
reviewer checks before approving a change:

* **idle instance**: running, and its hourly average CPU over the last `idle_days`
  stayed below `idle_cpu_percent` on average, with data on at least 80% of those days
  (an instance launched yesterday is not "idle for two weeks"). Saving: its on-demand
  price (stopping keeps paying for its volumes).
* **long-stopped instance**: stopped for more than `stopped_days` (from the date EC2
  records in the state-transition reason). Saving: its volumes, which a stopped
  instance still pays for. No automatic action: terminating is for a human to decide.
* **unattached volume**: status `available`. Saving: the volume, less the snapshot the
  action keeps before deleting it.
* **unused Elastic IP**: allocated but associated with nothing. Saving: one public
  IPv4 address.
* **old snapshot**: owned by the account, older than `snapshot_age_days`, and not
  backing one of the account's own images. Saving: at most its size times the
  snapshot price (snapshots store changed blocks only). Advice only.
* **gp2 volume**: in use as gp2; gp3 with at least gp2's baseline IOPS and throughput
  costs less. Saving: the difference.

Recommendations saving less than `min_monthly_savings` (a dollar by default) are left
out; ones the price table cannot price (an unknown instance type) are kept, unpriced.

Several EC2-family resources have no steward of their own (volumes, snapshots,
addresses); they answer to the EC2 instance steward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agents.aws.config import AwsAccount, AwsConfig, ResourceType, Service
from agents.aws.cost_config import ActionKind, OptimizeConfig
from agents.aws.prices import PriceTable, gp2_performance
from agents.aws.scanner import resolve_scope
from agents.aws.sessions import AccountSessions, AssumeRoleError

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef, VolumeTypeDef

# GetMetricData takes at most 500 queries per call.
_QUERIES_PER_CALL = 500
_HOUR = 3600
_IDLE_COVERAGE = 0.8
_STOPPED_AT = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")
STEWARD_TYPE = ResourceType.EC2_INSTANCE


class Finding(StrEnum):
    """Kinds of waste the scan recognises."""

    IDLE_INSTANCE = "idle_instance"
    STOPPED_INSTANCE = "stopped_instance"
    UNATTACHED_VOLUME = "unattached_volume"
    UNUSED_ADDRESS = "unused_address"
    OLD_SNAPSHOT = "old_snapshot"
    GP2_VOLUME = "gp2_volume"

    @property
    def label(self) -> str:
        """How the finding reads in a report."""
        return _TITLES[self]


_TITLES = {
    Finding.IDLE_INSTANCE: "Idle instance",
    Finding.STOPPED_INSTANCE: "Long-stopped instance",
    Finding.UNATTACHED_VOLUME: "Unattached volume",
    Finding.UNUSED_ADDRESS: "Unused Elastic IP",
    Finding.OLD_SNAPSHOT: "Old snapshot",
    Finding.GP2_VOLUME: "gp2 volume (gp3 is cheaper)",
}

# The change each finding can become, if any.
ACTION_OF: dict[Finding, ActionKind | None] = {
    Finding.IDLE_INSTANCE: ActionKind.STOP_INSTANCE,
    Finding.STOPPED_INSTANCE: None,
    Finding.UNATTACHED_VOLUME: ActionKind.DELETE_VOLUME,
    Finding.UNUSED_ADDRESS: ActionKind.RELEASE_ADDRESS,
    Finding.OLD_SNAPSHOT: None,
    Finding.GP2_VOLUME: ActionKind.MIGRATE_GP3,
}


class Recommendation(BaseModel):
    """One saving, with what a reviewer needs to believe it."""

    model_config = ConfigDict(frozen=True)

    finding: Finding
    account: str
    account_id: str | None
    region: str
    resource_id: str
    name: str = ""
    monthly_savings: float | None
    evidence: str
    steward: str
    autonomy: int
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def action(self) -> ActionKind | None:
        """The action this recommendation can become, if any."""
        return ACTION_OF[self.finding]

    @property
    def label(self) -> str:
        """`vol-0abc (db-scratch)`."""
        return f"{self.resource_id} ({self.name})" if self.name else self.resource_id


@dataclass
class OptimizeReport:
    """Every recommendation found, and the places that could not be scanned."""

    recommendations: list[Recommendation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    units: int = 0

    @property
    def total_savings(self) -> float:
        """Sum of the estimated monthly savings that could be priced."""
        return sum(r.monthly_savings or 0.0 for r in self.recommendations)


@dataclass(frozen=True)
class _Unit:
    account: AwsAccount
    region: str


def _name(tags: Sequence[Any] | None) -> str:
    for tag in tags or []:
        if tag.get("Key") == "Name":
            return str(tag.get("Value", ""))
    return ""


def _error_text(error: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    return str(error) or type(error).__name__


def stopped_since(reason: str) -> datetime | None:
    """When an instance stopped, from EC2's `User initiated (2024-05-01 10:00:00 GMT)`."""
    match = _STOPPED_AT.search(reason or "")
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


class _Scanner:
    """One optimisation scan across accounts and regions."""

    def __init__(
        self,
        sessions: AccountSessions,
        aws: AwsConfig,
        config: OptimizeConfig,
        now: datetime,
    ) -> None:
        self.sessions = sessions
        self.aws = aws
        self.config = config
        self.now = now
        steward = aws.steward_for(STEWARD_TYPE)
        self.steward = steward.name
        self.autonomy = steward.autonomy

    def scan_unit(self, unit: _Unit) -> list[Recommendation]:
        clients = self.sessions.clients(unit.account, unit.region)
        ec2 = clients.ec2()
        prices = self.config.price_table(unit.region)
        instances = self._instances(ec2)
        volumes = self._volumes(ec2)
        found: list[Recommendation] = []
        running = [i for i in instances if i["State"]["Name"] == "running"]
        if running:
            found += self._idle(unit, clients.cloudwatch(), running, prices)
        found += self._stopped(unit, instances, volumes, prices)
        found += self._volume_findings(unit, volumes, prices)
        found += self._addresses(unit, ec2, prices)
        found += self._snapshots(unit, ec2, prices)
        return found

    def _make(
        self, unit: _Unit, finding: Finding, resource_id: str, **values: Any
    ) -> Recommendation:
        return Recommendation(
            finding=finding,
            account=unit.account.name,
            account_id=unit.account.effective_account_id,
            region=unit.region,
            resource_id=resource_id,
            steward=self.steward,
            autonomy=self.autonomy,
            **values,
        )

    @staticmethod
    def _instances(ec2: EC2Client) -> list[InstanceTypeDef]:
        found: list[InstanceTypeDef] = []
        for page in ec2.get_paginator("describe_instances").paginate():
            for reservation in page.get("Reservations", []):
                found.extend(reservation.get("Instances", []))
        return found

    @staticmethod
    def _volumes(ec2: EC2Client) -> list[VolumeTypeDef]:
        found: list[VolumeTypeDef] = []
        for page in ec2.get_paginator("describe_volumes").paginate():
            found.extend(page.get("Volumes", []))
        return found

    def _idle(
        self,
        unit: _Unit,
        cloudwatch: CloudWatchClient,
        running: list[InstanceTypeDef],
        prices: PriceTable,
    ) -> list[Recommendation]:
        days = self.config.idle_days
        start = self.now - timedelta(days=days)
        samples: dict[str, tuple[list[datetime], list[float]]] = {}
        for offset in range(0, len(running), _QUERIES_PER_CALL):
            batch = running[offset : offset + _QUERIES_PER_CALL]
            queries: list[MetricDataQueryTypeDef] = [
                {
                    "Id": f"cpu{n}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/EC2",
                            "MetricName": "CPUUtilization",
                            "Dimensions": [{"Name": "InstanceId", "Value": i["InstanceId"]}],
                        },
                        "Period": _HOUR,
                        "Stat": "Average",
                    },
                }
                for n, i in enumerate(batch)
            ]
            paginator = cloudwatch.get_paginator("get_metric_data")
            for page in paginator.paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=self.now
            ):
                for result in page.get("MetricDataResults", []):
                    instance_id = batch[int(result["Id"].removeprefix("cpu"))]["InstanceId"]
                    times, values = samples.setdefault(instance_id, ([], []))
                    times.extend(result.get("Timestamps", []))
                    values.extend(result.get("Values", []))
        found = []
        needed_days = math.ceil(days * _IDLE_COVERAGE)
        for instance in running:
            times, values = samples.get(instance["InstanceId"], ([], []))
            covered = {t.date() for t in times}
            if not values or len(covered) < needed_days:
                continue
            average = sum(values) / len(values)
            if average >= self.config.idle_cpu_percent:
                continue
            instance_type = instance.get("InstanceType", "")
            found.append(
                self._make(
                    unit,
                    Finding.IDLE_INSTANCE,
                    instance["InstanceId"],
                    name=_name(instance.get("Tags")),
                    monthly_savings=prices.instance_month(instance_type),
                    evidence=(
                        f"average CPU {average:.1f}% (peak hourly {max(values):.1f}%) over the "
                        f"last {days} days, {len(values)} hourly samples on {len(covered)} days; "
                        f"threshold {self.config.idle_cpu_percent:g}%"
                    ),
                    details={
                        "instance_type": instance_type,
                        "average_cpu": round(average, 2),
                        "peak_cpu": round(max(values), 2),
                    },
                )
            )
        return found

    def _stopped(
        self,
        unit: _Unit,
        instances: list[InstanceTypeDef],
        volumes: list[VolumeTypeDef],
        prices: PriceTable,
    ) -> list[Recommendation]:
        found = []
        limit = timedelta(days=self.config.stopped_days)
        for instance in instances:
            if instance["State"]["Name"] != "stopped":
                continue
            since = stopped_since(instance.get("StateTransitionReason", ""))
            if since is None or self.now - since <= limit:
                continue
            attached = [
                v
                for v in volumes
                if any(
                    a.get("InstanceId") == instance["InstanceId"] for a in v.get("Attachments", [])
                )
            ]
            costs = [
                prices.volume_month(v["VolumeType"], v["Size"], v.get("Iops"), v.get("Throughput"))
                for v in attached
            ]
            known = [c for c in costs if c is not None]
            size = sum(v["Size"] for v in attached)
            found.append(
                self._make(
                    unit,
                    Finding.STOPPED_INSTANCE,
                    instance["InstanceId"],
                    name=_name(instance.get("Tags")),
                    monthly_savings=sum(known) if known else None,
                    evidence=(
                        f"stopped since {since:%Y-%m-%d} ({(self.now - since).days} days); "
                        f"{len(attached)} attached volume(s), {size} GiB, still billed"
                    ),
                    details={
                        "instance_type": instance.get("InstanceType", ""),
                        "stopped_since": since.isoformat(),
                        "volumes": [v["VolumeId"] for v in attached],
                    },
                )
            )
        return found

    def _volume_findings(
        self, unit: _Unit, volumes: list[VolumeTypeDef], prices: PriceTable
    ) -> list[Recommendation]:
        found = []
        for volume in volumes:
            size = volume["Size"]
            kind = volume["VolumeType"]
            name = _name(volume.get("Tags"))
            details = {"size_gb": size, "volume_type": kind, "iops": volume.get("Iops")}
            monthly = prices.volume_month(kind, size, volume.get("Iops"), volume.get("Throughput"))
            if volume["State"] == "available":
                created = volume.get("CreateTime")
                age = f", created {created:%Y-%m-%d}" if created else ""
                savings = None if monthly is None else monthly - prices.snapshot_month(size)
                found.append(
                    self._make(
                        unit,
                        Finding.UNATTACHED_VOLUME,
                        volume["VolumeId"],
                        name=name,
                        monthly_savings=savings,
                        evidence=(
                            f"{size} GiB {kind}, attached to nothing{age}; costs "
                            f"{_money(monthly)}/month, and the snapshot kept before deleting "
                            f"it at most {_money(prices.snapshot_month(size))}/month"
                        ),
                        details=details,
                    )
                )
            elif kind == "gp2" and volume["State"] == "in-use":
                iops, throughput = gp2_performance(size)
                gp3_iops = max(3000, iops)
                gp3_throughput = max(125, throughput)
                gp3 = prices.volume_month("gp3", size, gp3_iops, gp3_throughput)
                if monthly is None or gp3 is None or monthly - gp3 < 0.01:
                    continue
                found.append(
                    self._make(
                        unit,
                        Finding.GP2_VOLUME,
                        volume["VolumeId"],
                        name=name,
                        monthly_savings=monthly - gp3,
                        evidence=(
                            f"{size} GiB gp2 ({iops} IOPS, {throughput} MB/s baseline) costs "
                            f"{_money(monthly)}/month; gp3 with {gp3_iops} IOPS and "
                            f"{gp3_throughput} MB/s costs {_money(gp3)}/month"
                        ),
                        details={**details, "gp3_iops": gp3_iops, "gp3_throughput": gp3_throughput},
                    )
                )
        return found

    def _addresses(self, unit: _Unit, ec2: EC2Client, prices: PriceTable) -> list[Recommendation]:
        found = []
        for address in ec2.describe_addresses().get("Addresses", []):
            if address.get("AssociationId") or address.get("NetworkInterfaceId"):
                continue
            allocation = address.get("AllocationId") or address.get("PublicIp", "")
            found.append(
                self._make(
                    unit,
                    Finding.UNUSED_ADDRESS,
                    allocation,
                    name=address.get("PublicIp", ""),
                    monthly_savings=prices.address_month(),
                    evidence=(
                        f"Elastic IP {address.get('PublicIp', '?')} is associated with nothing; "
                        "AWS bills every public IPv4 address by the hour"
                    ),
                    details={"public_ip": address.get("PublicIp"), "allocation_id": allocation},
                )
            )
        return found

    def _snapshots(self, unit: _Unit, ec2: EC2Client, prices: PriceTable) -> list[Recommendation]:
        in_images: set[str] = set()
        for image in ec2.describe_images(Owners=["self"]).get("Images", []):
            for mapping in image.get("BlockDeviceMappings", []):
                backing = mapping.get("Ebs", {}).get("SnapshotId")
                if backing:
                    in_images.add(backing)
        limit = timedelta(days=self.config.snapshot_age_days)
        found = []
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
            for snapshot in page.get("Snapshots", []):
                started = snapshot.get("StartTime")
                snapshot_id = snapshot["SnapshotId"]
                if started is None or snapshot_id in in_images or self.now - started <= limit:
                    continue
                size = snapshot.get("VolumeSize", 0)
                found.append(
                    self._make(
                        unit,
                        Finding.OLD_SNAPSHOT,
                        snapshot_id,
                        name=_name(snapshot.get("Tags")),
                        monthly_savings=prices.snapshot_month(size),
                        evidence=(
                            f"taken {started:%Y-%m-%d} ({(self.now - started).days} days ago) "
                            f"of a {size} GiB volume; not used by any of the account's images"
                        ),
                        details={"size_gb": size, "volume_id": snapshot.get("VolumeId")},
                    )
                )
        return found


def _money(amount: float | None) -> str:
    return "an unknown amount" if amount is None else f"${amount:,.2f}"


def find_savings(
    base_session: boto3.Session,
    aws: AwsConfig,
    config: OptimizeConfig,
    *,
    sessions: AccountSessions | None = None,
    now: datetime | None = None,
) -> OptimizeReport:
    """Scan every configured account and region for savings, in parallel.

    Args:
        base_session: The bot's own AWS session.
        aws: Accounts, regions, stewards, timeouts.
        config: Thresholds and prices.
        sessions: Credentials to reuse; a fresh set by default.
        now: The moment "idle for 14 days" is measured from.

    Returns:
        Recommendations, largest saving first (unpriced ones last), and one error
        line per account and region that could not be scanned.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    now = now or datetime.now(UTC)
    sessions = sessions or AccountSessions(base_session, aws)
    scope = resolve_scope(aws, base_session, services=[Service.EC2])
    units = [_Unit(account, region) for account in scope.accounts for region in scope.regions]
    scanner = _Scanner(sessions, aws, config, now)
    report = OptimizeReport(units=len(units))

    def run(unit: _Unit) -> list[Recommendation] | str:
        try:
            return scanner.scan_unit(unit)
        except (ClientError, BotoCoreError, AssumeRoleError) as error:
            return f"{unit.account.name}/{unit.region}: {_error_text(error)}"

    with ThreadPoolExecutor(max_workers=min(aws.max_workers, max(1, len(units)))) as pool:
        for outcome in pool.map(run, units):
            if isinstance(outcome, str):
                report.errors.append(outcome)
            else:
                report.recommendations.extend(outcome)
    # Pennies are noise: a recommendation must be worth a reviewer's minute.
    report.recommendations = [
        r
        for r in report.recommendations
        if r.monthly_savings is None or r.monthly_savings >= config.min_monthly_savings
    ]
    report.recommendations.sort(
        key=lambda r: (r.monthly_savings is None, -(r.monthly_savings or 0.0), r.resource_id)
    )
    return report


def render_text(report: OptimizeReport) -> str:
    """The recommendations for a terminal."""
    lines = [
        f"AWS savings: {len(report.recommendations)} recommendation(s), about "
        f"{_money(report.total_savings)}/month (estimated at list prices)",
        "",
    ]
    for rec in report.recommendations:
        action = f" · action: {rec.action.value}" if rec.action else " · advice only"
        lines.append(
            f"- {rec.finding.label}: {rec.label} in {rec.account}/{rec.region} — saves "
            f"{_money(rec.monthly_savings)}/month · steward {rec.steward}{action}"
        )
        lines.append(f"    {rec.evidence}")
    if not report.recommendations:
        lines.append("Nothing to save: no idle, unattached, unused or outdated resources found.")
    for error in report.errors:
        lines.append(f"! not scanned: {error}")
    return "\n".join(lines) + "\n"
