"""The AWS status scan against a real moto server on loopback.

boto3 reaches moto only through AWS_ENDPOINT_URL, exactly as it would reach any
other endpoint, so the production code paths (sessions, AssumeRole, paginators,
retries) run unchanged. Failures and states moto cannot produce are injected
with botocore event hooks on the base session, as noted where they are used.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectTimeoutError
from pydantic import ValidationError

from agents.aws.collectors import Health, ResourceRecord
from agents.aws.config import AwsAccount, AwsConfig, ResourceType, Service, default_stewards
from agents.aws.report import describe_diff, diff, render_text
from agents.aws.scanner import ALL_REGIONS, ScanError, ScanReport, ScopeError, scan
from agents.aws.sessions import AccountSessions
from tests.aws.fleet import (
    EAST,
    PROD,
    PROD_ID,
    STAGING,
    STAGING_ID,
    WEST,
    Fleet,
    Seeder,
    deny_region,
    impair_instance,
    make_config,
    point_aws_at,
    reset_moto,
    seed_fleet,
    seed_lambda,
)


@pytest.fixture
def base_session(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    """A default-chain session pointed at a freshly reset moto by the environment only."""
    reset_moto(moto_endpoint)
    point_aws_at(monkeypatch, moto_endpoint)
    return boto3.Session()


@pytest.fixture
def fleet(base_session: boto3.Session) -> Fleet:
    """Two accounts x two regions of resources, some of them in trouble."""
    return seed_fleet(base_session)


# --- helpers -----------------------------------------------------------------


def readonly_policy_actions() -> set[str]:
    """Every action the shipped read-only IAM policy allows."""
    path = Path(__file__).resolve().parents[2] / "infra" / "iam" / "aws-status-readonly.json"
    policy = json.loads(path.read_text())
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def iam_action(service_name: str, operation: str) -> str:
    """The IAM action that authorises one API operation (for the ones the scan makes)."""
    prefix = {"elbv2": "elasticloadbalancing"}.get(service_name, service_name)
    action = {"ListBuckets": "ListAllMyBuckets"}.get(operation, operation)
    return f"{prefix}:{action}"


def by_id(report: ScanReport) -> dict[str, ResourceRecord]:
    """Records by id (ids are unique in the seeded fleet)."""
    records = {r.id: r for r in report.records}
    assert len(records) == len(report.records)
    return records


# --- tests -------------------------------------------------------------------


def test_assumed_role_reaches_an_isolated_account(base_session: boto3.Session) -> None:
    """AssumeRole into another account id lands in that account's own backend, once per scan."""
    assume_calls: list[dict[str, Any]] = []
    base_session.events.register(
        "before-call.sts.AssumeRole", lambda params, **_: assume_calls.append(params["body"])
    )
    sessions = AccountSessions(base_session, make_config())
    staging_clients = sessions.clients(STAGING, EAST)
    staging_clients.s3().create_bucket(Bucket="only-in-staging")
    sessions.clients(STAGING, WEST)

    assert sessions.credentials(PROD) is None
    assert [b["Name"] for b in staging_clients.s3().list_buckets()["Buckets"]] == [
        "only-in-staging"
    ]
    assert sessions.clients(PROD, EAST).s3().list_buckets()["Buckets"] == []
    staging_identity = sessions.session(STAGING).client("sts").get_caller_identity()
    assert staging_identity["Account"] == STAGING_ID
    assert staging_identity["Arn"].endswith("assumed-role/agentbot-aws-status/agentbot-scan")
    assert len(assume_calls) == 1
    assert assume_calls[0]["ExternalId"] == "agentbot-external-id"


