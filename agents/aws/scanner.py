"""Parallel inventory-and-health scan across accounts, regions and services.

The unit of work is one (account, region, service). Units run on a bounded
thread pool; each unit's failure (access denied, timeout, unreachable endpoint,
even a bug in a collector) becomes a `ScanError` in the report, so one bad
region or missing permission never hides the rest of the estate.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from agents.aws.collectors import (
    GLOBAL_REGION,
    CollectContext,
    Health,
    ResourceRecord,
    collect_autoscaling,
    collect_cloudwatch_alarms,
    collect_dynamodb,
    collect_ec2,
    collect_ecs,
    collect_elbv2,
    collect_lambda,
    collect_rds,
    collect_s3,
)
from agents.aws.config import GLOBAL_SERVICES, AwsAccount, AwsConfig, ResourceType, Service
from agents.aws.sessions import AccountSessions, AssumeRoleError, RegionClients

if TYPE_CHECKING:
    import boto3

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

_K = TypeVar("_K")

# Region label of an error that spans every region of an account (its role could not be assumed).
ALL_REGIONS = "*"

# Which service's unit produces each resource type; lets an error hide only its own records.
SERVICE_OF_TYPE: dict[ResourceType, Service] = {
    ResourceType.EC2_INSTANCE: Service.EC2,
    ResourceType.RDS_INSTANCE: Service.RDS,
    ResourceType.LAMBDA_FUNCTION: Service.LAMBDA,
    ResourceType.ECS_SERVICE: Service.ECS,
    ResourceType.TARGET_GROUP: Service.ELBV2,
    ResourceType.AUTOSCALING_GROUP: Service.AUTOSCALING,
    ResourceType.S3_BUCKET: Service.S3,
    ResourceType.DYNAMODB_TABLE: Service.DYNAMODB,
    ResourceType.CLOUDWATCH_ALARM: Service.CLOUDWATCH,
}

_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "AuthorizationError",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "OptInRequired",
        "UnauthorizedAccess",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
    }
)
_THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
    }
)


class ScopeError(ValueError):
    """The requested account, region or service is not one the scan can cover."""


class ErrorKind(StrEnum):
    """Broad cause of a unit's failure, for grouping in reports."""

    ACCESS_DENIED = "access_denied"
    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    ENDPOINT = "endpoint"
    CREDENTIALS = "credentials"
    ERROR = "error"


class ScanError(BaseModel):
    """One (account, region, service) unit that could not be scanned."""

    model_config = ConfigDict(frozen=True)

    account: str
    region: str
    service: str
    message: str
    kind: ErrorKind = ErrorKind.ERROR

    def covers(self, record: ResourceRecord) -> bool:
        """Whether the record would have come from the failed unit.

        Args:
            record: A record, typically from an earlier scan.

        Returns:
            True when this error means the record's absence proves nothing.
        """
        if record.account != self.account:
            return False
        if self.region == ALL_REGIONS:
            return True
        service = SERVICE_OF_TYPE.get(record.type)
        if service is None or service.value != self.service:
            return False
        return self.region == GLOBAL_REGION or self.region == record.region


