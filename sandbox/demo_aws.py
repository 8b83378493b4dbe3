"""A demo AWS estate on a moto server: two accounts, two regions, some trouble, costs.

`seed_demo_estate(endpoint_url)` fills a running moto server (`moto.server`'s
`ThreadedMotoServer`) through the ordinary AWS APIs, so whatever later reads the
estate — `agentbot dev`'s AWS reports — reads it the way it would read AWS:

- **prod** (moto's default account, 123456789012) in us-east-1 and eu-west-1, and
  **staging** (222222222222), reached with STS AssumeRole as a real deployment would;
- running, stopped and failing-status-check instances, a stopped RDS database, an
  ECS service short of its desired count, CloudWatch alarms in ALARM, a Lambda
  function with errors, S3 buckets, DynamoDB tables, and savings to find (an
  unattached gp2 volume, an unused Elastic IP, a long-stopped instance);
- 60 days of Cost Explorer history per account, ending yesterday (which is still
  `Estimated`, as AWS reports the latest days), and the days of the next two weeks
  written in advance, so a sandbox left running past midnight still has costs for
  the days that become "yesterday".

moto does not compute costs: `GetCostAndUsage` answers from a queue of canned results
(`/moto-api/static/ce/cost-and-usage-results`). A request body it has not seen takes
the next result from the queue and keeps it, so asking the same again answers the
same; once the queue is empty, a new request gets an empty result. So every result
queued here is the same full history — daily, grouped by service and linked account
(prod, the paying account, sees both accounts; staging sees itself), with unblended
and amortized cost and a `Total` beside the `Groups` — and a reader should pick the
days it wants out of `ResultsByTime` by their `TimePeriod`, whatever it asked for.

How many to queue: the bot keeps daily costs in its database and asks Cost Explorer
only for days it lacks or estimates gone stale, so each report asks few distinct
things. Hourly reports of all three periods over two weeks come to 16 distinct
requests (the first fill, each new day, each stale estimate refreshed), so
`COST_RESULTS_QUEUED` covers the two weeks the history reaches with room to spare.
"""

from __future__ import annotations

import io
import json
import math
import urllib.request
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3

PROD_ACCOUNT_ID = "123456789012"
STAGING_ACCOUNT_ID = "222222222222"
STAGING_ROLE_ARN = f"arn:aws:iam::{STAGING_ACCOUNT_ID}:role/agentbot-aws-status"
REGIONS = ("us-east-1", "eu-west-1")
COST_DAYS = 60
# Days after the seeding day the history already holds (see the module notes).
COST_DAYS_AHEAD = 14
# Distinct Cost Explorer queries the queued results can answer (see the module notes).
COST_RESULTS_QUEUED = 24
IMAGE_ID = "ami-12c6146b"

# Service name (as Cost Explorer spells it) -> prod's typical daily cost in USD.
PROD_DAILY_COSTS = {
    "Amazon Elastic Compute Cloud - Compute": 182.0,
    "Amazon Relational Database Service": 96.0,
    "Amazon Simple Storage Service": 31.0,
    "Amazon Elastic Container Service": 44.0,
    "AWS Lambda": 12.5,
    "Amazon DynamoDB": 18.0,
    "Amazon CloudWatch": 9.0,
    "EC2 - Other": 22.0,
}
STAGING_SHARE = 0.18  # staging costs about a fifth of prod
EC2_SPIKE = 1.9  # EC2 compute's jump over the last three days: the anomaly to find


@dataclass
class DemoEstate:
    """What was seeded, for the start-up banner and the tests."""

    accounts: dict[str, str] = field(default_factory=dict)  # name -> account id
    regions: tuple[str, ...] = REGIONS
    # Everything created, savings findings (a volume, an Elastic IP) included.
    resources: int = 0
    # What `aws status` will call unhealthy and degraded, in its own words.
    unhealthy: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    cost_days: int = 0

    def summary(self) -> str:
        """One line: accounts, regions, the problems a status report finds, cost history.

        It names problems as the report does (unhealthy, degraded), and no resource
        total: what was created here includes savings findings the report does not count.
        """
        return (
            f"{len(self.accounts)} accounts, {len(self.regions)} regions, "
            f"{len(self.unhealthy)} unhealthy and {len(self.degraded)} degraded resources "
            f"to find, {self.cost_days} days of cost history"
        )


