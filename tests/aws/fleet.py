"""A seeded AWS estate on moto for the AWS status tests, and ways to break it.

Two accounts (prod: moto's default account; staging: reached by AssumeRole) in two
regions, with one example of every problem the scan should find. boto3 reaches
moto only through AWS_ENDPOINT_URL. States and failures moto cannot produce
(impaired status checks, a region that denies every call) are injected with
botocore event hooks on a session, as each helper below says.
"""

from __future__ import annotations

import io
import logging
import os
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from agents.aws.config import AwsAccount, AwsConfig
from agents.aws.sessions import AccountSessions

PROD_ID = "123456789012"  # moto's account for the default (non-assumed) credentials
STAGING_ID = "222222222222"
PROD = AwsAccount(name="prod")
STAGING = AwsAccount(
    name="staging",
    role_arn=f"arn:aws:iam::{STAGING_ID}:role/agentbot-aws-status",
    external_id="agentbot-external-id",
)
EAST, WEST = "us-east-1", "eu-west-1"


def make_config(**overrides: Any) -> AwsConfig:
    """A two-account, two-region config with fast timeouts."""
    values: dict[str, Any] = {
        "accounts": [PROD, STAGING],
        "regions": [EAST, WEST],
        "call_timeout_seconds": 5,
        "max_attempts": 2,
    }
    values.update(overrides)
    return AwsConfig.model_validate(values)


# --- moto server and environment --------------------------------------------


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its URL.

    moto keeps its backends per process, not per server: reset it before seeding.
    """
    # The server logs every request at INFO; that drowns out test output.
    werkzeug_logger = logging.getLogger("werkzeug")
    previous_level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as server_env:
        # A server-side moto setting (the server runs in this process): skip loading
        # thousands of public AMIs into every fresh EC2 backend, which after each
        # reset was most of the seeding time. Instances still launch from any image id.
        server_env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            werkzeug_logger.setLevel(previous_level)


def reset_moto(endpoint: str) -> None:
    """Empty every moto backend (all accounts and regions)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def point_aws_at(env: pytest.MonkeyPatch, endpoint: str) -> None:
    """Make boto3's default chain reach moto, and nothing of the machine's own AWS setup."""
    # Nothing from the machine's own AWS setup (profiles, per-service endpoints,
    # tokens, ~/.aws files) may leak into the test.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        env.delenv(name)
    env.setenv("AWS_CONFIG_FILE", os.devnull)
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    env.setenv("AWS_ENDPOINT_URL", endpoint)
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env.setenv("AWS_DEFAULT_REGION", EAST)


# --- the seeded fleet --------------------------------------------------------


@dataclass
class Fleet:
    """Ids of the seeded resources that the assertions refer to."""

    web_running: str
    web_stopped: str
    web_impaired: str
    eu_web: str
    staging_web: str
    asg_unhealthy_instance: str


class Seeder:
    """Clients acting in one account, for seeding; reused, and made from the base session.

    A separate boto3 Session per account would load every service model again,
    which is most of the cost of seeding.
    """

    def __init__(self, base: boto3.Session, account: AwsAccount) -> None:
        credentials = AccountSessions(base, make_config()).credentials(account)
        self._base = base
        self._credentials = (
            {
                "aws_access_key_id": credentials.access_key_id,
                "aws_secret_access_key": credentials.secret_access_key,
                "aws_session_token": credentials.session_token,
            }
            if credentials
            else {}
        )
        self._clients: dict[tuple[str, str], Any] = {}

    def __call__(self, service_name: str, region: str = EAST) -> Any:
        """The account's client for a service and region."""
        key = (service_name, region)
        if key not in self._clients:
            # Service names are plain strings here; boto3's typed overloads need literals.
            untyped: Any = self._base
            self._clients[key] = untyped.client(
                service_name, region_name=region, **self._credentials
            )
        return self._clients[key]


def seed_lambda(client: Seeder, region: str, name: str, metrics: dict[str, float]) -> None:
    """Create a function and publish its CloudWatch metrics (moto never invokes it)."""
    iam = client("iam")
    try:
        role = iam.create_role(RoleName="lambda-exec", AssumeRolePolicyDocument="{}")["Role"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="lambda-exec")["Role"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handler.py", "def handle(event, context):\n    return event\n")
    client("lambda", region).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="handler.handle",
        Code={"ZipFile": archive.getvalue()},
    )
    if metrics:
        client("cloudwatch", region).put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": name}],
                    "Value": value,
                    "Timestamp": datetime.now(UTC) - timedelta(minutes=5),
                }
                for metric, value in metrics.items()
            ],
        )


def run_instance(ec2: Any, name: str) -> str:
    """Start one tagged instance and return its id."""
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b",
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )
    return str(reservation["Instances"][0]["InstanceId"])