def test_scan_reports_each_seeded_problem(base_session: boto3.Session, fleet: Fleet) -> None:
    """Each seeded problem gets the right health and reason, using only the policy's actions."""
    impair_instance(base_session, fleet.web_impaired)
    calls: set[tuple[str, str]] = set()
    base_session.events.register(
        "before-call",
        lambda model, **_: calls.add((model.service_model.service_name, model.name)),
    )
    report = scan(make_config(), base_session)
    records = by_id(report)

    assert report.errors == ()
    assert {iam_action(service, operation) for service, operation in calls} == (
        readonly_policy_actions() | {"sts:AssumeRole"}
    )
    assert report.units_total == 2 * (8 * 2 + 1)
    assert records[fleet.web_running].health is Health.HEALTHY
    assert records[fleet.web_running].name == "web-1"
    assert records[fleet.web_running].arn == (
        f"arn:aws:ec2:{EAST}:{PROD_ID}:instance/{fleet.web_running}"
    )
    stopped = records[fleet.web_stopped]
    assert (stopped.health, stopped.state) == (Health.DEGRADED, "stopped")
    assert stopped.reason.startswith("stopped: ")
    impaired = records[fleet.web_impaired]
    assert impaired.health is Health.UNHEALTHY
    assert impaired.reason == "instance status check impaired (reachability failed)"

    assert records["orders-db"].health is Health.HEALTHY
    assert (records["billing-db"].health, records["billing-db"].reason) == (
        Health.DEGRADED,
        "status stopped",
    )

    assert records["resize-images"].health is Health.UNHEALTHY
    assert records["resize-images"].reason == "3 errors of 4 invocations (75%) in the last 60 min"
    assert records["send-email"].health is Health.DEGRADED
    assert records["send-email"].reason == (
        "2 errors of 200 invocations (1%) in the last 60 min; 5 throttles in the last 60 min"
    )
    assert records["nightly-report"].health is Health.HEALTHY

    assert (records["apps/api"].health, records["apps/api"].reason) == (
        Health.UNHEALTHY,
        "0/2 tasks running, 2 pending",
    )
    assert records["apps/worker"].health is Health.HEALTHY

    target_group = records["web-tg"]
    assert target_group.health is Health.DEGRADED
    assert target_group.reason == (
        f"1/2 targets healthy: {fleet.web_stopped} unused (Target.InvalidState)"
    )
    asg = records["batch-asg"]
    assert asg.health is Health.DEGRADED
    assert asg.reason == (
        f"1/2 instances in service and healthy: {fleet.asg_unhealthy_instance} InService/Unhealthy"
    )

    alarm = records["api-5xx"]
    assert (alarm.health, alarm.type) == (Health.UNHEALTHY, ResourceType.CLOUDWATCH_ALARM)
    assert alarm.reason.startswith("Threshold Crossed: 1 datapoint [42.0]")
    assert records["sessions"].health is Health.HEALTHY

    # S3 is listed once per account and each bucket carries its own region.
    buckets = {r.id: (r.account, r.region) for r in report.records if r.type.value == "s3_bucket"}
    assert buckets == {
        "prod-assets": ("prod", EAST),
        "prod-eu-bucket": ("prod", WEST),
        "staging-bucket": ("staging", EAST),
        "staging-eu-bucket": ("staging", WEST),
    }
    assert (records[fleet.staging_web].account, records[fleet.staging_web].region) == (
        "staging",
        EAST,
    )
    assert records["staging-fn"].region == WEST

    assert {(a, r) for a, r in report.by_account_region} == {
        ("prod", EAST),
        ("prod", WEST),
        ("staging", EAST),
        ("staging", WEST),
    }
    assert report.by_health[Health.UNHEALTHY] == 4  # impaired, resize-images, api, alarm
    assert report.by_health[Health.DEGRADED] == 5  # stopped, billing-db, send-email, tg, asg
    worst = report.unhealthy_first()
    assert [r.health for r in worst[:4]] == [Health.UNHEALTHY] * 4
    assert worst[-1].health is Health.HEALTHY

    # Default stewards, straight from the spec.
    assert (impaired.steward, impaired.autonomy) == ("Bill Gates", 6)
    assert (records["resize-images"].steward, records["resize-images"].autonomy) == (
        "Bill Gates",
        8,
    )
    assert (records["billing-db"].steward, records["billing-db"].autonomy) == ("Noguchi", 4)
    assert (records["sessions"].steward, records["sessions"].autonomy) == ("Noguchi", 5)
    assert records["prod-assets"].steward == "Steve Jobs"
    assert records["web-tg"].steward == records["batch-asg"].steward == "Napoleon"
    assert alarm.steward == "Drucker"
    assert report.by_steward["Noguchi"][Health.DEGRADED] == 1


