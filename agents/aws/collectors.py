"""One collector per service: list resources and judge their health.

Every collector is a plain function of typed boto3 clients and a
`CollectContext` (which account and region, who stewards what). It only calls
read-only Describe/List/Get APIs, always through paginators where the API has
one, and lets API errors propagate: the scanner turns them into partial failures.

Health rules, from most to least severe. `unhealthy` means "not doing its job
now, someone should look"; `degraded` means "working below plan, or in a state
that is often deliberate but worth a glance"; `unknown` means the signal was
missing.

* EC2 instance: running with an instance, system or attached-EBS status check
  `impaired` -> unhealthy. Stopped, stopping, shutting down or pending ->
  degraded (a stopped instance serves nothing and still pays for its volumes,
  but is usually intentional, so it does not page anyone), as are checks still
  `initializing` and scheduled maintenance events. Checks `insufficient-data`
  or absent -> unknown. Terminated instances are left out: they are gone.
* RDS instance: `available` -> healthy; a failure status (failed, storage-full,
  incompatible-*, inaccessible-encryption-credentials*, restore-error,
  insufficient-capacity) -> unhealthy; anything else (stopped, modifying,
  backing-up, rebooting, ...) -> degraded.
* Lambda function: over the metrics window, errors >= 50% of invocations ->
  unhealthy; any errors or throttles -> degraded; State Failed -> unhealthy.
  When CloudWatch cannot be read the functions are still listed, as unknown.
* ECS service: running >= desired -> healthy; none running of a non-zero
  desired count, or a failed deployment -> unhealthy; some running -> degraded.
* Target group: all registered targets healthy -> healthy; none healthy ->
  unhealthy; some -> degraded. An empty group behind a load balancer is
  unhealthy (the balancer has nowhere to send traffic); an unattached empty
  one is healthy.
* Auto Scaling group: in-service healthy instances vs desired capacity, as ECS.
* S3 bucket: no per-bucket health API exists; a bucket that lists is healthy.
* DynamoDB table: ACTIVE -> healthy; CREATING/UPDATING/ARCHIVING -> degraded;
  DELETING, ARCHIVED, INACCESSIBLE_ENCRYPTION_CREDENTIALS -> unhealthy.
* CloudWatch alarm: only alarms in ALARM are collected, each unhealthy with the
  alarm's own state reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from agents.aws.config import AwsConfig, ResourceType

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceStatusSummaryTypeDef, InstanceStatusTypeDef
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import ServiceTypeDef
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client

# Region label for records and scan units that are account-wide rather than regional.
GLOBAL_REGION = "global"

# GetMetricData accepts at most 500 queries per call; three per function.
_METRIC_QUERIES_PER_CALL = 500
_LAMBDA_METRICS = ("Invocations", "Errors", "Throttles")
_LAMBDA_UNHEALTHY_ERROR_RATE = 0.5
# DescribeServices takes at most 10 services per call.
_ECS_DESCRIBE_BATCH = 10
# How many failing members (targets, instances) a reason names before "and N more".
_REASON_EXAMPLES = 3

_RDS_UNHEALTHY = frozenset(
    {
        "failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "insufficient-capacity",
        "restore-error",
        "storage-full",
    }
)
_DYNAMODB_DEGRADED = frozenset({"CREATING", "UPDATING", "ARCHIVING"})


class Health(StrEnum):
    """Health verdict of one resource."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"

    @property
    def severity(self) -> int:
        """Rank for ordering: higher is worse (unhealthy 3 ... healthy 0)."""
        return _SEVERITY[self]


_SEVERITY = {Health.HEALTHY: 0, Health.UNKNOWN: 1, Health.DEGRADED: 2, Health.UNHEALTHY: 3}


class ResourceRecord(BaseModel):
    """One resource as seen by one scan."""

    model_config = ConfigDict(frozen=True)

    id: str
    arn: str
    type: ResourceType
    account: str
    region: str
    state: str
    health: Health
    reason: str = ""
    steward: str
    autonomy: int = Field(ge=0, le=10)
    # Human label when it differs from the id (an instance's Name tag, say).
    name: str = ""

    @property
    def key(self) -> tuple[str, str, ResourceType, str]:
        """Identity across scans: (account, region, type, id)."""
        return (self.account, self.region, self.type, self.id)

    @property
    def label(self) -> str:
        """The name and id, for people."""
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id