def seed_prod_east(client: Seeder) -> dict[str, str]:
    """The busy region: one example of every problem the scan should find."""
    ec2 = client("ec2", EAST)
    ids = {name: run_instance(ec2, name) for name in ("web-1", "web-2", "web-3")}

    rds = client("rds", EAST)
    for db in ("orders-db", "billing-db"):
        rds.create_db_instance(
            DBInstanceIdentifier=db,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="app",
            MasterUserPassword="not-a-real-password",
            AllocatedStorage=20,
        )
    rds.stop_db_instance(DBInstanceIdentifier="billing-db")

    seed_lambda(client, EAST, "resize-images", {"Invocations": 4, "Errors": 3})
    seed_lambda(client, EAST, "send-email", {"Invocations": 200, "Errors": 2, "Throttles": 5})
    seed_lambda(client, EAST, "nightly-report", {"Invocations": 1})

    ecs = client("ecs", EAST)
    ecs.create_cluster(clusterName="apps")
    ecs.register_task_definition(
        family="app",
        containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}],
    )
    # moto reports no running tasks for a new service, which is how "api" stays short;
    # updating the desired count makes moto report it met, which is how "worker" is fine.
    ecs.create_service(cluster="apps", serviceName="api", taskDefinition="app", desiredCount=2)
    ecs.create_service(cluster="apps", serviceName="worker", taskDefinition="app", desiredCount=3)
    ecs.update_service(cluster="apps", service="worker", desiredCount=1)

    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0][
        "VpcId"
    ]
    elbv2 = client("elbv2", EAST)
    group_arn = elbv2.create_target_group(
        Name="web-tg", Protocol="HTTP", Port=80, VpcId=vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(
        TargetGroupArn=group_arn, Targets=[{"Id": ids["web-1"]}, {"Id": ids["web-2"]}]
    )
    # Stopped after registering (only running instances can be registered): its target
    # then reports "unused", as AWS does for stopped instances.
    ec2.stop_instances(InstanceIds=[ids["web-2"]])

    autoscaling = client("autoscaling", EAST)
    ec2.create_launch_template(
        LaunchTemplateName="batch", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="batch-asg",
        LaunchTemplate={"LaunchTemplateName": "batch"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        AvailabilityZones=[f"{EAST}a"],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-asg"])
    sick = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    autoscaling.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")

    client("dynamodb", EAST).create_table(
        TableName="sessions",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client("s3", EAST).create_bucket(Bucket="prod-assets")

    cloudwatch = client("cloudwatch", EAST)
    cloudwatch.put_metric_alarm(
        AlarmName="api-5xx",
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(
        AlarmName="api-5xx",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0).",
    )
    return {**ids, "asg-sick": sick}


def seed_quiet_region(client: Seeder, region: str, prefix: str) -> str:
    """A region with a healthy instance, table and bucket; returns the instance id."""
    instance = run_instance(client("ec2", region), f"{prefix}-web-1")
    client("dynamodb", region).create_table(
        TableName=f"{prefix}-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # us-east-1 is the one region that refuses an explicit location constraint.
    placement = {} if region == EAST else {"LocationConstraint": region}
    client("s3", region).create_bucket(
        Bucket=f"{prefix}-bucket", **({"CreateBucketConfiguration": placement} if placement else {})
    )
    return instance


def seed_fleet(base_session: boto3.Session) -> Fleet:
    """Two accounts x two regions of resources, some of them in trouble."""
    prod = Seeder(base_session, PROD)
    staging = Seeder(base_session, STAGING)
    east = seed_prod_east(prod)
    eu_web = seed_quiet_region(prod, WEST, "prod-eu")
    staging_web = seed_quiet_region(staging, EAST, "staging")
    seed_quiet_region(staging, WEST, "staging-eu")
    seed_lambda(staging, WEST, "staging-fn", {})
    return Fleet(
        web_running=east["web-1"],
        web_stopped=east["web-2"],
        web_impaired=east["web-3"],
        eu_web=eu_web,
        staging_web=staging_web,
        asg_unhealthy_instance=east["asg-sick"],
    )


# --- injected states and failures ---------------------------------------------


def impair_instance(session: boto3.Session, instance_id: str) -> None:
    """Make DescribeInstanceStatus report failed instance reachability for one instance.

    moto always reports running instances' status checks as "ok", so the impaired
    check is injected into the parsed response on its way back to the caller.
    """

    def mark_impaired(parsed: dict[str, Any], **_: Any) -> None:
        for status in parsed.get("InstanceStatuses", []):
            if status["InstanceId"] == instance_id:
                status["InstanceStatus"] = {
                    "Status": "impaired",
                    "Details": [{"Name": "reachability", "Status": "failed"}],
                }

    session.events.register("after-call.ec2.DescribeInstanceStatus", mark_impaired)


def deny_region(session: boto3.Session, region: str) -> None:
    """Answer every non-STS call to one region with AccessDenied, as an SCP would."""

    def deny(model: Any, context: dict[str, Any], **_: Any) -> None:
        if context.get("client_region") == region and model.service_model.service_name != "sts":
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": f"explicit deny in {region}"}},
                model.name,
            )

    session.events.register("before-call", deny)
