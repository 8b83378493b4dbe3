"""The demo AWS estate, read back through boto3 from a moto server on loopback."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sandbox.demo_aws import (
    COST_DAYS,
    COST_DAYS_AHEAD,
    PROD_ACCOUNT_ID,
    REGIONS,
    STAGING_ACCOUNT_ID,
    STAGING_ROLE_ARN,
    DemoEstate,
    seed_demo_estate,
)


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[str, DemoEstate]]:
    """A moto server of this module's own, reset, then seeded with the demo estate."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto's backends live in the process: start from nothing whatever ran before.
        reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()
        yield url, seed_demo_estate(url)
        server.stop()


def client(url: str, service: str, region: str = REGIONS[0], **credentials: str) -> Any:
    """A client that reaches moto the way the bot would, by endpoint URL."""
    make: Any = boto3.client
    keys = credentials or {"aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return make(service, region_name=region, endpoint_url=url, **keys)


def staging_credentials(url: str) -> dict[str, str]:
    assumed = client(url, "sts").assume_role(RoleArn=STAGING_ROLE_ARN, RoleSessionName="test")
    c = assumed["Credentials"]
    return {
        "aws_access_key_id": c["AccessKeyId"],
        "aws_secret_access_key": c["SecretAccessKey"],
        "aws_session_token": c["SessionToken"],
    }


def instance_states(ec2: Any) -> dict[str, str]:
    found = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            name = next(t["Value"] for t in instance["Tags"] if t["Key"] == "Name")
            found[name] = instance["State"]["Name"]
    return found


def test_two_accounts_two_regions_with_trouble_in_them(seeded: tuple[str, DemoEstate]):
    """Each account has instances in both regions; prod has the problems a scan must find."""
    url, estate = seeded
    assert estate.accounts == {"prod": PROD_ACCOUNT_ID, "staging": STAGING_ACCOUNT_ID}
    prod_east = instance_states(client(url, "ec2"))
    assert prod_east["web-1"] == "running" and prod_east["legacy-reports"] == "stopped"
    assert instance_states(client(url, "ec2", REGIONS[1])) == {"prod-eu-web-1": "running"}

    staging = staging_credentials(url)
    identity = client(url, "sts", **staging).get_caller_identity()
    assert identity["Account"] == STAGING_ACCOUNT_ID
    staging_east = instance_states(client(url, "ec2", **staging))
    assert staging_east == {"staging-web-1": "running", "staging-load-test": "stopped"}
    assert "staging-eu-web-1" in instance_states(client(url, "ec2", REGIONS[1], **staging))

    alarms = client(url, "cloudwatch").describe_alarms(StateValue="ALARM")["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} == {"web-3-status-check-failed", "api-5xx"}
    services = client(url, "ecs").describe_services(
        cluster="shop", services=["checkout", "catalog"]
    )["services"]
    counts = {s["serviceName"]: (s["runningCount"], s["desiredCount"]) for s in services}
    assert counts == {"checkout": (0, 3), "catalog": (2, 2)}
    databases = client(url, "rds").describe_db_instances()["DBInstances"]
    assert {d["DBInstanceIdentifier"]: d["DBInstanceStatus"] for d in databases} == {
        "orders-db": "available",
        "billing-db": "stopped",
    }
    volumes = client(url, "ec2").describe_volumes(
        Filters=[{"Name": "status", "Values": ["available"]}]
    )["Volumes"]
    assert [(v["Size"], v["VolumeType"]) for v in volumes] == [(200, "gp2")]
    # As `aws status` counts them (tests/sandbox/test_dev_aws.py reads the same estate).
    assert (len(estate.unhealthy), len(estate.degraded)) == (3, 4)
    assert "3 unhealthy and 4 degraded resources to find" in estate.summary()


def test_cost_history_is_sixty_days_ending_yesterday_with_an_ec2_spike(
    seeded: tuple[str, DemoEstate],
):
    """The 60 days before today per service and account are there; yesterday is estimated."""
    url, estate = seeded
    today = datetime.now(UTC).date()
    answer = client(url, "ce").get_cost_and_usage(
        TimePeriod={"Start": (today - timedelta(days=60)).isoformat(), "End": today.isoformat()},
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
        GroupBy=[
            {"Type": "DIMENSION", "Key": "SERVICE"},
            {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        ],
    )
    # moto answers with the whole canned history; a reader picks the days it asked for.
    asked = (today - timedelta(days=60)).isoformat(), today.isoformat()
    days = [d for d in answer["ResultsByTime"] if asked[0] <= d["TimePeriod"]["Start"] < asked[1]]
    assert len(days) == COST_DAYS == estate.cost_days
    assert days[-1]["TimePeriod"]["End"] == today.isoformat()
    assert [d["Estimated"] for d in days].count(True) == 1 and days[-1]["Estimated"]

    def spend(day: dict[str, Any], account: str, service: str | None = None) -> float:
        return sum(
            float(g["Metrics"]["UnblendedCost"]["Amount"])
            for g in day["Groups"]
            if g["Keys"][1] == account and service in (None, g["Keys"][0])
        )

    compute = "Amazon Elastic Compute Cloud - Compute"
    # Against the same weekday a week before: weekends are quieter, whatever today is.
    week_before = spend(days[-8], PROD_ACCOUNT_ID, compute)
    assert spend(days[-1], PROD_ACCOUNT_ID, compute) > 1.25 * week_before
    prod, staging = spend(days[-1], PROD_ACCOUNT_ID), spend(days[-1], STAGING_ACCOUNT_ID)
    assert 0.1 * prod < staging < 0.3 * prod
    # Seen from staging itself, only staging's own spend is there.
    own = client(url, "ce", **staging_credentials(url)).get_cost_and_usage(
        TimePeriod={"Start": today.isoformat(), "End": today.isoformat()},
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
    )
    assert {g["Keys"][1] for g in own["ResultsByTime"][-1]["Groups"]} == {STAGING_ACCOUNT_ID}


def test_days_after_seeding_have_costs_for_a_sandbox_left_running(
    seeded: tuple[str, DemoEstate],
):
    """Each of the next two weeks' days has costs, estimated, so a new yesterday is not $0."""
    url, _estate = seeded
    today = datetime.now(UTC).date()
    ahead = today + timedelta(days=COST_DAYS_AHEAD)
    answer = client(url, "ce").get_cost_and_usage(
        TimePeriod={"Start": today.isoformat(), "End": ahead.isoformat()},
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
    )
    later = {
        d["TimePeriod"]["Start"]: d
        for d in answer["ResultsByTime"]
        if today.isoformat() <= d["TimePeriod"]["Start"] < ahead.isoformat()
    }
    assert len(later) == COST_DAYS_AHEAD
    assert all(d["Estimated"] for d in later.values())
    assert all(float(d["Total"]["UnblendedCost"]["Amount"]) > 100 for d in later.values())
