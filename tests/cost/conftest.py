"""Fixtures for cost reports, the digest, savings and AWS actions, against moto on loopback.

boto3 reaches moto only through AWS_ENDPOINT_URL, as it would reach AWS. Cost Explorer
answers come from moto's queue of canned results (`/moto-api/static/ce/
cost-and-usage-results`): each distinct request takes the next queued result and keeps
it, so a test queues exactly the answers the requests it expects should get, and a
request it did not expect gets an empty answer (and is still counted).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import text

# Imported here, once, so that forked work horses inherit them instead of paying for them.
import agents.aws.cost_chart  # noqa: F401
import jobs.aws.digest
import jobs.work  # noqa: F401
from agents.aws.config import AwsAccount, AwsConfig
from agents.aws.cost_config import ActionsConfig, CostConfig, DigestConfig
from bot.runtime import job_context
from bot.services import Services
from jobs.config import AgentbotConfig
from jobs.context import install

if TYPE_CHECKING:
    from tests.cost.estate import Estate

PROD_ID = "123456789012"  # moto's account for the default credentials
STAGING_ID = "222222222222"
EAST = "us-east-1"
DIGEST_CHANNEL = "CCOSTS"

EC2 = "Amazon Elastic Compute Cloud - Compute"
RDS = "Amazon Relational Database Service"
LAMBDA = "AWS Lambda"
S3 = "Amazon Simple Storage Service"
CLOUDWATCH = "AmazonCloudWatch"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session, on a free loopback port."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as server_env:
        # Read by the server (in this process): no public AMIs in every fresh backend.
        server_env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()
    werkzeug.setLevel(level)


@pytest.fixture
def aws_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A freshly reset moto, reached through the standard AWS variables only."""
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=10):
        pass
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", EAST)
    return moto_endpoint


def cost_config(**overrides: Any) -> CostConfig:
    """The cost section the tests start from: a budget, a digest, actions on."""
    values: dict[str, Any] = {
        "monthly_budget_usd": 6000,
        "digest": DigestConfig(channel=DIGEST_CHANNEL, timezone="Europe/Paris"),
        "actions": ActionsConfig(enabled=True),
    }
    values.update(overrides)
    return CostConfig.model_validate(values)


AWS = AwsConfig(
    accounts=[
        AwsAccount(name="prod", account_id=PROD_ID),
        AwsAccount(name="staging", role_arn=f"arn:aws:iam::{STAGING_ID}:role/agentbot-aws-status"),
    ],
    regions=[EAST],
    call_timeout_seconds=5,
    max_attempts=2,
)


@pytest.fixture
def config(config: AgentbotConfig, aws_endpoint: str) -> AgentbotConfig:
    """The shared test configuration plus `[aws]` (prod and staging) and `[cost]`."""
    return config.model_copy(update={"aws": AWS, "cost": cost_config()})


@pytest.fixture(autouse=True)
def clean_costs(services: Services) -> None:
    """Empty the cost tables (the shared fixture empties only the task tables)."""
    with services.db.engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE cost_days, cost_daily, cost_reports, cost_digests, "
                "aws_recommendations RESTART IDENTITY CASCADE"
            )
        )


def reconfigure(services: Services, **cost: Any) -> None:
    """Change the `[cost]` section for the rest of a test, in the web side and workers alike."""
    services.config = services.config.model_copy(update={"cost": cost_config(**cost)})
    services.lifecycle.config = services.config
    install(job_context(services))


# -- Cost Explorer data -----------------------------------------------------------------------


def daily_costs(as_of: date, day: date) -> dict[tuple[str, str], float]:
    """The estate's costs on one day, by (service, account id).

    `i` counts days back from `as_of`. Before `as_of` every service is steady or
    swings within a narrow band: EC2 alternates 95/105 (median 100), Lambda cycles
    9/10/11 (median 10). On `as_of` EC2 rises to 120 (within its usual swing), S3
    drops $5 (too little to matter), and Lambda jumps to 250: the one anomaly,
    $240 above its usual $10.
    """
    i = (as_of - day).days
    if i == 0:
        prod = {EC2: 120.0, RDS: 50.0, LAMBDA: 250.0, S3: 15.0, CLOUDWATCH: 5.0}
    else:
        prod = {
            EC2: 100.0 + (5.0 if i % 2 else -5.0),
            RDS: 50.0,
            LAMBDA: 10.0 + (i % 3 - 1),
            S3: 20.0,
            CLOUDWATCH: 5.0,
        }
    costs = {(service, PROD_ID): amount for service, amount in prod.items()}
    costs[(EC2, STAGING_ID)] = 8.0
    return costs


def result_by_time(day: date, costs: dict[tuple[str, str], float], *, estimated: bool) -> Any:
    """One day of a GetCostAndUsage answer grouped by service and linked account."""
    return {
        "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
        "Total": {},
        "Groups": [
            {
                "Keys": [service, account],
                "Metrics": {"UnblendedCost": {"Amount": f"{amount:.10f}", "Unit": "USD"}},
            }
            for (service, account), amount in sorted(costs.items())
        ],
        "Estimated": estimated,
    }


def history(as_of: date, days: int) -> list[Any]:
    """`days` days of costs ending on `as_of`, which Cost Explorer still marks Estimated."""
    start = as_of - timedelta(days=days - 1)
    return [
        result_by_time(
            start + timedelta(n),
            daily_costs(as_of, start + timedelta(n)),
            estimated=start + timedelta(n) == as_of,
        )
        for n in range(days)
    ]


def queue_ce_results(endpoint: str, *results: dict[str, Any]) -> None:
    """Queue GetCostAndUsage answers in moto, in the order requests will take them."""
    body = json.dumps({"results": list(results), "account_id": PROD_ID}).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/ce/cost-and-usage-results",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def paged(days: list[Any], pages: int) -> list[dict[str, Any]]:
    """Split an answer into pages linked by NextPageToken, as Cost Explorer does."""
    size = -(-len(days) // pages)
    chunks = [days[n : n + size] for n in range(0, len(days), size)]
    return [
        {
            "ResultsByTime": chunk,
            **({"NextPageToken": f"page-{n + 2}"} if n + 1 < len(chunks) else {}),
        }
        for n, chunk in enumerate(chunks)
    ]


@dataclass
class Clients:
    """boto3 clients in the prod account, made from one session."""

    session: boto3.Session

    def __call__(self, service: str) -> Any:
        """A client for a service in us-east-1."""
        untyped: Any = self.session
        return untyped.client(service, region_name=EAST)


@pytest.fixture
def session(aws_endpoint: str) -> boto3.Session:
    """A base session on the freshly reset moto."""
    return boto3.Session()


@pytest.fixture
def estate(session: boto3.Session) -> Estate:
    """One of each kind of waste (`tests.cost.estate`), with the two ages injected."""
    from tests.cost.estate import age, seed  # it builds on this module's Clients

    seeded = seed(session)
    age(session, seeded)
    return seeded