@dataclass(frozen=True)
class CollectContext:
    """Where a collector is looking and how to label what it finds."""

    account: str
    region: str
    config: AwsConfig
    now: datetime

    def record(
        self,
        resource_type: ResourceType,
        *,
        id: str,
        arn: str,
        state: str,
        health: Health,
        reason: str = "",
        name: str = "",
        region: str | None = None,
    ) -> ResourceRecord:
        """Build a record in this context, with the type's steward attached.

        Args:
            resource_type: Kind of resource; selects the steward.
            id: Identifier unique within (account, region, type).
            arn: The resource's ARN.
            state: The service's own state word (running, available, ...).
            health: The verdict.
            reason: Why the verdict is not healthy; empty when healthy.
            name: Optional human label.
            region: Overrides the context's region (for account-wide services).

        Returns:
            The record.
        """
        steward = self.config.steward_for(resource_type)
        return ResourceRecord(
            id=id,
            arn=arn,
            type=resource_type,
            account=self.account,
            region=region or self.region,
            state=state,
            health=health,
            reason=reason,
            steward=steward.name,
            autonomy=steward.autonomy,
            name=name,
        )


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_REASON_EXAMPLES])
    extra = len(items) - _REASON_EXAMPLES
    return f"{shown} and {extra} more" if extra > 0 else shown


def _worst(first: Health, second: Health) -> Health:
    return first if first.severity >= second.severity else second


def _capacity_health(available: int, desired: int) -> Health:
    if desired <= 0 or available >= desired:
        return Health.HEALTHY
    return Health.UNHEALTHY if available == 0 else Health.DEGRADED


def _error_text(error: ClientError | BotoCoreError) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return str(details.get("Code", "Error"))
    return type(error).__name__


# --- EC2 ---------------------------------------------------------------------


def collect_ec2(ec2: EC2Client, ctx: CollectContext) -> list[ResourceRecord]:
    """Collect EC2 instances with state and status checks.

    Args:
        ec2: EC2 client for the context's account and region.
        ctx: Collection context.

    Returns:
        One record per instance that is not terminated.
    """
    statuses: dict[str, InstanceStatusTypeDef] = {}
    status_pages = ec2.get_paginator("describe_instance_status").paginate(IncludeAllInstances=True)
    for status_page in status_pages:
        for status in status_page.get("InstanceStatuses", []):
            statuses[status.get("InstanceId", "")] = status

    records = []
    live_states = ["pending", "running", "shutting-down", "stopping", "stopped"]
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": live_states}]
    )
    for page in pages:
        for reservation in page.get("Reservations", []):
            owner = reservation.get("OwnerId", "")
            for instance in reservation.get("Instances", []):
                instance_id = instance.get("InstanceId", "")
                state = instance.get("State", {}).get("Name", "unknown")
                name = next(
                    (
                        t.get("Value", "")
                        for t in instance.get("Tags", [])
                        if t.get("Key") == "Name"
                    ),
                    "",
                )
                health, reason = _ec2_health(
                    state,
                    instance.get("StateReason", {}).get("Message")
                    or instance.get("StateTransitionReason", ""),
                    statuses.get(instance_id),
                )
                arn_prefix = f"arn:{ec2.meta.partition}:ec2:{ctx.region}:{owner}"
                records.append(
                    ctx.record(
                        ResourceType.EC2_INSTANCE,
                        id=instance_id,
                        arn=f"{arn_prefix}:instance/{instance_id}",
                        state=state,
                        health=health,
                        reason=reason,
                        name=name,
                    )
                )
    return records


