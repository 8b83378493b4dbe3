"""The cost report: totals, deltas, forecast, movers, anomalies and budget, from history.

Everything here is a pure function of stored daily costs, so a report needs no Cost
Explorer call beyond filling the history, and works where Cost Explorer's own forecast
and anomaly detection are not available.

Methods (also in the README):

* **Days** are UTC days, as Cost Explorer reports them. A report is "as of" the last
  complete UTC day: the one before today's UTC date. The daily digest is as of the
  last UTC day that had ended at its configured local posting time, so in zones ahead
  of UTC it can be two local days back (08:00 in Tokyo is 23:00 UTC the evening
  before, when that UTC day has not ended yet); its title names the day.
* **Forecast to month end** (run rate): month-to-date plus the average daily total of
  the last seven days times the days left in the month. The last seven days, rather
  than the month's average, follow a recent change within a week and cover every
  weekday once.
* **Anomalies** (robust z-score, per service): for each day tested, the service's
  daily costs over the `baseline_days` before it (a day with no cost counts as zero)
  give a median `m` and a median absolute deviation `MAD`; the modified z-score is
  `0.6745 * (x - m) / MAD` (Iglewicz and Hoaglin). When MAD is zero (a flat series),
  the mean absolute deviation times 1.2533 stands in for it; when that is zero too,
  any departure is infinitely unusual. A day is an anomaly when |z| reaches
  `z_threshold` (3.5) and it departs from the median by at least `min_dollars`, so
  pennies never page anyone. Its size is `x - m`, in dollars. With fewer than
  `min_baseline_days` known days before it, a day gets no verdict.
* **Budget**: over when month-to-date exceeds the monthly budget, at risk when the
  forecast does, on track otherwise.
"""

from __future__ import annotations

import calendar
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Literal, Protocol

from agents.aws.cost_config import CostConfig

Period = Literal["yesterday", "week", "month"]
PERIODS: tuple[Period, ...] = ("yesterday", "week", "month")
RUN_RATE_DAYS = 7
CHART_DAYS = 30
MOVERS = 5
# Consistency constant of the MAD for normally distributed data.
MAD_SCALE = 0.6745
# Mean absolute deviation to standard deviation, for the flat-series fallback.
MEAN_AD_SCALE = 1.253314
OTHER = "Other"


class DailyCost(Protocol):
    """A stored cost line: what the report reads."""

    @property
    def day(self) -> date: ...

    @property
    def account_id(self) -> str: ...

    @property
    def service(self) -> str: ...

    @property
    def amount(self) -> float: ...


class BudgetState(StrEnum):
    """Where the month stands against its budget."""

    ON_TRACK = "on track"
    AT_RISK = "at risk"
    OVER = "over"


@dataclass(frozen=True)
class Window:
    """An inclusive range of days."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        """Every day of the window, in order."""
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def label(self) -> str:
        """`2025-06-14` or `2025-06-08 to 2025-06-14`."""
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


@dataclass(frozen=True)
class Change:
    """A figure against the one it is compared with."""

    amount: float
    previous: float | None

    @property
    def delta(self) -> float | None:
        """`amount - previous`, or None with nothing to compare."""
        return None if self.previous is None else self.amount - self.previous

    @property
    def percent(self) -> float | None:
        """The relative change in percent, or None when the previous figure was zero."""
        if self.previous is None or abs(self.previous) < 0.005:
            return None
        return (self.amount - self.previous) / abs(self.previous) * 100


@dataclass(frozen=True)
class ServiceChange:
    """One service's cost in the report's window and the comparison window."""

    service: str
    change: Change


@dataclass(frozen=True)
class Anomaly:
    """A service-day that departs from its own recent history."""

    day: date
    service: str
    amount: float
    expected: float
    z_score: float

    @property
    def size(self) -> float:
        """How far from the expected (median) cost, in dollars; negative for a drop."""
        return self.amount - self.expected


@dataclass(frozen=True)
class Budget:
    """The month against its budget."""

    budget: float
    month_to_date: float
    forecast: float

    @property
    def state(self) -> BudgetState:
        """Over, at risk, or on track."""
        if self.month_to_date > self.budget:
            return BudgetState.OVER
        if self.forecast > self.budget:
            return BudgetState.AT_RISK
        return BudgetState.ON_TRACK


@dataclass(frozen=True)
class ChartSeries:
    """Daily costs of the top services (and the rest as "Other") for the chart."""

    days: list[date]
    series: dict[str, list[float]]
    provisional: list[date]


@dataclass
class CostReport:
    """Everything a cost report says."""

    period: Period
    metric: str
    record_types: str
    as_of: date
    window: Window
    comparison: Window
    total: Change
    week_ago: Change | None
    month_to_date: Change
    month_window: Window
    forecast: float
    run_rate: float
    days_left: int
    top_services: list[ServiceChange]
    movers: list[ServiceChange]
    anomalies: list[Anomaly]
    budget: Budget | None
    accounts: list[tuple[str, Change]]
    provisional_days: list[date]
    missing_days: list[date]
    chart: ChartSeries
    ce_calls: int = 0
    notes: list[str] = field(default_factory=list)
    # The `cost_reports` row this report was recorded as, once stored.
    report_id: int | None = None


def as_of_day(today: date) -> date:
    """The last complete UTC day: yesterday."""
    return today - timedelta(days=1)


def month_start(day: date) -> date:
    """The first day of the day's month."""
    return day.replace(day=1)