class _Account:
    """Clients acting in one account, created from one session (cheap to reuse)."""

    def __init__(self, session: boto3.Session, endpoint_url: str, **credentials: str) -> None:
        self._session = session
        self._endpoint = endpoint_url
        self._credentials = credentials
        self._clients: dict[tuple[str, str], Any] = {}

    def __call__(self, service: str, region: str = REGIONS[0]) -> Any:
        key = (service, region)
        if key not in self._clients:
            # Typed per service literal in the stubs; here the service is data.
            make: Any = self._session.client
            self._clients[key] = make(
                service, region_name=region, endpoint_url=self._endpoint, **self._credentials
            )
        return self._clients[key]


def seed_demo_estate(endpoint_url: str) -> DemoEstate:
    """Create the demo estate on the moto server at `endpoint_url`.

    Args:
        endpoint_url: The moto server's root URL, e.g. `http://127.0.0.1:5000`.

    Returns:
        What was created.
    """
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGIONS[0]
    )
    prod = _Account(session, endpoint_url)
    assumed = prod("sts").assume_role(
        RoleArn=STAGING_ROLE_ARN, RoleSessionName="agentbot-demo-seed"
    )["Credentials"]
    staging = _Account(
        session,
        endpoint_url,
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    )
    estate = DemoEstate(accounts={"prod": PROD_ACCOUNT_ID, "staging": STAGING_ACCOUNT_ID})
    _seed_prod_east(prod, estate)
    _seed_quiet_region(prod, REGIONS[1], "prod-eu", estate)
    _seed_staging(staging, estate)
    end = datetime.now(UTC).date()
    # prod pays for the organisation and sees both accounts; staging sees only itself.
    seen_from = {
        PROD_ACCOUNT_ID: {PROD_ACCOUNT_ID: 1.0, STAGING_ACCOUNT_ID: STAGING_SHARE},
        STAGING_ACCOUNT_ID: {STAGING_ACCOUNT_ID: STAGING_SHARE},
    }
    for account_id, accounts in seen_from.items():
        history = cost_history(end, accounts, ahead=COST_DAYS_AHEAD)
        queue_cost_results(endpoint_url, account_id, history, COST_RESULTS_QUEUED)
    estate.cost_days = COST_DAYS
    return estate


# -- resources -----------------------------------------------------------------------------


def _instance(ec2: Any, name: str, kind: str = "t3.micro") -> str:
    reservation = ec2.run_instances(
        ImageId=IMAGE_ID,
        InstanceType=kind,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": name}, {"Key": "env", "Value": "demo"}],
            }
        ],
    )
    return str(reservation["Instances"][0]["InstanceId"])


def _alarm(cloudwatch: Any, name: str, metric: str, namespace: str, **extra: Any) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=namespace,
        MetricName=metric,
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=extra.pop("threshold", 0.0),
        ComparisonOperator="GreaterThanThreshold",
        **extra,
    )