def test_failed_region_is_a_partial_failure(base_session: boto3.Session, fleet: Fleet) -> None:
    """A region that denies every call is listed as failed; everything else is still reported."""
    deny_region(base_session, WEST)
    report = scan(make_config(), base_session)
    records = by_id(report)

    failed = {(e.account, e.region, e.service, e.kind.value) for e in report.errors}
    regional = [s.value for s in Service if s is not Service.S3]
    assert failed == {
        (account, WEST, service, "access_denied")
        for account in ("prod", "staging")
        for service in regional
    }
    assert all(e.message == f"AccessDenied: explicit deny in {WEST}" for e in report.errors)
    assert report.partial
    assert fleet.eu_web not in records
    assert {r.region for r in report.records if r.type is not ResourceType.S3_BUCKET} == {EAST}
    assert records[fleet.staging_web].health is Health.HEALTHY
    assert records["apps/api"].health is Health.UNHEALTHY
    # Buckets are listed through the first region, so they survive the broken one.
    assert "prod-eu-bucket" in records

    text = render_text(report)
    assert "Partial failures (these were not scanned)" in text
    assert f"AccessDenied: explicit deny in {WEST}" in text
    assert f"staging │ {WEST}" in text


def test_timeouts_are_retried_then_reported(base_session: boto3.Session, fleet: Fleet) -> None:
    """A call that keeps timing out is retried up to max_attempts, then fails only its unit."""
    attempts: list[str] = []

    def time_out_lambda(request: Any, **_: Any) -> None:
        # The region is only visible in the signature's credential scope at this stage.
        scope = f"/{EAST}/lambda/aws4_request"
        if scope in request.headers.get("Authorization", b"").decode():
            attempts.append(request.url)
            raise ConnectTimeoutError(endpoint_url=request.url)

    base_session.events.register("before-send.lambda", time_out_lambda)
    config = make_config(max_attempts=2)
    report = scan(config, base_session, services=["lambda", "ec2"])

    assert [(e.account, e.region, e.service, e.kind.value) for e in report.errors] == [
        ("prod", EAST, "lambda", "timeout"),
        ("staging", EAST, "lambda", "timeout"),
    ]
    assert len(attempts) == 2 * config.max_attempts
    records = by_id(report)
    assert "staging-fn" in records
    assert records[fleet.web_stopped].health is Health.DEGRADED


def test_lambda_without_metrics_access_is_unknown(
    base_session: boto3.Session, fleet: Fleet
) -> None:
    """Functions stay listed when CloudWatch refuses their metrics, marked unknown, not healthy."""

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")

    base_session.events.register("before-call.cloudwatch.GetMetricData", refuse)
    report = scan(make_config(), base_session, services=["lambda"])

    assert report.errors == ()
    assert {(r.id, r.health, r.reason) for r in report.records} == {
        (name, Health.UNKNOWN, "metrics unavailable: AccessDenied")
        for name in ("resize-images", "send-email", "nightly-report", "staging-fn")
    }