def same_point_last_month(day: date) -> Window:
    """From the 1st of the previous month to the same day-of-month (clipped to its length)."""
    previous_end = month_start(day) - timedelta(days=1)
    start = previous_end.replace(day=1)
    return Window(start, start.replace(day=min(day.day, previous_end.day)))


def windows(period: Period, as_of: date) -> tuple[Window, Window]:
    """The report's window and the window it is compared with."""
    if period == "yesterday":
        return Window(as_of, as_of), Window(as_of - timedelta(days=1), as_of - timedelta(days=1))
    if period == "week":
        return (
            Window(as_of - timedelta(days=6), as_of),
            Window(as_of - timedelta(days=13), as_of - timedelta(days=7)),
        )
    return Window(month_start(as_of), as_of), same_point_last_month(as_of)


def history_window(period: Period, as_of: date, config: CostConfig) -> Window:
    """Every day a report needs stored: comparisons, the chart and anomaly baselines."""
    window, comparison = windows(period, as_of)
    starts = [
        comparison.start,
        same_point_last_month(as_of).start,
        as_of - timedelta(days=7),
        as_of - timedelta(days=CHART_DAYS - 1),
        window.start - timedelta(days=config.anomaly.baseline_days),
    ]
    return Window(min(starts), as_of)


class _History:
    """Stored costs indexed for the report."""

    def __init__(self, lines: Iterable[DailyCost], known_days: Iterable[date]) -> None:
        self.known = set(known_days)
        self.by_day: dict[date, float] = defaultdict(float)
        self.by_service_day: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
        self.by_account_day: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
        for line in lines:
            self.known.add(line.day)
            self.by_day[line.day] += line.amount
            self.by_service_day[line.service][line.day] += line.amount
            self.by_account_day[line.account_id][line.day] += line.amount

    def total(self, window: Window) -> float:
        return sum(self.by_day.get(day, 0.0) for day in window.days)

    def covered(self, window: Window) -> bool:
        return any(day in self.known for day in window.days)

    def service_total(self, service: str, window: Window) -> float:
        days = self.by_service_day.get(service, {})
        return sum(days.get(day, 0.0) for day in window.days)

    def account_total(self, account: str, window: Window) -> float:
        days = self.by_account_day.get(account, {})
        return sum(days.get(day, 0.0) for day in window.days)


def robust_z(value: float, baseline: Sequence[float]) -> tuple[float, float]:
    """The modified z-score of `value` against `baseline`, and the baseline's median.

    Args:
        value: The figure tested.
        baseline: The figures it is judged against (at least one).

    Returns:
        (z, median); z is ±inf when the baseline is constant and `value` differs.
    """
    median = statistics.median(baseline)
    mad = statistics.median(abs(x - median) for x in baseline)
    if mad > 0:
        return MAD_SCALE * (value - median) / mad, median
    mean_ad = statistics.fmean(abs(x - median) for x in baseline)
    if mean_ad > 0:
        return (value - median) / (MEAN_AD_SCALE * mean_ad), median
    if value == median:
        return 0.0, median
    return math.copysign(math.inf, value - median), median


def find_anomalies(history: _History, days: Iterable[date], config: CostConfig) -> list[Anomaly]:
    """Service-days among `days` whose cost departs from the service's recent history."""
    settings = config.anomaly
    found: list[Anomaly] = []
    for day in days:
        if day not in history.known:
            continue
        baseline_days = [
            day - timedelta(days=n)
            for n in range(1, settings.baseline_days + 1)
            if day - timedelta(days=n) in history.known
        ]
        if len(baseline_days) < settings.min_baseline_days:
            continue
        for service, costs in history.by_service_day.items():
            value = costs.get(day, 0.0)
            baseline = [costs.get(d, 0.0) for d in baseline_days]
            z, median = robust_z(value, baseline)
            if abs(z) >= settings.z_threshold and abs(value - median) >= settings.min_dollars:
                found.append(
                    Anomaly(day=day, service=service, amount=value, expected=median, z_score=z)
                )
    found.sort(key=lambda a: (-abs(a.size), a.day, a.service))
    return found


