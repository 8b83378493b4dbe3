"""Cost reports from Cost Explorer (moto), with the history cached in PostgreSQL."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select

from agents.aws.cost_report import BudgetState, CostReport, Period, render_text
from bot import metrics
from bot.cli import main
from bot.services import Services
from bot.settings import Settings, get_settings
from jobs.aws.cost_history import CE_CALLS_KEY, CostDay
from jobs.aws.cost_reports import CostReportRun, make_report
from tests.cost.conftest import (
    EC2,
    LAMBDA,
    PROD_ID,
    RDS,
    S3,
    daily_costs,
    history,
    paged,
    queue_ce_results,
    reconfigure,
    result_by_time,
)

# A Saturday morning (UTC): the report is as of Friday 14 March 2025.
NOW = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
AS_OF = date(2025, 3, 14)
# Feb 1 to Mar 14: what a "yesterday" report needs (last month to the same point,
# 30 days for the chart, 28 days of anomaly baseline).
HISTORY_DAYS = 42


def report(services: Services, period: Period = "yesterday", now: datetime = NOW) -> CostReport:
    """Make a report the way the digest and `/agent aws cost` do."""
    return make_report(
        services.db,
        services.redis,
        services.config,
        services.settings.aws_session,
        period,
        kind="test",
        now=now,
    )


def test_yesterday_report_has_the_numbers_a_reader_checks(
    services: Services, aws_endpoint: str
) -> None:
    """Totals, deltas, month to date, forecast, top services, movers and the anomaly."""
    queue_ce_results(aws_endpoint, *paged(history(AS_OF, HISTORY_DAYS), pages=2))

    first = report(services)

    # Friday: EC2 120 + 8 (staging), RDS 50, Lambda 250, S3 15, CloudWatch 5.
    assert first.total.amount == pytest.approx(448.00)
    # Thursday: EC2 105 + 8, RDS 50, Lambda 10, S3 20, CloudWatch 5 = 198.
    assert first.total.previous == pytest.approx(198.00)
    assert first.total.delta == pytest.approx(250.00)
    assert first.week_ago is not None and first.week_ago.previous == pytest.approx(198.00)
    # A usual day is 193 (EC2 100 + 8, RDS 50, Lambda 10, S3 20, CloudWatch 5) plus the
    # swings. March 1-13: 13 x 193 + 5 = 2,514, plus Friday's 448.
    assert first.month_to_date.amount == pytest.approx(2962.00)
    # February 1-14: 14 x 193 + 1 = 2,703.
    assert first.month_to_date.previous == pytest.approx(2703.00)
    # Run rate: the last 7 days (448 + 188 + 189 + 197 + 188 + 199 + 187 = 1,606) / 7;
    # 17 days left in March.
    assert first.run_rate == pytest.approx(1606 / 7)
    assert first.forecast == pytest.approx(2962 + 1606 / 7 * 17)
    assert first.budget is not None and first.budget.state == BudgetState.AT_RISK

    assert [(s.service, round(s.change.amount, 2)) for s in first.top_services] == [
        (LAMBDA, 250.00),
        (EC2, 128.00),
        (RDS, 50.00),
        (S3, 15.00),
        ("AmazonCloudWatch", 5.00),
    ]
    assert [(m.service, round(m.change.delta or 0, 2)) for m in first.movers] == [
        (LAMBDA, 240.00),
        (EC2, 15.00),
        (S3, -5.00),
    ]
    # Only Lambda is anomalous: EC2's rise is within its swing, S3's drop is under $10.
    assert [(a.service, a.day, round(a.size, 2)) for a in first.anomalies] == [
        (LAMBDA, AS_OF, 240.00)
    ]
    assert dict(first.accounts)["prod"].amount == pytest.approx(440.00)
    assert dict(first.accounts)["staging"].amount == pytest.approx(8.00)
    assert first.provisional_days == [AS_OF]
    assert first.metric == "UnblendedCost"
    assert first.record_types == "credits and refunds excluded"
    # One range, answered in two pages: two billed requests.
    assert first.ce_calls == 2
    # The chart: 30 days, stacked by what cost most over those days.
    assert len(first.chart.days) == 30 and first.chart.days[-1] == AS_OF
    assert list(first.chart.series) == [EC2, RDS, S3, LAMBDA, "AmazonCloudWatch"]
    assert first.chart.series[LAMBDA][-1] == 250.00
    assert first.chart.provisional == [AS_OF]

    text = render_text(first)
    assert "Yesterday (2025-03-14): $448.00, +$250.00 (+126.3%) vs the day before" in text
    assert "Forecast for the month: $6,862.29" in text
    assert "AWS Lambda: $250.00, +$240.00 vs a usual $10.00" in text
    assert "Provisional (Cost Explorer: Estimated): 2025-03-14" in text
    assert "UnblendedCost · credits and refunds excluded" in text


def test_a_second_report_the_same_day_makes_no_cost_explorer_call(
    services: Services, aws_endpoint: str
) -> None:
    """Complete days are never fetched again; a provisional day only once it is stale."""
    final_friday = daily_costs(AS_OF, AS_OF) | {(LAMBDA, PROD_ID): 260.0}
    queue_ce_results(
        aws_endpoint,
        {"ResultsByTime": history(AS_OF, HISTORY_DAYS)},
        # The answer to the later request for Friday alone, no longer estimated.
        {"ResultsByTime": [result_by_time(AS_OF, final_friday, estimated=False)]},
    )
    assert report(services).ce_calls == 1

    again = report(services, now=NOW + timedelta(hours=1))
    week = report(services, "week", now=NOW + timedelta(hours=2))
    assert again.ce_calls == 0
    assert week.ce_calls == 0
    assert again.total.amount == pytest.approx(448.00)

    # Nine hours on, the estimated Friday is stale: it alone is fetched again.
    later = report(services, now=NOW + timedelta(hours=9))
    assert later.ce_calls == 1
    assert later.total.amount == pytest.approx(458.00)
    assert later.provisional_days == []

    with services.db.session() as session:
        calls = session.execute(select(CostReportRun.ce_calls).order_by(CostReportRun.id)).all()
    assert [row[0] for row in calls] == [1, 0, 0, 1]
    assert int(services.redis.get(CE_CALLS_KEY) or 0) == 2
    assert b"agentbot_cost_explorer_calls_total 2.0" in metrics.render(services)


def test_credits_and_refunds_filter_and_metric_are_named(
    services: Services, aws_endpoint: str
) -> None:
    """The metric and whether credits are included are on the report, and kept apart."""
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(AS_OF, HISTORY_DAYS)})
    excluded = report(services)
    reconfigure(services, include_credits_refunds=True, metric="AmortizedCost")
    # A different metric and filter is a different history: it is fetched, not mixed in.
    queue_ce_results(aws_endpoint, {"ResultsByTime": []})
    included = report(services)

    assert excluded.record_types == "credits and refunds excluded"
    assert included.record_types == "credits and refunds included"
    assert included.metric == "AmortizedCost"
    assert included.ce_calls == 1
    assert included.total.amount == 0


@pytest.mark.parametrize(
    ("cost", "metric", "record_filter"),
    [
        (
            {},
            "UnblendedCost",
            {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}},
        ),
        (
            {"metric": "NetAmortizedCost"},
            "NetAmortizedCost",
            {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}},
        ),
        ({"include_credits_refunds": True, "metric": "AmortizedCost"}, "AmortizedCost", None),
    ],
)
def test_cost_explorer_is_asked_for_the_configured_metric_and_record_types(
    services: Services,
    aws_endpoint: str,
    cost: dict[str, Any],
    metric: str,
    record_filter: dict[str, Any] | None,
) -> None:
    """What reaches Cost Explorer: the configured metric, and credits and refunds filtered
    out unless configured in (moto ignores both, so the request itself is checked)."""
    reconfigure(services, **cost)
    session = boto3.Session()
    requests: list[dict[str, Any]] = []
    session.events.register(
        "before-parameter-build.ce.GetCostAndUsage",
        lambda params, **_: requests.append(copy.deepcopy(params)),
    )
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(AS_OF, HISTORY_DAYS)})
    make_report(
        services.db,
        services.redis,
        services.config,
        lambda: session,
        "yesterday",
        kind="test",
        now=NOW,
    )

    [request] = requests
    assert request["Metrics"] == [metric]
    assert request.get("Filter") == record_filter
    assert request["Granularity"] == "DAILY"
    assert request["GroupBy"] == [
        {"Type": "DIMENSION", "Key": "SERVICE"},
        {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
    ]
    assert request["TimePeriod"] == {"Start": "2025-02-01", "End": "2025-03-15"}


def test_cost_explorer_failure_falls_back_to_stored_days(
    services: Services, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Cost Explorer refusing, the report says so and uses what is stored."""
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(AS_OF, HISTORY_DAYS)})
    report(services)
    # Credentials Cost Explorer refuses: the estimated Friday cannot be refreshed.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "")
    stale = report(services, now=NOW + timedelta(hours=9))

    assert stale.total.amount == pytest.approx(448.00)
    assert stale.provisional_days == [AS_OF]
    assert any("Cost Explorer could not be read" in note for note in stale.notes)