def test_unassumable_role_is_one_error_for_the_account(
    base_session: boto3.Session, fleet: Fleet
) -> None:
    """A refused AssumeRole fails that account once, as access denied (not "no
    credentials"), with progress still reaching the total."""

    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized to assume"}},
            "AssumeRole",
        )

    base_session.events.register("before-call.sts.AssumeRole", refuse)
    ticks: list[tuple[int, int]] = []
    report = scan(
        make_config(), base_session, progress=lambda done, total: ticks.append((done, total))
    )

    assert report.errors == (
        ScanError(
            account="staging",
            region=ALL_REGIONS,
            service="sts",
            message=(
                f"cannot assume {STAGING.role_arn} for account staging: "
                "AccessDenied: not authorized to assume"
            ),
            # Named by what STS said: the credentials were there, the role refused them.
            kind="access_denied",
        ),
    )
    assert {r.account for r in report.records} == {"prod"}
    assert ticks[0] == (0, report.units_total)
    assert ticks[-1] == (report.units_total, report.units_total)
    assert [done for done, _ in ticks] == sorted(done for done, _ in ticks)
    assert "all" in render_text(report)


def test_an_account_without_a_role_is_scanned_while_another_role_is_being_assumed(
    base_session: boto3.Session, fleet: Fleet
) -> None:
    """prod's calls start while staging's AssumeRole is still unanswered, not after it."""
    prod_called = threading.Event()
    seen_before_role: list[bool] = []

    def note_call(**_: Any) -> None:
        if threading.current_thread().name.startswith("aws-scan"):
            prod_called.set()

    def slow_assume(**_: Any) -> None:
        # AssumeRole answers only once the scan has made another account's calls (or
        # after ten seconds, when it waits for every role before calling anything).
        seen_before_role.append(prod_called.wait(timeout=10))

    base_session.events.register("before-call.ec2.DescribeInstances", note_call)
    base_session.events.register("before-call.sts.AssumeRole", slow_assume)
    report = scan(make_config(), base_session, services=["ec2"])

    assert seen_before_role == [True]
    assert not report.errors and {r.account for r in report.records} == {"prod", "staging"}


def test_clients_are_made_once_per_account_region_and_service(
    base_session: boto3.Session, fleet: Fleet
) -> None:
    """A scan makes one client per (account, region, service); a rescan reusing them, none."""
    made: list[str] = []
    base_session.events.register(
        "creating-client-class", lambda **kw: made.append(kw["event_name"].rsplit(".", 1)[-1])
    )
    config = make_config()
    sessions = AccountSessions(base_session, config)
    first = scan(config, base_session, services=["lambda", "cloudwatch"], sessions=sessions)
    # Two accounts x two regions, each with one Lambda and one CloudWatch client (the
    # Lambda unit's metrics and the alarms unit share it), and one STS client.
    assert sorted(made) == sorted(["lambda"] * 4 + ["cloudwatch"] * 4 + ["sts"])
    made.clear()
    again = scan(config, base_session, services=["lambda", "cloudwatch"], sessions=sessions)
    assert made == []
    assert not first.errors and not again.errors and len(again.records) == len(first.records)


def test_stewards_are_overridable_from_config(base_session: boto3.Session, fleet: Fleet) -> None:
    """A config entry replaces one steward and leaves the other defaults in place."""
    config = AwsConfig.model_validate(
        {
            "accounts": [{"name": "prod"}],
            "regions": [EAST],
            "stewards": {"ec2_instance": {"name": "Grace Hopper", "autonomy": 2}},
        }
    )
    report = scan(config, base_session, services=["ec2", "rds"])
    records = by_id(report)

    assert (records[fleet.web_running].steward, records[fleet.web_running].autonomy) == (
        "Grace Hopper",
        2,
    )
    assert (records["billing-db"].steward, records["billing-db"].autonomy) == ("Noguchi", 4)
    assert set(report.by_steward) == {"Grace Hopper", "Noguchi"}


def test_sequential_scan_matches_parallel(base_session: boto3.Session, fleet: Fleet) -> None:
    """The sequential mode (used by the benchmark) finds exactly what the parallel one does."""
    config = make_config()
    parallel = scan(config, base_session)
    sequential = scan(config, base_session, sequential=True)

    def verdicts(report: ScanReport) -> list[tuple[Any, ...]]:
        return [(r.key, r.health, r.reason) for r in report.records]

    assert verdicts(sequential) == verdicts(parallel)
    assert len(parallel.records) > 20