def _ec2_health(
    state: str, state_reason: str, status: InstanceStatusTypeDef | None
) -> tuple[Health, str]:
    if state in ("stopped", "stopping"):
        return Health.DEGRADED, f"{state}: {state_reason}" if state_reason else state
    if state == "shutting-down":
        return Health.DEGRADED, "shutting down"
    if state == "pending":
        return Health.DEGRADED, "starting"
    if status is None:
        return Health.UNKNOWN, "no status checks reported"

    checks: list[tuple[str, InstanceStatusSummaryTypeDef]] = [
        ("system", status.get("SystemStatus", {})),
        ("instance", status.get("InstanceStatus", {})),
    ]
    ebs = status.get("AttachedEbsStatus", {})
    if ebs.get("Status"):
        checks.append(("attached EBS", {"Status": ebs["Status"]}))

    impaired = []
    for label, summary in checks:
        if summary.get("Status") == "impaired":
            failed = [
                f"{detail.get('Name', 'check')} {detail.get('Status', 'failed')}"
                for detail in summary.get("Details", [])
                if detail.get("Status") != "passed"
            ]
            suffix = f" ({', '.join(failed)})" if failed else ""
            impaired.append(f"{label} status check impaired{suffix}")
    if impaired:
        return Health.UNHEALTHY, "; ".join(impaired)

    pending_events = [
        f"scheduled {event.get('Code', 'event')}"
        + (f" from {event['NotBefore']:%Y-%m-%d %H:%M} UTC" if "NotBefore" in event else "")
        for event in status.get("Events", [])
        if not event.get("Description", "").startswith(("[Completed]", "[Canceled]"))
    ]
    statuses = {summary.get("Status") for _, summary in checks}
    if "initializing" in statuses:
        return Health.DEGRADED, "status checks initializing"
    if pending_events:
        return Health.DEGRADED, "; ".join(pending_events)
    if statuses <= {"ok"}:
        return Health.HEALTHY, ""
    missing = ", ".join(sorted(str(s) for s in statuses - {"ok"}))
    return Health.UNKNOWN, f"status checks {missing}"


# --- RDS ---------------------------------------------------------------------


def collect_rds(rds: RDSClient, ctx: CollectContext) -> list[ResourceRecord]:
    """Collect RDS DB instances (Aurora members included) by status.

    Args:
        rds: RDS client for the context's account and region.
        ctx: Collection context.

    Returns:
        One record per DB instance.
    """
    records = []
    for page in rds.get_paginator("describe_db_instances").paginate():
        for db in page.get("DBInstances", []):
            status = db.get("DBInstanceStatus", "unknown")
            if status == "available":
                health, reason = Health.HEALTHY, ""
            elif status in _RDS_UNHEALTHY:
                health, reason = Health.UNHEALTHY, f"status {status}"
            else:
                health, reason = Health.DEGRADED, f"status {status}"
            records.append(
                ctx.record(
                    ResourceType.RDS_INSTANCE,
                    id=db.get("DBInstanceIdentifier", ""),
                    arn=db.get("DBInstanceArn", ""),
                    state=status,
                    health=health,
                    reason=reason,
                )
            )
    return records


# --- Lambda ------------------------------------------------------------------


