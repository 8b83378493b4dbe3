"""Configuration of the AWS inventory-and-health scan.

The models validate what an operator writes in the `[aws]` part of the
`AGENTBOT_CONFIG` TOML file; they hold no credentials. Credentials come from
boto3's standard chain (environment, `AWS_PROFILE`, instance role, ...) and, per
account, from STS AssumeRole.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account_id>\d{12}):role/.+$")


class Service(StrEnum):
    """A service the scan knows how to inventory; the value is what users type."""

    EC2 = "ec2"
    RDS = "rds"
    LAMBDA = "lambda"
    ECS = "ecs"
    ELBV2 = "elbv2"
    AUTOSCALING = "autoscaling"
    S3 = "s3"
    DYNAMODB = "dynamodb"
    CLOUDWATCH = "cloudwatch"


# Services whose inventory is account-wide: scanned once per account, not once per region.
GLOBAL_SERVICES: frozenset[Service] = frozenset({Service.S3})


class ResourceType(StrEnum):
    """Kinds of resource a steward can be responsible for.

    Some (CloudFront, Lambda@Edge, X-Ray, API Gateway, SNS, load balancers) have
    no collector yet; they are here so that the steward mapping is complete and
    operators can configure it before the collectors exist.
    """

    EC2_INSTANCE = "ec2_instance"
    LAMBDA_FUNCTION = "lambda_function"
    ECS_SERVICE = "ecs_service"
    S3_BUCKET = "s3_bucket"
    CLOUDFRONT_DISTRIBUTION = "cloudfront_distribution"
    AUTOSCALING_GROUP = "autoscaling_group"
    LOAD_BALANCER = "load_balancer"
    TARGET_GROUP = "target_group"
    LAMBDA_EDGE_FUNCTION = "lambda_edge_function"
    CLOUDWATCH_ALARM = "cloudwatch_alarm"
    XRAY_GROUP = "xray_group"
    API_GATEWAY = "api_gateway"
    SNS_TOPIC = "sns_topic"
    RDS_INSTANCE = "rds_instance"
    DYNAMODB_TABLE = "dynamodb_table"


class StewardAssignment(BaseModel):
    """The steward ("historical agent") answerable for a resource type.

    Autonomy is 0-10: how much the steward may do without a human. The scan is
    read-only whatever the level; the level travels with each record so that
    later remediation can decide whether to ask for approval first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    autonomy: int = Field(default=5, ge=0, le=10)


def default_stewards() -> dict[ResourceType, StewardAssignment]:
    """Return the default resource-type to steward mapping (a fresh dict each call)."""

    def steward(name: str, autonomy: int = 5) -> StewardAssignment:
        return StewardAssignment(name=name, autonomy=autonomy)

    return {
        ResourceType.EC2_INSTANCE: steward("Bill Gates", 6),
        ResourceType.LAMBDA_FUNCTION: steward("Bill Gates", 8),
        ResourceType.ECS_SERVICE: steward("Bill Gates"),
        ResourceType.S3_BUCKET: steward("Steve Jobs"),
        ResourceType.CLOUDFRONT_DISTRIBUTION: steward("Steve Jobs"),
        ResourceType.AUTOSCALING_GROUP: steward("Napoleon"),
        ResourceType.LOAD_BALANCER: steward("Napoleon"),
        ResourceType.TARGET_GROUP: steward("Napoleon"),
        ResourceType.LAMBDA_EDGE_FUNCTION: steward("Hannibal"),
        ResourceType.CLOUDWATCH_ALARM: steward("Drucker"),
        ResourceType.XRAY_GROUP: steward("Drucker"),
        ResourceType.API_GATEWAY: steward("Kotler"),
        ResourceType.SNS_TOPIC: steward("Kotler"),
        ResourceType.RDS_INSTANCE: steward("Noguchi", 4),
        ResourceType.DYNAMODB_TABLE: steward("Noguchi"),
    }


class AwsAccount(BaseModel):
    """One AWS account to scan.

    Without `role_arn` the account is whatever the default credentials belong
    to; with it, the scan assumes that role first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    account_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    role_arn: str | None = None
    external_id: str | None = Field(default=None, min_length=2, max_length=1224)

    @property
    def effective_account_id(self) -> str | None:
        """The configured account id, else the one in `role_arn`, else None (unknown)."""
        if self.account_id is not None:
            return self.account_id
        match = _ROLE_ARN.match(self.role_arn or "")
        return match["account_id"] if match else None

    @model_validator(mode="after")
    def _check_role(self) -> AwsAccount:
        if self.role_arn is None:
            if self.external_id is not None:
                raise ValueError("external_id is only used with role_arn")
            return self
        match = _ROLE_ARN.match(self.role_arn)
        if match is None:
            raise ValueError(f"role_arn {self.role_arn!r} is not an IAM role ARN")
        if self.account_id is not None and self.account_id != match["account_id"]:
            raise ValueError(
                f"account_id {self.account_id} does not match role_arn account "
                f"{match['account_id']}"
            )
        return self


class AwsConfig(BaseModel):
    """What to scan, how hard to try, and who stewards each resource type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: list[AwsAccount] = Field(
        default_factory=lambda: [AwsAccount(name="default")], min_length=1
    )
    # Empty means "the base session's region", which is what a single-region
    # deployment configured only through AWS_REGION expects.
    regions: list[str] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=lambda: list(Service), min_length=1)
    # Threads of one scan. They mostly wait on AWS, so one per unit of a modest estate
    # (2 accounts x 2 regions x 9 services is 34 units) is cheaper than queueing them.
    max_workers: int = Field(default=32, ge=1, le=256)
    call_timeout_seconds: float = Field(default=10.0, gt=0)
    # Attempts per API call including the first (1 = no retries), as in AWS_MAX_ATTEMPTS.
    # Unset: AWS_MAX_ATTEMPTS / AWS_RETRY_MODE (or the profile's) apply, else 5, standard.
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    retry_mode: Literal["standard", "adaptive"] | None = None
    cache_seconds: int = Field(default=60, ge=0)
    role_session_name: str = Field(default="agentbot-scan", pattern=r"^[\w+=,.@-]{2,64}$")
    metrics_window_minutes: int = Field(default=60, ge=5, le=1440)
    stewards: dict[ResourceType, StewardAssignment] = Field(default_factory=default_stewards)
    default_steward: StewardAssignment = StewardAssignment(name="Bill Gates", autonomy=5)

    @field_validator("regions")
    @classmethod
    def _check_regions(cls, regions: list[str]) -> list[str]:
        for region in regions:
            if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", region):
                raise ValueError(f"{region!r} is not an AWS region name")
        return list(dict.fromkeys(regions))

    @field_validator("stewards")
    @classmethod
    def _merge_stewards(
        cls, stewards: dict[ResourceType, StewardAssignment]
    ) -> dict[ResourceType, StewardAssignment]:
        # Overrides are partial: an operator reassigning EC2 should not have to
        # restate the whole table.
        return {**default_stewards(), **stewards}

    @model_validator(mode="after")
    def _check_unique_accounts(self) -> AwsConfig:
        names = [account.name for account in self.accounts]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate account names: {', '.join(duplicates)}")
        return self

    def steward_for(self, resource_type: ResourceType) -> StewardAssignment:
        """Return the steward assigned to a resource type.

        Args:
            resource_type: The kind of resource.

        Returns:
            The configured assignment, or `default_steward` if none is configured.
        """
        return self.stewards.get(resource_type, self.default_steward)