def test_diff_says_what_changed_since_the_previous_scan(
    base_session: boto3.Session, fleet: Fleet
) -> None:
    """Recovered, newly unhealthy, added and removed resources are told apart."""
    config = make_config(accounts=[PROD])
    before = scan(config, base_session)

    prod = Seeder(base_session, PROD)
    prod("ec2", EAST).start_instances(InstanceIds=[fleet.web_stopped])
    prod("ec2", WEST).stop_instances(InstanceIds=[fleet.eu_web])
    prod("dynamodb", WEST).delete_table(TableName="prod-eu-table")
    seed_lambda(prod, WEST, "new-fn", {"Invocations": 2, "Errors": 2})
    after = scan(config, base_session)

    changes = diff(before.records, after.records, current_errors=after.errors)
    # Starting web-2 also brings its target back, so the target group recovers with it.
    assert [c.record.id for c in changes.recovered] == [fleet.web_stopped, "web-tg"]
    assert [(c.record.id, c.previous) for c in changes.newly_unhealthy] == [
        ("new-fn", None),
        (fleet.eu_web, Health.HEALTHY),
    ]
    assert [r.id for r in changes.added] == ["new-fn"]
    assert [r.id for r in changes.removed] == ["prod-eu-table"]
    lines = describe_diff(changes)
    assert lines == [
        f"NEW UNHEALTHY: lambda_function new-fn (prod/{WEST}) - "
        f"2 errors of 2 invocations (100%) in the last 60 min (new)",
        f"NEW DEGRADED: ec2_instance prod-eu-web-1 ({fleet.eu_web}) (prod/{WEST}) - "
        f"{after_reason(after, fleet.eu_web)} (was healthy)",
        f"RECOVERED: ec2_instance web-2 ({fleet.web_stopped}) (prod/{EAST}) (was degraded)",
        f"RECOVERED: target_group web-tg (prod/{EAST}) (was degraded)",
        f"ADDED: lambda_function new-fn (prod/{WEST}) [unhealthy]",
        f"REMOVED: dynamodb_table prod-eu-table (prod/{WEST})",
    ]
    assert describe_diff(diff(after.records, after.records)) == [
        "No changes since the previous scan."
    ]


def after_reason(report: ScanReport, resource_id: str) -> str:
    """The reason a report gives for one resource."""
    return by_id(report)[resource_id].reason


def test_diff_does_not_call_resources_in_failed_units_removed() -> None:
    """Resources a failed unit would have listed are 'not checked', not 'removed'."""
    steward = default_stewards()[ResourceType.EC2_INSTANCE]
    common = {"account": "prod", "state": "running", "steward": steward.name, "autonomy": 6}
    east = ResourceRecord(
        id="i-1", arn="a1", type=ResourceType.EC2_INSTANCE, region=EAST, health="healthy", **common
    )
    west = east.model_copy(update={"id": "i-2", "arn": "a2", "region": WEST})
    west_error = ScanError(account="prod", region=WEST, service="ec2", message="timed out")

    changes = diff([east, west], [], current_errors=[west_error])
    assert [r.id for r in changes.removed] == ["i-1"]
    assert [r.id for r in changes.unverified] == ["i-2"]
    assert (
        describe_diff(changes)[-1] == f"NOT CHECKED (scan failed): ec2_instance i-2 (prod/{WEST})"
    )