def collect_lambda(
    lambda_client: LambdaClient, cloudwatch: CloudWatchClient, ctx: CollectContext
) -> list[ResourceRecord]:
    """Collect Lambda functions with error and throttle sums from CloudWatch.

    Args:
        lambda_client: Lambda client for the context's account and region.
        cloudwatch: CloudWatch client for the same account and region.
        ctx: Collection context; `config.metrics_window_minutes` sets the window.

    Returns:
        One record per function ($LATEST).
    """
    functions = [
        function
        for page in lambda_client.get_paginator("list_functions").paginate()
        for function in page.get("Functions", [])
    ]
    names = [function.get("FunctionName", "") for function in functions]
    window = timedelta(minutes=ctx.config.metrics_window_minutes)
    metrics_error = ""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sums = _lambda_metric_sums(cloudwatch, names, end=ctx.now, window=window)
    except (ClientError, BotoCoreError) as error:
        # Listing worked, so the functions are still reported, just without a verdict.
        sums, metrics_error = {}, f"metrics unavailable: {_error_text(error)}"

    minutes = ctx.config.metrics_window_minutes
    records = []
    for function, name in zip(functions, names, strict=True):
        invocations, errors, throttles = sums.get(name, (0.0, 0.0, 0.0))
        reasons: list[str] = []
        health = Health.HEALTHY
        if function.get("State") == "Failed":
            health = Health.UNHEALTHY
            reasons.append(f"state Failed: {function.get('StateReason', '')}".rstrip(": "))
        elif function.get("State") == "Pending":
            health = Health.DEGRADED
            reasons.append("state Pending")
        if function.get("LastUpdateStatus") == "Failed":
            health = _worst(health, Health.DEGRADED)
            reasons.append("last update failed")
        if errors > 0:
            rate = errors / invocations if invocations else 1.0
            verdict = Health.UNHEALTHY if rate >= _LAMBDA_UNHEALTHY_ERROR_RATE else Health.DEGRADED
            health = _worst(health, verdict)
            of = f" of {invocations:g} invocations ({rate:.0%})" if invocations else ""
            reasons.append(f"{errors:g} errors{of} in the last {minutes} min")
        if throttles > 0:
            health = _worst(health, Health.DEGRADED)
            reasons.append(f"{throttles:g} throttles in the last {minutes} min")
        if metrics_error and health is Health.HEALTHY:
            health = Health.UNKNOWN
            reasons.append(metrics_error)
        records.append(
            ctx.record(
                ResourceType.LAMBDA_FUNCTION,
                id=name,
                arn=function.get("FunctionArn", ""),
                # ListFunctions omits State on real AWS; only GetFunction returns it.
                state=str(function.get("State", "listed")),
                health=health,
                reason="; ".join(reasons),
            )
        )
    return records