@dataclass(frozen=True)
class ScanScope:
    """The accounts, regions and services one scan covers, validated and ordered."""

    accounts: tuple[AwsAccount, ...]
    regions: tuple[str, ...]
    services: tuple[Service, ...]

    @property
    def key(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """Hashable identity of the scope (account names, regions, services)."""
        return (
            tuple(a.name for a in self.accounts),
            self.regions,
            tuple(s.value for s in self.services),
        )


class ScanReport(BaseModel):
    """Everything one scan found, and what it could not reach."""

    model_config = ConfigDict(frozen=True)

    records: tuple[ResourceRecord, ...]
    errors: tuple[ScanError, ...]
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    services: tuple[Service, ...]
    started_at: datetime
    finished_at: datetime
    units_total: int

    @property
    def duration(self) -> timedelta:
        """Wall-clock time the scan took."""
        return self.finished_at - self.started_at

    @property
    def partial(self) -> bool:
        """Whether some units failed, so the records are not the whole picture."""
        return bool(self.errors)

    @property
    def by_health(self) -> dict[Health, int]:
        """Record counts per health, every health present (worst first)."""
        counts = Counter(r.health for r in self.records)
        return {h: counts[h] for h in sorted(Health, key=lambda h: -h.severity)}

    @property
    def by_account_region(self) -> dict[tuple[str, str], dict[Health, int]]:
        """Per (account, region): record counts per health."""
        return _group_counts(self.records, lambda r: (r.account, r.region))

    @property
    def by_steward(self) -> dict[str, dict[Health, int]]:
        """Per steward name: record counts per health."""
        return _group_counts(self.records, lambda r: r.steward)

    def unhealthy_first(self) -> list[ResourceRecord]:
        """All records, worst health first, then by account, region, type and id."""
        return sorted(self.records, key=_severity_key)

    def problems(self) -> list[ResourceRecord]:
        """Records that are not healthy, worst first."""
        return [r for r in self.unhealthy_first() if r.health is not Health.HEALTHY]


def _severity_key(record: ResourceRecord) -> tuple[int, str, str, str, str]:
    return (-record.health.severity, record.account, record.region, record.type.value, record.id)


def _group_counts(
    records: Iterable[ResourceRecord], key: Callable[[ResourceRecord], _K]
) -> dict[_K, dict[Health, int]]:
    groups: dict[_K, dict[Health, int]] = {}
    for record in records:
        counts = groups.setdefault(key(record), dict.fromkeys(Health, 0))
        counts[record.health] += 1
    return dict(sorted(groups.items(), key=lambda item: str(item[0])))


def resolve_scope(
    config: AwsConfig,
    base_session: boto3.Session,
    *,
    services: Sequence[Service | str] | None = None,
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
) -> ScanScope:
    """Validate a requested subset against the configuration.

    Args:
        config: The scan configuration.
        base_session: Supplies the region when the configuration lists none.
        services: Service names to scan; None means `config.services`.
        accounts: Account names or ids to scan; None means every configured account.
        regions: Regions to scan; None means every configured region.

    Returns:
        The scope, in configuration order.

    Raises:
        ScopeError: An unknown account, region or service was requested, or no
            region is configured anywhere.
    """
    configured_regions = config.regions or (
        [base_session.region_name] if base_session.region_name else []
    )
    if not configured_regions:
        raise ScopeError("no AWS region configured: set regions in the config or AWS_REGION")

    if accounts is None:
        chosen_accounts = list(config.accounts)
    else:
        wanted = set(accounts)
        chosen_accounts = [
            a for a in config.accounts if a.name in wanted or a.effective_account_id in wanted
        ]
        known = {a.name for a in chosen_accounts} | {
            a.effective_account_id for a in chosen_accounts
        }
        unknown = sorted(wanted - known)
        if unknown:
            names = ", ".join(a.name for a in config.accounts)
            raise ScopeError(f"unknown account {', '.join(unknown)}; configured: {names}")

    if regions is None:
        chosen_regions = list(configured_regions)
    else:
        unknown = sorted(set(regions) - set(configured_regions))
        if unknown:
            raise ScopeError(
                f"region {', '.join(unknown)} is not configured; "
                f"configured: {', '.join(configured_regions)}"
            )
        chosen_regions = [r for r in configured_regions if r in set(regions)]

    if services is None:
        chosen_services = list(config.services)
    else:
        try:
            wanted_services = {Service(s) for s in services}
        except ValueError as error:
            known_services = ", ".join(s.value for s in Service)
            raise ScopeError(f"{error}; known services: {known_services}") from None
        chosen_services = [s for s in Service if s in wanted_services]

    return ScanScope(tuple(chosen_accounts), tuple(chosen_regions), tuple(chosen_services))


@dataclass(frozen=True)
class _Unit:
    account: AwsAccount
    region: str  # GLOBAL_REGION for account-wide services
    service: Service
    client_region: str  # where the API is called; differs only for global services


def scan_units(scope: ScanScope) -> list[_Unit]:
    """The scan's units, in the order a sequential scan runs them (accounts outermost)."""
    units = []
    for account in scope.accounts:
        for service in scope.services:
            if service in GLOBAL_SERVICES:
                units.append(_Unit(account, GLOBAL_REGION, service, scope.regions[0]))
            else:
                units.extend(_Unit(account, r, service, r) for r in scope.regions)
    return units


def _collect(clients: RegionClients, unit: _Unit, ctx: CollectContext) -> list[ResourceRecord]:
    match unit.service:
        case Service.EC2:
            return collect_ec2(clients.ec2(), ctx)
        case Service.RDS:
            return collect_rds(clients.rds(), ctx)
        case Service.LAMBDA:
            return collect_lambda(clients.lambda_(), clients.cloudwatch(), ctx)
        case Service.ECS:
            return collect_ecs(clients.ecs(), ctx)
        case Service.ELBV2:
            return collect_elbv2(clients.elbv2(), ctx)
        case Service.AUTOSCALING:
            return collect_autoscaling(clients.autoscaling(), ctx)
        case Service.S3:
            return collect_s3(clients.s3(), ctx)
        case Service.DYNAMODB:
            return collect_dynamodb(clients.dynamodb(), ctx)
        case Service.CLOUDWATCH:
            return collect_cloudwatch_alarms(clients.cloudwatch(), ctx)


def _describe_failure(error: Exception) -> tuple[ErrorKind, str]:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(error, AssumeRoleError):
        # Named by what STS said (AccessDenied is not "no credentials"), told in full.
        cause = error.__cause__
        if isinstance(cause, ClientError | BotoCoreError):
            return _describe_failure(cause)[0], str(error)
        return ErrorKind.CREDENTIALS, str(error)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Error"))
        message = f"{code}: {details.get('Message', '')}".rstrip(": ")
        if code in _ACCESS_DENIED_CODES:
            return ErrorKind.ACCESS_DENIED, message
        if code in _THROTTLING_CODES:
            return ErrorKind.THROTTLED, message
        return ErrorKind.ERROR, message
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return ErrorKind.TIMEOUT, str(error)
    if isinstance(error, EndpointConnectionError):
        return ErrorKind.ENDPOINT, str(error)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return ErrorKind.CREDENTIALS, str(error)
    if isinstance(error, BotoCoreError):
        return ErrorKind.ERROR, str(error)
    # A bug or an unexpected response shape: still contained to its unit, but logged in full.
    logger.error("unexpected failure in AWS scan unit", exc_info=error)
    return ErrorKind.ERROR, f"{type(error).__name__}: {error}"


def _report_progress(progress: ProgressCallback | None, done: int, total: int) -> None:
    # Progress is best effort: a failing callback (a Slack edit, say) must not cost the scan.
    if progress is None:
        return
    try:
        progress(done, total)
    except Exception:
        logger.warning("AWS scan progress callback failed", exc_info=True)


class _Run:
    """State of one scan in progress (kept off module level and off the caller)."""

    def __init__(
        self,
        config: AwsConfig,
        scope: ScanScope,
        sessions: AccountSessions,
        progress: ProgressCallback | None,
    ) -> None:
        self.config = config
        self.scope = scope
        self.sessions = sessions
        self.progress = progress
        self.now = datetime.now(UTC)
        self.units = scan_units(scope)
        self.done = 0
        self.records: list[ResourceRecord] = []
        self.errors: list[ScanError] = []

    def advance(self, count: int = 1) -> None:
        self.done += count
        _report_progress(self.progress, self.done, len(self.units))

    def resolve_credentials(self, account: AwsAccount) -> ScanError | None:
        try:
            self.sessions.credentials(account)
        except Exception as error:
            kind, message = _describe_failure(error)
            return ScanError(
                account=account.name, region=ALL_REGIONS, service="sts", message=message, kind=kind
            )
        return None

    def run_unit(self, unit: _Unit) -> list[ResourceRecord] | ScanError:
        try:
            clients = self.sessions.clients(unit.account, unit.client_region)
            ctx = CollectContext(unit.account.name, unit.region, self.config, self.now)
            records = _collect(clients, unit, ctx)
        except Exception as error:
            kind, message = _describe_failure(error)
            return ScanError(
                account=unit.account.name,
                region=unit.region,
                service=unit.service.value,
                message=message,
                kind=kind,
            )
        if unit.region == GLOBAL_REGION:
            # Account-wide listings include resources outside the requested regions.
            allowed = {*self.scope.regions, GLOBAL_REGION}
            records = [r for r in records if r.region in allowed]
        return records

    def accept(self, outcome: list[ResourceRecord] | ScanError) -> None:
        if isinstance(outcome, ScanError):
            self.errors.append(outcome)
        else:
            self.records.extend(outcome)
        self.advance()

    def units_of(self, account: AwsAccount) -> list[_Unit]:
        """The account's units, in scan order."""
        return [u for u in self.units if u.account.name == account.name]

    def skip_account(self, failure: ScanError) -> None:
        """Record a credential failure in place of every unit of its account."""
        self.errors.append(failure)
        skipped = sum(1 for u in self.units if u.account.name == failure.account)
        if skipped:
            self.advance(skipped)

    def run_sequentially(self, roles: Sequence[AwsAccount]) -> None:
        """Every role first, then every unit of the accounts that have credentials."""
        failed = set()
        for account in roles:
            failure = self.resolve_credentials(account)
            if failure is not None:
                failed.add(account.name)
                self.skip_account(failure)
        for unit in self.units:
            if unit.account.name not in failed:
                self.accept(self.run_unit(unit))

    def run_in_parallel(self, pool: ThreadPoolExecutor, roles: Sequence[AwsAccount]) -> None:
        """Start each account's units as soon as its credentials arrive.

        An account without a role starts at once; one with a role starts when its
        AssumeRole answers, not when every account's has, so the scan takes as long
        as its slowest chain of calls (AssumeRole, then a unit's calls), not the
        slowest AssumeRole plus the slowest unit. A refused role costs one error
        instead of one per (region, service) of its account.
        """
        assuming = {pool.submit(self.resolve_credentials, account): account for account in roles}
        collecting: set[Future[list[ResourceRecord] | ScanError]] = set()

        def start(account: AwsAccount) -> None:
            collecting.update(pool.submit(self.run_unit, unit) for unit in self.units_of(account))

        for account in self.scope.accounts:
            if account.role_arn is None:
                start(account)
        while assuming or collecting:
            running: list[Future[Any]] = [*assuming, *collecting]
            finished = wait(running, return_when=FIRST_COMPLETED).done
            for credentials in [f for f in assuming if f in finished]:
                account = assuming.pop(credentials)
                failure = credentials.result()
                if failure is None:
                    start(account)
                else:
                    self.skip_account(failure)
            for unit in [f for f in collecting if f in finished]:
                collecting.discard(unit)
                self.accept(unit.result())


def scan(
    config: AwsConfig,
    base_session: boto3.Session,
    *,
    services: Sequence[Service | str] | None = None,
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    sequential: bool = False,
    sessions: AccountSessions | None = None,
) -> ScanReport:
    """Inventory resources and judge their health across accounts, regions and services.

    Read-only. Never raises for AWS-side failures: each failed unit is a
    `ScanError` in the report and the other units' records are kept.

    Args:
        config: The scan configuration.
        base_session: The bot's own session; roles are assumed from it and
            every client is created from it (so its event hooks apply).
        services: Services to scan; None means `config.services`.
        accounts: Account names or ids; None means all configured accounts.
        regions: Regions; None means all configured regions.
        progress: Called as `progress(done, total)` units, from the calling
            thread, after each unit finishes.
        sequential: Run units one after another in the calling thread (for
            benchmarks and debugging) instead of on the thread pool.
        sessions: Credentials and clients to reuse, from `base_session` and
            `config`, for a process that scans again; a fresh set by default.

    Returns:
        The report.

    Raises:
        ScopeError: The requested accounts, regions or services are not
            configured or not known.
    """
    scope = resolve_scope(
        config, base_session, services=services, accounts=accounts, regions=regions
    )
    started = datetime.now(UTC)
    if sessions is None:
        sessions = AccountSessions(base_session, config)
    else:
        sessions.forget_failures()
    run = _Run(config, scope, sessions, progress)
    _report_progress(progress, 0, len(run.units))

    roles = [a for a in scope.accounts if a.role_arn is not None]
    if sequential:
        run.run_sequentially(roles)
    else:
        workers = max(1, min(config.max_workers, len(run.units)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aws-scan") as pool:
            run.run_in_parallel(pool, roles)

    return ScanReport(
        records=tuple(sorted(run.records, key=lambda r: (r.key[:2], r.type.value, r.id))),
        errors=tuple(sorted(run.errors, key=lambda e: (e.account, e.region, e.service))),
        accounts=tuple(a.name for a in scope.accounts),
        regions=scope.regions,
        services=scope.services,
        started_at=started,
        finished_at=datetime.now(UTC),
        units_total=len(run.units),
    )