def test_rendering_leads_with_totals_and_problems(
    base_session: boto3.Session, fleet: Fleet
) -> None:
    """The terminal view shows totals by health and steward, then problems worst first."""
    impair_instance(base_session, fleet.web_impaired)
    report = scan(make_config(), base_session)
    text = render_text(report, width=200)

    sections = ["Totals by health", "By steward", "Needs attention (worst first)"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    assert "Partial failures" not in text
    assert "resources in 2 accounts x 2 regions: 4 unhealthy, 5 degraded, 0 unknown" in text
    impaired_row = next(line for line in text.splitlines() if fleet.web_impaired in line)
    cells = [cell.strip() for cell in impaired_row.split("│")[1:-1]]
    assert cells == [
        "unhealthy",
        "ec2_instance",
        f"web-3 ({fleet.web_impaired})",
        "prod",
        EAST,
        "Bill Gates (6)",
        "instance status check impaired (reachability failed)",
    ]
    for expected in (
        "0/2 tasks running, 2 pending",
        "Threshold Crossed: 1 datapoint [42.0]",
        "Bill Gates (8)",
        "Noguchi (4)",
    ):
        assert expected in text
    steward_row = next(line for line in text.splitlines() if line.startswith("│ Noguchi "))
    # Noguchi has orders-db, billing-db (degraded) and three tables.
    assert [cell.strip() for cell in steward_row.split("│")[1:-1]] == [
        "Noguchi",
        "6",
        "0",
        "1",
        "0",
    ]
    problems = text[text.index("Needs attention") :]
    assert problems.index("unhealthy") < problems.index("degraded")

    # Per account, and per region within it, as the Slack card has them.
    places = text[text.index("By account and region") : text.index("Needs attention")]
    place_rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in places.splitlines()
        if line.startswith("│")
    ]
    assert [row[:2] for row in place_rows if row[1] == "all"] == [
        ["prod", "all"],
        ["staging", "all"],
    ]
    assert ["", EAST] in [row[:2] for row in place_rows]


def test_at_80_columns_the_reasons_stay_readable(base_session: boto3.Session, fleet: Fleet) -> None:
    """In an 80-column terminal no line is wider than 80 and each reason is whole."""
    impair_instance(base_session, fleet.web_impaired)
    text = render_text(scan(make_config(), base_session), width=80)

    assert max(len(line) for line in text.splitlines()) <= 80
    problems = text[text.index("Needs attention") :]
    flat = " ".join(
        cell.strip()
        for line in problems.splitlines()
        for cell in line.split("│")[3:4]
        if cell.strip()
    )
    assert "instance status check impaired (reachability failed)" in flat
    assert f"web-3 ({fleet.web_impaired})" in problems


def throttle(session: boto3.Session, operation: str, times: int) -> list[str]:
    """Answer the first `times` sends of a DynamoDB operation with ThrottlingException.

    A `before-send` hook that returns a response stands in for the network: botocore
    parses it and its retry handler sees the throttling exactly as from AWS.
    """
    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        if request.headers.get("X-Amz-Target", b"").decode().endswith(f".{operation}"):
            sent.append(operation)
            if len(sent) <= times:
                body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
                return AWSResponse(request.url, 400, {}, _Raw(body))
        return None

    session.events.register("before-send.dynamodb", answer)
    return sent


class _Raw:
    """The raw body botocore reads from a canned response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def test_throttled_calls_are_retried_and_the_scan_gets_the_data(
    base_session: boto3.Session, fleet: Fleet
) -> None:
    """Two throttled answers in a row, then the real one: the tables are still reported."""
    sent = throttle(base_session, "ListTables", times=2)
    config = make_config(accounts=[PROD], regions=[EAST], max_attempts=3)
    report = scan(config, base_session, services=["dynamodb"])

    assert report.errors == ()
    assert sent == ["ListTables"] * 3
    assert [r.id for r in report.records] == ["sessions"]


@pytest.mark.parametrize(("attempts", "scanned"), [("1", False), ("2", True)])
def test_aws_max_attempts_applies_when_aws_config_leaves_it_unset(
    base_session: boto3.Session,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    attempts: str,
    scanned: bool,
) -> None:
    """AWS_MAX_ATTEMPTS=1 turns retries off; 2 lets one throttled call through on retry."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", attempts)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    session = boto3.Session()
    sent = throttle(session, "ListTables", times=1)
    config = make_config(accounts=[PROD], regions=[EAST], max_attempts=None)
    report = scan(config, session, services=["dynamodb"])

    assert len(sent) == int(attempts)
    assert bool(report.records) is scanned
    if not scanned:
        [error] = report.errors
        assert (error.service, error.kind.value) == ("dynamodb", "throttled")


