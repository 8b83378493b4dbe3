"""Daily costs from AWS Cost Explorer, by service and linked account.

Cost Explorer bills every API request (each page of a paginated answer is one), so
this module counts the requests it makes and leaves caching to its caller: the
caller asks only for the days it does not have yet, or whose figures Cost Explorer
still marked `Estimated`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from agents.aws.config import AwsAccount
from agents.aws.sessions import AccountSessions

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_ce import CostExplorerClient
    from mypy_boto3_ce.type_defs import (
        GetCostAndUsageRequestTypeDef,
        GetCostAndUsageResponseTypeDef,
    )

# Cost Explorer has one endpoint, in us-east-1, whatever region the resources are in.
CE_REGION = "us-east-1"
# The record types left out unless an operator asks for them.
CREDIT_REFUND_TYPES = ("Credit", "Refund")
# Pages of one query; a runaway pagination would otherwise be billed without end. An
# answer still unfinished after this many pages is refused, never stored in part.
MAX_PAGES = 50
UNKNOWN_ACCOUNT = "unknown"


class CostExplorerError(Exception):
    """Cost Explorer refused or could not be reached; `calls` were still made (and billed)."""

    def __init__(self, message: str, calls: int) -> None:
        super().__init__(message)
        self.calls = calls


@dataclass(frozen=True)
class CostLine:
    """One service's cost in one linked account on one (UTC) day."""

    day: date
    account_id: str
    service: str
    amount: float


@dataclass
class CostFetch:
    """What one fetch returned: the lines, which days it covered, and what it cost us."""

    lines: list[CostLine] = field(default_factory=list)
    # Every day in the fetched range -> whether Cost Explorer marked it Estimated.
    days: dict[date, bool] = field(default_factory=dict)
    calls: int = 0


def cost_explorer_client(
    base_session: boto3.Session,
    sessions: AccountSessions,
    account: AwsAccount,
    config: Config,
) -> CostExplorerClient:
    """A Cost Explorer client acting as `account` (assuming its role when it has one).

    Like the scan's clients, it is made from the base session, so `AWS_ENDPOINT_URL`,
    profiles and event hooks on the base session apply.

    Raises:
        agents.aws.sessions.AssumeRoleError: The account's role could not be assumed.
    """
    credentials = sessions.credentials(account)
    return base_session.client(
        "ce",
        region_name=CE_REGION,
        config=config,
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None,
    )


def _request(
    start: date, end: date, metric: str, include_credits_refunds: bool
) -> GetCostAndUsageRequestTypeDef:
    request: GetCostAndUsageRequestTypeDef = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [metric],
        "GroupBy": [
            {"Type": "DIMENSION", "Key": "SERVICE"},
            {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        ],
    }
    if not include_credits_refunds:
        request["Filter"] = {
            "Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(CREDIT_REFUND_TYPES)}}
        }
    return request


def fetch_daily_costs(
    ce: CostExplorerClient,
    start: date,
    end: date,
    *,
    metric: str,
    include_credits_refunds: bool,
) -> CostFetch:
    """Fetch daily costs for `start` <= day < `end`, grouped by service and linked account.

    Args:
        ce: A Cost Explorer client.
        start: First day (UTC).
        end: The day after the last one, as Cost Explorer's exclusive `End`.
        metric: UnblendedCost, AmortizedCost or NetAmortizedCost.
        include_credits_refunds: False filters out the Credit and Refund record types.

    Returns:
        The lines, every day the answer covered with its Estimated flag (a covered
        day with no cost at all is still a day), and the number of requests made.

    Raises:
        CostExplorerError: A request failed, or the answer was still unfinished after
            `MAX_PAGES` pages (a partial answer would pass missing costs off as zero);
            its `calls` counts every request made.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if end <= start:
        return CostFetch()
    fetch = CostFetch()
    request = _request(start, end, metric, include_credits_refunds)
    amounts: dict[tuple[date, str, str], float] = {}
    for _page in range(MAX_PAGES):
        try:
            response: GetCostAndUsageResponseTypeDef = ce.get_cost_and_usage(**request)
        except ClientError as error:
            # Cost Explorer answered, so the request counts (as AWS would bill it).
            fetch.calls += 1
            details = error.response.get("Error", {})
            raise CostExplorerError(
                f"Cost Explorer refused: {details.get('Code', 'Error')}: "
                f"{details.get('Message', '')}".strip(),
                fetch.calls,
            ) from error
        except BotoCoreError as error:
            # No answer (no credentials, no connection): nothing reached Cost Explorer.
            raise CostExplorerError(f"Cost Explorer unreachable: {error}", fetch.calls) from error
        fetch.calls += 1
        for result in response.get("ResultsByTime", []):
            period = result.get("TimePeriod")
            if period is None:
                continue
            day = date.fromisoformat(period["Start"])
            if not start <= day < end:
                continue
            # A day split across pages is estimated if any page says so.
            fetch.days[day] = fetch.days.get(day, False) or bool(result.get("Estimated"))
            for group in result.get("Groups", []):
                keys = list(group.get("Keys", []))
                service = keys[0] if keys else "Unknown service"
                account = keys[1] if len(keys) > 1 else UNKNOWN_ACCOUNT
                value = group.get("Metrics", {}).get(metric, {}).get("Amount")
                if value is None:
                    continue
                key = (day, account, service)
                amounts[key] = amounts.get(key, 0.0) + float(value)
        token = response.get("NextPageToken")
        if not token:
            break
        request["NextPageToken"] = token
    else:
        raise CostExplorerError(
            f"Cost Explorer's answer for {start.isoformat()} to "
            f"{(end - timedelta(days=1)).isoformat()} was still unfinished after {MAX_PAGES} "
            "pages; none of it was stored",
            fetch.calls,
        )
    # Cost Explorer answers every day of the range, even one with no cost. A day the
    # answer left out was not covered (an account not set up yet, an empty answer): it
    # stays unknown, to be asked for again, rather than stored as a complete $0 day.
    fetch.lines = [
        CostLine(day=day, account_id=account, service=service, amount=amount)
        for (day, account, service), amount in sorted(amounts.items())
    ]
    return fetch


def days_to_fetch(
    wanted: Iterable[date], known: dict[date, bool], stale_estimates: Iterable[date]
) -> list[date]:
    """Which of the wanted days must be asked for again.

    Args:
        wanted: Every day the report needs.
        known: Stored days -> whether they were estimated when fetched.
        stale_estimates: Stored estimated days fetched long enough ago to refresh.

    Returns:
        The missing days and the stale estimated ones, sorted.
    """
    stale = set(stale_estimates)
    return sorted(day for day in set(wanted) if day not in known or day in stale)


def fetch_ranges(days: Iterable[date], max_gap: int = 7) -> list[tuple[date, date]]:
    """Group days into as few [start, end) ranges as sensible.

    A request costs the same whether it spans one day or sixty, so nearby days are
    fetched together even if the days in between are known already; only gaps longer
    than `max_gap` days split a range (one long-known stretch is not worth re-reading
    when it would make the answer spill onto more pages).
    """
    ordered = sorted(set(days))
    ranges: list[tuple[date, date]] = []
    for day in ordered:
        if ranges and (day - ranges[-1][1]).days < max_gap:
            ranges[-1] = (ranges[-1][0], day + timedelta(days=1))
        else:
            ranges.append((day, day + timedelta(days=1)))
    return ranges