def test_an_answer_longer_than_max_pages_is_not_stored_as_complete(
    services: Services, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut off after MAX_PAGES, the answer is refused whole: the calls are counted, the
    report says why, and no day is stored as known (so none passes for a zero day)."""
    monkeypatch.setattr("agents.aws.cost.MAX_PAGES", 2)
    queue_ce_results(aws_endpoint, *paged(history(AS_OF, HISTORY_DAYS), pages=3))

    cut = report(services)

    assert cut.ce_calls == 2
    assert any("still unfinished after 2 pages; none of it was stored" in n for n in cut.notes)
    assert cut.total.amount == 0 and len(cut.missing_days) == HISTORY_DAYS
    with services.db.session() as session:
        assert session.execute(select(func.count()).select_from(CostDay)).scalar_one() == 0
        [run] = session.execute(select(CostReportRun)).scalars()
    assert run.ce_calls == 2 and "unfinished" in (run.error or "")


def test_days_an_answer_did_not_cover_are_not_stored_as_zero(
    services: Services, aws_endpoint: str
) -> None:
    """An answer without the days asked for (an estate not set up yet) stores none of
    them: the next report asks again and shows the real cost, not $0.00."""
    next_day = AS_OF + timedelta(days=1)
    # moto answers a request it has seen as before, so the next report is a day on.
    queue_ce_results(
        aws_endpoint,
        {"ResultsByTime": []},
        {"ResultsByTime": history(next_day, HISTORY_DAYS + 1)},
    )

    empty = report(services)
    with services.db.session() as session:
        stored = session.execute(select(func.count()).select_from(CostDay)).scalar_one()
    later = report(services, now=NOW + timedelta(days=1))

    assert empty.total.amount == 0 and len(empty.missing_days) == HISTORY_DAYS
    assert stored == 0
    assert later.ce_calls == 1
    assert later.total.amount == pytest.approx(448.00)
    assert later.missing_days == []


def test_cli_twin_prints_the_report_and_its_calls(
    services: Services,
    settings: Settings,
    aws_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`agentbot aws cost` prints the same report, and the Cost Explorer calls it made."""
    today = datetime.now(UTC).date()
    as_of = today - timedelta(days=1)
    queue_ce_results(aws_endpoint, {"ResultsByTime": history(as_of, 70)})
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.delenv("AGENTBOT_CONFIG", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["aws", "cost"]) == 0
        first = capsys.readouterr().out
        assert main(["aws", "cost", "--period", "yesterday"]) == 0
        second = capsys.readouterr().out
    finally:
        get_settings.cache_clear()

    assert f"Yesterday ({as_of.isoformat()}): $448.00, +$250.00" in first
    assert "AWS Lambda: $250.00, +$240.00 vs a usual $10.00" in first
    assert "Cost Explorer calls made for this report: 1" in first
    assert "Cost Explorer calls made for this report: 0" in second


def test_cli_twin_without_redis_is_one_line(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`agentbot aws cost` with Redis unreachable says so in one line, exit status 2."""
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("AGENTBOT_CONFIG", raising=False)
    get_settings.cache_clear()
    try:
        status = main(["aws", "cost", "week"])
    finally:
        get_settings.cache_clear()

    said = capsys.readouterr()
    assert status == 2 and said.out == ""
    assert said.err.startswith("agentbot: cannot reach Redis (REDIS_URL): ")
    assert len(said.err.splitlines()) == 1