def _seed_prod_east(account: _Account, estate: DemoEstate) -> None:
    region = REGIONS[0]
    ec2 = account("ec2", region)
    web = {name: _instance(ec2, name, "t3.medium") for name in ("web-1", "web-2", "web-3")}
    legacy = _instance(ec2, "legacy-reports", "m5.large")
    ec2.stop_instances(InstanceIds=[legacy])
    estate.resources += 4
    estate.degraded.append("ec2 legacy-reports (stopped)")

    # moto reports every running instance's status checks as ok; the failing check
    # shows up the way operators usually see it first, as an alarm on the metric.
    cloudwatch = account("cloudwatch", region)
    _alarm(
        cloudwatch,
        "web-3-status-check-failed",
        "StatusCheckFailed",
        "AWS/EC2",
        Dimensions=[{"Name": "InstanceId", "Value": web["web-3"]}],
    )
    cloudwatch.set_alarm_state(
        AlarmName="web-3-status-check-failed",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 2 datapoints [1.0, 1.0] were greater than 0.0.",
    )
    _alarm(cloudwatch, "api-5xx", "HTTPCode_Target_5XX_Count", "AWS/ApplicationELB", threshold=10)
    cloudwatch.set_alarm_state(
        AlarmName="api-5xx",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0).",
    )
    _alarm(cloudwatch, "orders-db-cpu", "CPUUtilization", "AWS/RDS", threshold=80)
    estate.resources += 3
    estate.unhealthy += ["alarm web-3-status-check-failed", "alarm api-5xx"]

    rds = account("rds", region)
    for db in ("orders-db", "billing-db"):
        rds.create_db_instance(
            DBInstanceIdentifier=db,
            Engine="postgres",
            DBInstanceClass="db.t3.medium",
            MasterUsername="app",
            MasterUserPassword="demo-password-not-secret",
            AllocatedStorage=50,
        )
    rds.stop_db_instance(DBInstanceIdentifier="billing-db")
    estate.resources += 2
    estate.degraded.append("rds billing-db (stopped)")

    ecs = account("ecs", region)
    ecs.create_cluster(clusterName="shop")
    ecs.register_task_definition(
        family="shop-api",
        containerDefinitions=[{"name": "api", "image": "shop/api:1.4", "memory": 256}],
    )
    # moto starts no tasks for a new service, so "checkout" stays short of its three;
    # after an update moto reports the desired count as met, which is how "catalog" is fine.
    ecs.create_service(
        cluster="shop", serviceName="checkout", taskDefinition="shop-api", desiredCount=3
    )
    ecs.create_service(
        cluster="shop", serviceName="catalog", taskDefinition="shop-api", desiredCount=2
    )
    ecs.update_service(cluster="shop", service="catalog", desiredCount=2)
    estate.resources += 2
    estate.unhealthy.append("ecs shop/checkout (0 of 3 running)")

    _lambda(account, region, "resize-images", {"Invocations": 40, "Errors": 9})
    _lambda(account, region, "send-receipts", {"Invocations": 900, "Errors": 0})
    estate.resources += 2
    estate.degraded.append("lambda resize-images (errors)")

    # Savings for the optimizer: a forgotten gp2 volume and an Elastic IP nobody uses.
    ec2.create_volume(
        AvailabilityZone=f"{region}a",
        Size=200,
        VolumeType="gp2",
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "old-reports-data"}]}
        ],
    )
    ec2.allocate_address(Domain="vpc")
    estate.resources += 2

    account("s3", region).create_bucket(Bucket="acme-shop-assets")
    account("s3", region).create_bucket(Bucket="acme-shop-logs")
    account("dynamodb", region).create_table(
        TableName="carts",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    estate.resources += 3


def _lambda(account: _Account, region: str, name: str, metrics: dict[str, float]) -> None:
    iam = account("iam")
    try:
        role = iam.create_role(RoleName="lambda-exec", AssumeRolePolicyDocument="{}")["Role"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="lambda-exec")["Role"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handler.py", "def handle(event, context):\n    return event\n")
    account("lambda", region).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="handler.handle",
        Code={"ZipFile": archive.getvalue()},
    )
    account("cloudwatch", region).put_metric_data(
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


def _seed_quiet_region(account: _Account, region: str, prefix: str, estate: DemoEstate) -> None:
    _instance(account("ec2", region), f"{prefix}-web-1")
    account("dynamodb", region).create_table(
        TableName=f"{prefix}-sessions",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    config = {} if region == "us-east-1" else {"LocationConstraint": region}
    account("s3", region).create_bucket(
        Bucket=f"acme-{prefix}-assets",
        **({"CreateBucketConfiguration": config} if config else {}),
    )
    estate.resources += 3


def _seed_staging(account: _Account, estate: DemoEstate) -> None:
    _seed_quiet_region(account, REGIONS[0], "staging", estate)
    _seed_quiet_region(account, REGIONS[1], "staging-eu", estate)
    ec2 = account("ec2", REGIONS[0])
    spare = _instance(ec2, "staging-load-test", "c5.xlarge")
    ec2.stop_instances(InstanceIds=[spare])
    estate.resources += 1
    estate.degraded.append("ec2 staging-load-test (stopped)")


# -- costs ---------------------------------------------------------------------------------


def cost_history(
    end: date, accounts: dict[str, float], days: int = COST_DAYS, ahead: int = 0
) -> list[dict[str, Any]]:
    """Daily cost per service and linked account for the `days` days before `end`.

    Deterministic: weekends are quieter, storage grows slowly, and EC2 compute nearly
    doubles from three days before `end` on (the anomaly a digest should flag).
    The day before `end` is still `Estimated`, and so is every day written ahead.
    Groups are keyed `[service, account id]`, as for `GroupBy` SERVICE then
    LINKED_ACCOUNT.

    Args:
        end: The first day not included (today, for a history ending yesterday).
        accounts: Account id -> scale of its spend (1.0 is prod's).
        days: How many days before `end`.
        ahead: How many days from `end` on to write in advance.

    Returns:
        Cost Explorer `ResultsByTime` entries, oldest first.
    """
    results = []
    for offset in range(days, -ahead, -1):
        day = end - timedelta(days=offset)
        age = offset - 1  # 0 is the day before `end`; days ahead are negative
        groups = []
        total = 0.0
        for account_id, share in accounts.items():
            for index, (service, base) in enumerate(PROD_DAILY_COSTS.items()):
                amount = base * share * _daily_factor(service, day, age, index)
                total += amount
                groups.append(
                    {
                        "Keys": [service, account_id],
                        "Metrics": {
                            "UnblendedCost": _money(amount),
                            "AmortizedCost": _money(amount * 0.97),
                        },
                    }
                )
        results.append(
            {
                "TimePeriod": {
                    "Start": day.isoformat(),
                    "End": (day + timedelta(days=1)).isoformat(),
                },
                "Total": {
                    "UnblendedCost": _money(total),
                    "AmortizedCost": _money(total * 0.97),
                },
                "Groups": groups,
                "Estimated": age <= 0,
            }
        )
    return results


def _daily_factor(service: str, day: date, age: int, index: int) -> float:
    weekend = 0.8 if day.weekday() >= 5 and service != "Amazon Simple Storage Service" else 1.0
    growth = 1.0 + 0.004 * (COST_DAYS - age) if "Storage" in service else 1.0
    # Well clear of the weekday/weekend swing, so the digest flags it whatever the day.
    spike = EC2_SPIKE if service.endswith("Compute") and age < 3 else 1.0
    wobble = 1.0 + 0.05 * math.sin(day.toordinal() * 1.7 + index)
    return weekend * growth * spike * wobble


def _money(amount: float) -> dict[str, str]:
    return {"Amount": f"{amount:.10f}", "Unit": "USD"}


def queue_cost_results(
    endpoint_url: str, account_id: str, history: list[dict[str, Any]], copies: int
) -> None:
    """Queue `copies` GetCostAndUsage results holding `history` for one account."""
    result = {
        "GroupDefinitions": [
            {"Type": "DIMENSION", "Key": "SERVICE"},
            {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        ],
        "ResultsByTime": history,
        "DimensionValueAttributes": [],
    }
    body = json.dumps({"account_id": account_id, "results": [result] * copies}).encode()
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + "/moto-api/static/ce/cost-and-usage-results",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 201:
            raise RuntimeError(f"moto refused the cost results: HTTP {answer.status}")