def _chart(history: _History, as_of: date, count: int, estimated: set[date]) -> ChartSeries:
    window = Window(as_of - timedelta(days=CHART_DAYS - 1), as_of)
    days = window.days
    # The services that cost most over the chart's 30 days, not just the report's window.
    ranked = sorted(history.by_service_day, key=lambda s: (-history.service_total(s, window), s))
    top = [s for s in ranked[:count] if abs(history.service_total(s, window)) >= 0.005]
    series: dict[str, list[float]] = {}
    for service in top:
        costs = history.by_service_day.get(service, {})
        series[service] = [round(costs.get(day, 0.0), 2) for day in days]
    other = [
        round(history.by_day.get(day, 0.0) - sum(series[s][i] for s in top), 2)
        for i, day in enumerate(days)
    ]
    if any(abs(value) >= 0.01 for value in other):
        series[OTHER] = other
    return ChartSeries(days=days, series=series, provisional=sorted(estimated & set(days)))


def build_report(
    lines: Iterable[DailyCost],
    *,
    known_days: Iterable[date],
    estimated_days: Iterable[date],
    as_of: date,
    period: Period,
    config: CostConfig,
    account_names: Mapping[str, str] | None = None,
    ce_calls: int = 0,
) -> CostReport:
    """Compute a cost report from stored daily costs.

    Args:
        lines: Daily costs covering `history_window(period, as_of, config)`.
        known_days: Days whose costs are stored (a day with no cost is still known).
        estimated_days: Known days Cost Explorer still marked Estimated.
        as_of: The last day reported (normally yesterday, UTC).
        period: Which window the report is about.
        config: Metric, budget, anomaly settings and how many top services.
        account_names: Linked account id -> configured name, for display.
        ce_calls: Cost Explorer requests made for this report.

    Returns:
        The report.
    """
    history = _History(lines, known_days)
    estimated = set(estimated_days)
    names = dict(account_names or {})
    window, comparison = windows(period, as_of)
    month = Window(month_start(as_of), as_of)
    last_month = same_point_last_month(as_of)

    def change(current: Window, previous: Window) -> Change:
        before = history.total(previous) if history.covered(previous) else None
        return Change(history.total(current), before)

    run_days = [d for d in Window(as_of - timedelta(days=RUN_RATE_DAYS - 1), as_of).days]
    run_known = [d for d in run_days if d in history.known]
    run_rate = (
        sum(history.by_day.get(d, 0.0) for d in run_known) / len(run_known) if run_known else 0.0
    )
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    days_left = days_in_month - as_of.day
    month_to_date = change(month, last_month)
    forecast = month_to_date.amount + run_rate * days_left

    services = sorted(
        history.by_service_day,
        key=lambda s: (-history.service_total(s, window), s),
    )
    comparison_covered = history.covered(comparison)

    def service_change(service: str) -> ServiceChange:
        previous = history.service_total(service, comparison) if comparison_covered else None
        return ServiceChange(service, Change(history.service_total(service, window), previous))

    top = [
        service_change(s)
        for s in services[: config.top_services]
        if abs(history.service_total(s, window)) >= 0.005
    ]
    movers = sorted(
        (service_change(s) for s in services),
        key=lambda c: (-abs(c.change.delta or 0.0), c.service),
    )
    movers = [m for m in movers if abs(m.change.delta or 0.0) >= 0.01][:MOVERS]

    accounts = sorted(
        (
            (
                names.get(account, account),
                Change(
                    history.account_total(account, window),
                    history.account_total(account, comparison) if comparison_covered else None,
                ),
            )
            for account in history.by_account_day
        ),
        key=lambda pair: (-pair[1].amount, pair[0]),
    )
    accounts = [pair for pair in accounts if abs(pair[1].amount) >= 0.005 or pair[1].previous]

    budget = (
        Budget(config.monthly_budget_usd, month_to_date.amount, forecast)
        if config.monthly_budget_usd
        else None
    )
    shown = set(window.days) | set(comparison.days) | set(month.days)
    week_ago = None
    if period == "yesterday":
        week_ago = change(window, Window(as_of - timedelta(days=7), as_of - timedelta(days=7)))
        shown.add(as_of - timedelta(days=7))
    needed = history_window(period, as_of, config)
    report = CostReport(
        period=period,
        metric=config.metric,
        record_types=config.record_types_note,
        as_of=as_of,
        window=window,
        comparison=comparison,
        total=change(window, comparison),
        week_ago=week_ago,
        month_to_date=month_to_date,
        month_window=month,
        forecast=forecast,
        run_rate=run_rate,
        days_left=days_left,
        top_services=top,
        movers=movers,
        anomalies=find_anomalies(history, window.days, config),
        budget=budget,
        accounts=accounts,
        provisional_days=sorted(estimated & shown),
        missing_days=[d for d in needed.days if d not in history.known],
        chart=_chart(history, as_of, config.top_services, estimated),
        ce_calls=ce_calls,
    )
    return report