def test_aws_config_max_attempts_wins_over_the_environment(
    base_session: boto3.Session, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit `[aws] max_attempts` is kept even when AWS_MAX_ATTEMPTS says otherwise."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    session = boto3.Session()
    sent = throttle(session, "ListTables", times=1)
    report = scan(
        make_config(accounts=[PROD], regions=[EAST], max_attempts=2), session, services=["dynamodb"]
    )

    assert sent == ["ListTables"] * 2
    assert report.errors == () and report.records


def test_scope_is_validated_before_any_call(base_session: boto3.Session) -> None:
    """Unknown accounts, regions or services are refused with the configured choices."""
    config = make_config()
    with pytest.raises(ScopeError, match="unknown account nope; configured: prod, staging"):
        scan(config, base_session, accounts=["nope"])
    with pytest.raises(ScopeError, match="region ap-south-1 is not configured"):
        scan(config, base_session, regions=["ap-south-1"])
    with pytest.raises(ScopeError, match="known services: ec2, rds"):
        scan(config, base_session, services=["ec3"])
    report = scan(config, base_session, accounts=[STAGING_ID], regions=[WEST], services=["s3"])
    assert (report.accounts, report.regions, report.units_total) == (("staging",), (WEST,), 1)


def test_config_defaults_and_validation() -> None:
    """Defaults follow the spec; mistakes in accounts are refused at load time."""
    config = AwsConfig()
    assert config.accounts == [AwsAccount(name="default")]
    assert config.services == list(Service)
    assert (config.max_workers, config.cache_seconds) == (32, 60)
    expected = {
        ResourceType.EC2_INSTANCE: ("Bill Gates", 6),
        ResourceType.LAMBDA_FUNCTION: ("Bill Gates", 8),
        ResourceType.S3_BUCKET: ("Steve Jobs", 5),
        ResourceType.CLOUDFRONT_DISTRIBUTION: ("Steve Jobs", 5),
        ResourceType.AUTOSCALING_GROUP: ("Napoleon", 5),
        ResourceType.LOAD_BALANCER: ("Napoleon", 5),
        ResourceType.LAMBDA_EDGE_FUNCTION: ("Hannibal", 5),
        ResourceType.CLOUDWATCH_ALARM: ("Drucker", 5),
        ResourceType.XRAY_GROUP: ("Drucker", 5),
        ResourceType.API_GATEWAY: ("Kotler", 5),
        ResourceType.SNS_TOPIC: ("Kotler", 5),
        ResourceType.RDS_INSTANCE: ("Noguchi", 4),
        ResourceType.DYNAMODB_TABLE: ("Noguchi", 5),
    }
    for resource_type, (name, autonomy) in expected.items():
        steward = config.steward_for(resource_type)
        assert (steward.name, steward.autonomy) == (name, autonomy)

    for bad in (
        {"accounts": [{"name": "a", "external_id": "x-123"}]},
        {"accounts": [{"name": "a", "account_id": "111111111111", "role_arn": STAGING.role_arn}]},
        {"accounts": [{"name": "a"}, {"name": "a"}]},
        {"regions": ["mars-north-1a"]},
        {"stewards": {"ec2_instance": {"name": "X", "autonomy": 11}}},
    ):
        with pytest.raises(ValidationError):
            AwsConfig.model_validate(bad)
    assert json.loads(config.model_dump_json())["stewards"]["rds_instance"]["autonomy"] == 4