def _lambda_metric_sums(
    cloudwatch: CloudWatchClient, names: Sequence[str], *, end: datetime, window: timedelta
) -> dict[str, tuple[float, float, float]]:
    """Sum Invocations, Errors and Throttles per function over the window."""
    per_call = _METRIC_QUERIES_PER_CALL // len(_LAMBDA_METRICS)
    totals: dict[str, list[float]] = {name: [0.0, 0.0, 0.0] for name in names}
    period = max(60, int(window.total_seconds()) // 60 * 60)
    for start in range(0, len(names), per_call):
        batch = names[start : start + per_call]
        queries: list[MetricDataQueryTypeDef] = [
            {
                # Query ids must start with a lower-case letter; the index maps back.
                "Id": f"m{index}_{metric_index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "FunctionName", "Value": name}],
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for index, name in enumerate(batch)
            for metric_index, metric in enumerate(_LAMBDA_METRICS)
        ]
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=end - window, EndTime=end
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                index_text, metric_text = result.get("Id", "m0_0")[1:].split("_")
                name = batch[int(index_text)]
                totals[name][int(metric_text)] += sum(result.get("Values", []))
    return {name: (t[0], t[1], t[2]) for name, t in totals.items()}


# --- ECS ---------------------------------------------------------------------


def collect_ecs(ecs: ECSClient, ctx: CollectContext) -> list[ResourceRecord]:
    """Collect ECS services, comparing running with desired task counts.

    Args:
        ecs: ECS client for the context's account and region.
        ctx: Collection context.

    Returns:
        One record per service, with id `cluster/service`.
    """
    records = []
    clusters = [
        arn
        for page in ecs.get_paginator("list_clusters").paginate()
        for arn in page.get("clusterArns", [])
    ]
    for cluster_arn in clusters:
        cluster_name = cluster_arn.rsplit("/", 1)[-1]
        service_arns = [
            arn
            for page in ecs.get_paginator("list_services").paginate(cluster=cluster_arn)
            for arn in page.get("serviceArns", [])
        ]
        for start in range(0, len(service_arns), _ECS_DESCRIBE_BATCH):
            batch = service_arns[start : start + _ECS_DESCRIBE_BATCH]
            described = ecs.describe_services(cluster=cluster_arn, services=batch)
            for service in described.get("services", []):
                records.append(_ecs_record(service, cluster_name, ctx))
    return records


def _ecs_record(service: ServiceTypeDef, cluster_name: str, ctx: CollectContext) -> ResourceRecord:
    desired = int(service.get("desiredCount", 0))
    running = int(service.get("runningCount", 0))
    pending = int(service.get("pendingCount", 0))
    status = str(service.get("status", "ACTIVE"))
    health = _capacity_health(running, desired)
    reasons = []
    if health is not Health.HEALTHY:
        pending_text = f", {pending} pending" if pending else ""
        reasons.append(f"{running}/{desired} tasks running{pending_text}")
    failed = [d for d in service.get("deployments", []) if d.get("rolloutState") == "FAILED"]
    if failed:
        health = Health.UNHEALTHY
        reasons.append(f"deployment failed: {failed[0].get('rolloutStateReason', '')}".rstrip(": "))
    if status == "DRAINING":
        health = _worst(health, Health.DEGRADED)
        reasons.append("service draining")
    name = str(service.get("serviceName", ""))
    return ctx.record(
        ResourceType.ECS_SERVICE,
        id=f"{cluster_name}/{name}",
        arn=str(service.get("serviceArn", "")),
        state=f"{status.lower()} {running}/{desired}",
        health=health,
        reason="; ".join(reasons),
        name=name,
    )


# --- ELBv2 -------------------------------------------------------------------


def collect_elbv2(elbv2: ElasticLoadBalancingv2Client, ctx: CollectContext) -> list[ResourceRecord]:
    """Collect ELBv2 target groups with the health of their registered targets.

    Args:
        elbv2: Elastic Load Balancing v2 client for the context's account and region.
        ctx: Collection context.

    Returns:
        One record per target group.
    """
    records = []
    for page in elbv2.get_paginator("describe_target_groups").paginate():
        for group in page.get("TargetGroups", []):
            arn = group.get("TargetGroupArn", "")
            descriptions = elbv2.describe_target_health(TargetGroupArn=arn).get(
                "TargetHealthDescriptions", []
            )
            healthy = 0
            failing = []
            for description in descriptions:
                target_health = description.get("TargetHealth", {})
                target_state = target_health.get("State", "unavailable")
                if target_state == "healthy":
                    healthy += 1
                    continue
                code = target_health.get("Reason")
                target_id = description.get("Target", {}).get("Id", "?")
                failing.append(f"{target_id} {target_state}" + (f" ({code})" if code else ""))
            total = len(descriptions)
            attached = bool(group.get("LoadBalancerArns"))
            if total == 0:
                health = Health.UNHEALTHY if attached else Health.HEALTHY
                reason = "no registered targets behind a load balancer" if attached else ""
            else:
                health = _capacity_health(healthy, total)
                reason = (
                    f"{healthy}/{total} targets healthy: {_examples(failing)}" if failing else ""
                )
            records.append(
                ctx.record(
                    ResourceType.TARGET_GROUP,
                    id=group.get("TargetGroupName", arn),
                    arn=arn,
                    state=f"{healthy}/{total} healthy",
                    health=health,
                    reason=reason,
                )
            )
    return records


# --- Auto Scaling ------------------------------------------------------------


def collect_autoscaling(
    autoscaling: AutoScalingClient, ctx: CollectContext
) -> list[ResourceRecord]:
    """Collect Auto Scaling groups, comparing healthy in-service instances with desired.

    Args:
        autoscaling: Auto Scaling client for the context's account and region.
        ctx: Collection context.

    Returns:
        One record per group.
    """
    records = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page.get("AutoScalingGroups", []):
            desired = group.get("DesiredCapacity", 0)
            instances = group.get("Instances", [])
            serving = [
                i
                for i in instances
                if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"
            ]
            not_serving = [
                f"{i.get('InstanceId', '?')} {i.get('LifecycleState', '?')}/"
                f"{i.get('HealthStatus', '?')}"
                for i in instances
                if i not in serving
            ]
            health = _capacity_health(len(serving), desired)
            reasons = []
            if health is not Health.HEALTHY:
                detail = f": {_examples(not_serving)}" if not_serving else ""
                reasons.append(f"{len(serving)}/{desired} instances in service and healthy{detail}")
            if group.get("Status"):
                # Only set while the group is being deleted.
                health = _worst(health, Health.DEGRADED)
                reasons.append(str(group.get("Status")))
            name = group.get("AutoScalingGroupName", "")
            records.append(
                ctx.record(
                    ResourceType.AUTOSCALING_GROUP,
                    id=name,
                    arn=group.get("AutoScalingGroupARN", ""),
                    state=f"{len(serving)}/{desired} in service",
                    health=health,
                    reason="; ".join(reasons),
                )
            )
    return records


# --- S3 ----------------------------------------------------------------------


def collect_s3(s3: S3Client, ctx: CollectContext) -> list[ResourceRecord]:
    """Collect the account's S3 buckets, each labelled with its own region.

    S3 lists buckets account-wide, so the scanner runs this once per account.

    Args:
        s3: S3 client for the context's account (any region).
        ctx: Collection context; its region is not used for the records.

    Returns:
        One record per bucket; region `global` if the bucket's region is unreadable.
    """
    records = []
    for page in s3.get_paginator("list_buckets").paginate():
        for bucket in page.get("Buckets", []):
            name = bucket.get("Name", "")
            region = bucket.get("BucketRegion") or _bucket_region(s3, name)
            records.append(
                ctx.record(
                    ResourceType.S3_BUCKET,
                    id=name,
                    arn=f"arn:{s3.meta.partition}:s3:::{name}",
                    state="available",
                    health=Health.HEALTHY,
                    region=region,
                )
            )
    return records


def _bucket_region(s3: S3Client, bucket: str) -> str:
    # Older endpoints (and some S3-compatible ones) omit BucketRegion from ListBuckets.
    from botocore.exceptions import ClientError

    try:
        constraint = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError:
        return GLOBAL_REGION
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else str(constraint)


# --- DynamoDB ----------------------------------------------------------------


def collect_dynamodb(dynamodb: DynamoDBClient, ctx: CollectContext) -> list[ResourceRecord]:
    """Collect DynamoDB tables by table status.

    Args:
        dynamodb: DynamoDB client for the context's account and region.
        ctx: Collection context.

    Returns:
        One record per table still present when described.
    """
    records = []
    names = [
        name
        for page in dynamodb.get_paginator("list_tables").paginate()
        for name in page.get("TableNames", [])
    ]
    for name in names:
        try:
            table = dynamodb.describe_table(TableName=name)["Table"]
        except dynamodb.exceptions.ResourceNotFoundException:
            continue  # Deleted between listing and describing.
        status = str(table.get("TableStatus", "UNKNOWN"))
        if status == "ACTIVE":
            health, reason = Health.HEALTHY, ""
        elif status in _DYNAMODB_DEGRADED:
            health, reason = Health.DEGRADED, f"status {status}"
        else:
            health, reason = Health.UNHEALTHY, f"status {status}"
        records.append(
            ctx.record(
                ResourceType.DYNAMODB_TABLE,
                id=name,
                arn=table.get("TableArn", ""),
                state=status,
                health=health,
                reason=reason,
            )
        )
    return records


# --- CloudWatch alarms -------------------------------------------------------


def collect_cloudwatch_alarms(
    cloudwatch: CloudWatchClient, ctx: CollectContext
) -> list[ResourceRecord]:
    """Collect metric and composite alarms currently in ALARM.

    Args:
        cloudwatch: CloudWatch client for the context's account and region.
        ctx: Collection context.

    Returns:
        One unhealthy record per alarm in ALARM, with the alarm's state reason.
    """
    records = []
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    for page in pages:
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            records.append(
                ctx.record(
                    ResourceType.CLOUDWATCH_ALARM,
                    id=str(alarm.get("AlarmName", "")),
                    arn=str(alarm.get("AlarmArn", "")),
                    state="ALARM",
                    health=Health.UNHEALTHY,
                    reason=str(alarm.get("StateReason", "in ALARM")),
                )
            )
    return records