# -- text ------------------------------------------------------------------------------


def money(amount: float) -> str:
    """`$1,234.56` (negative: `-$1.00`)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def signed_money(amount: float) -> str:
    """`+$12.30` / `-$4.00` / `±$0.00`."""
    if abs(amount) < 0.005:
        return "±$0.00"
    return ("+" if amount > 0 else "-") + f"${abs(amount):,.2f}"


def describe_change(change: Change) -> str:
    """`+$12.30 (+4.1%)`, `no change`, or `no earlier data`."""
    if change.delta is None:
        return "no earlier data"
    if abs(change.delta) < 0.005:
        return "no change"
    percent = change.percent
    text = signed_money(change.delta)
    return text + (f" ({percent:+.1f}%)" if percent is not None else "")


PERIOD_TITLES: dict[Period, str] = {
    "yesterday": "Yesterday",
    "week": "Last 7 days",
    "month": "Month to date",
}
COMPARED_WITH: dict[Period, str] = {
    "yesterday": "the day before",
    "week": "the 7 days before",
    "month": "the same point last month",
}


def headline(report: CostReport) -> str:
    """One line: the window's total and its change."""
    return (
        f"{PERIOD_TITLES[report.period]} ({report.window.label}): {money(report.total.amount)}"
        f", {describe_change(report.total)} vs {COMPARED_WITH[report.period]}"
    )


def basis_line(report: CostReport) -> str:
    """Metric, record types, UTC days, and the Cost Explorer requests made."""
    calls = f"{report.ce_calls} Cost Explorer request{'s' if report.ce_calls != 1 else ''}"
    return f"{report.metric} · {report.record_types} · UTC days · {calls} for this report"


def render_text(report: CostReport) -> str:
    """The report for a terminal, in plain text."""
    lines = [f"AWS cost report — {headline(report)}", basis_line(report), ""]
    if report.week_ago is not None:
        lines.append(
            f"  vs same weekday last week: {describe_change(report.week_ago)}"
            f" (was {money(report.week_ago.previous or 0)})"
            if report.week_ago.previous is not None
            else "  vs same weekday last week: no earlier data"
        )
    lines.append(
        f"  Month to date ({report.month_window.label}): {money(report.month_to_date.amount)}, "
        f"{describe_change(report.month_to_date)} vs the same point last month"
    )
    lines.append(
        f"  Forecast for the month: {money(report.forecast)} (run rate "
        f"{money(report.run_rate)}/day over the last {RUN_RATE_DAYS} days, "
        f"{report.days_left} days left)"
    )
    if report.budget is not None:
        budget = report.budget
        lines.append(
            f"  Budget {money(budget.budget)}: {budget.state.value} "
            f"({budget.month_to_date / budget.budget:.0%} used, forecast "
            f"{budget.forecast / budget.budget:.0%})"
        )
    lines += ["", f"Top services ({PERIOD_TITLES[report.period].lower()}):"]
    width = max((len(s.service) for s in report.top_services), default=10)
    for item in report.top_services:
        lines.append(
            f"  {item.service:<{width}}  {money(item.change.amount):>12}  "
            f"{describe_change(item.change)}"
        )
    if not report.top_services:
        lines.append("  no costs recorded")
    if report.movers:
        lines += ["", f"Biggest movers vs {COMPARED_WITH[report.period]}:"]
        width = max(len(m.service) for m in report.movers)
        for item in report.movers:
            lines.append(f"  {item.service:<{width}}  {describe_change(item.change)}")
    lines += ["", "Anomalies:"]
    for anomaly in report.anomalies:
        lines.append(
            f"  {anomaly.day.isoformat()} {anomaly.service}: {money(anomaly.amount)}, "
            f"{signed_money(anomaly.size)} vs a usual {money(anomaly.expected)} "
            f"(z {_z(anomaly.z_score)})"
        )
    if not report.anomalies:
        lines.append("  none")
    if len(report.accounts) > 1:
        lines += ["", "By account:"]
        for name, change in report.accounts:
            lines.append(f"  {name}: {money(change.amount)} ({describe_change(change)})")
    if report.provisional_days:
        days = ", ".join(d.isoformat() for d in report.provisional_days)
        lines += ["", f"Provisional (Cost Explorer: Estimated): {days}"]
    if report.missing_days:
        lines += ["", f"No data for {len(report.missing_days)} day(s) of the history."]
    lines += [f"Note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _z(z: float) -> str:
    if math.isinf(z):
        return ("+" if z > 0 else "-") + "∞"
    return f"{z:+.1f}"
