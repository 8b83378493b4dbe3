"""Pure presentation of scan results: terminal rendering and change since last scan.

Nothing here calls AWS or prints: functions take reports or records and return
renderables, strings or values, so the CLI, Slack formatting and tests share them.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from agents.aws.collectors import Health, ResourceRecord
from agents.aws.config import ResourceType
from agents.aws.scanner import ALL_REGIONS, ScanError, ScanReport

# rich is imported where a terminal view is drawn: the diffs below serve Slack, from
# processes (`agentbot serve`, the workers) that never draw one.
if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.table import Table
    from rich.text import Text

# Below this width the "Needs attention" table puts type, place and steward under the name.
WIDE_TABLE = 120
PROBLEMS_TITLE = "Needs attention (worst first)"

_HEALTH_STYLE = {
    Health.UNHEALTHY: "bold red",
    Health.DEGRADED: "yellow",
    Health.UNKNOWN: "magenta",
    Health.HEALTHY: "green",
}

RecordKey = tuple[str, str, ResourceType, str]


def _health_text(health: Health) -> Text:
    from rich.text import Text

    return Text(health.value, style=_HEALTH_STYLE[health])


def _seconds(report: ScanReport) -> str:
    return f"{report.duration.total_seconds():.1f} s"


def render_summary_line(report: ScanReport) -> str:
    """One line summarising a report, e.g. for a status message or log.

    Args:
        report: The scan report.

    Returns:
        Resources, accounts and regions covered, problem counts, duration and
        whether the scan was partial.
    """
    counts = report.by_health
    problems = ", ".join(
        f"{counts[h]} {h.value}" for h in (Health.UNHEALTHY, Health.DEGRADED, Health.UNKNOWN)
    )
    partial = (
        f"; PARTIAL: {_count(len(report.errors), 'scan unit')} failed" if report.errors else ""
    )
    return (
        f"{_count(len(report.records), 'resource')} in {_count(len(report.accounts), 'account')}"
        f" x {_count(len(report.regions), 'region')}: {problems}{partial} "
        f"(scanned in {_seconds(report)})"
    )


def _count(count: int, noun: str) -> str:
    """`1 account`, `2 accounts`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render_report(report: ScanReport, *, max_problems: int = 50) -> RenderableType:
    """Build the terminal view of a scan.

    Sections, in order: totals by health, totals by steward, resources that
    are not healthy (worst first, with reasons), and partial failures.

    Args:
        report: The scan report.
        max_problems: Most problem rows to show; the rest are counted.

    Returns:
        A rich renderable (print it with a `rich.console.Console`).
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = [
        Text(f"AWS status: {render_summary_line(report)}", style="bold"),
        Text(f"started {report.started_at:%Y-%m-%d %H:%M:%S} UTC", style="dim"),
    ]

    totals = Table(title="Totals by health", title_justify="left")
    totals.add_column("Health")
    totals.add_column("Resources", justify="right")
    for health, count in report.by_health.items():
        totals.add_row(_health_text(health), str(count))
    totals.add_row(Text("total", style="bold"), str(len(report.records)))
    parts.append(totals)

    stewards = Table(title="By steward", title_justify="left")
    stewards.add_column("Steward")
    stewards.add_column("Resources", justify="right")
    for health in (Health.UNHEALTHY, Health.DEGRADED, Health.UNKNOWN):
        stewards.add_column(health.value.capitalize(), justify="right")
    for steward, counts in report.by_steward.items():
        stewards.add_row(
            steward,
            str(sum(counts.values())),
            str(counts[Health.UNHEALTHY]),
            str(counts[Health.DEGRADED]),
            str(counts[Health.UNKNOWN]),
        )
    parts.append(stewards)
    parts.append(_places_table(report))

    problems = report.problems()
    if problems:
        parts.append(_Problems(problems[:max_problems]))
        if len(problems) > max_problems:
            parts.append(Text(f"... and {len(problems) - max_problems} more not shown"))
    else:
        parts.append(Text("All scanned resources are healthy.", style="green"))

    if report.errors:
        failures = Table(
            title="Partial failures (these were not scanned)",
            title_justify="left",
            title_style="bold red",
        )
        for column in ("Account", "Region", "Service", "Kind"):
            failures.add_column(column, no_wrap=True)
        failures.add_column("Error")
        for error in report.errors:
            failures.add_row(
                error.account,
                "all" if error.region == ALL_REGIONS else error.region,
                error.service,
                error.kind.value,
                error.message,
            )
        parts.append(failures)
    return Group(*parts)


class _Problems:
    """The "Needs attention" table, laid out for the terminal's width.

    Seven columns need about 120 characters; in a narrower terminal they would squeeze
    the reason (what a reader came for) down to "R…". There, each resource's type,
    place and steward go on a line under its name instead, beside a wide reason.
    """

    def __init__(self, records: Sequence[ResourceRecord]) -> None:
        self.records = records

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._wide() if options.max_width >= WIDE_TABLE else self._narrow()

    def _wide(self) -> Table:
        from rich.table import Table

        table = Table(title=PROBLEMS_TITLE, title_justify="left")
        for column in ("Health", "Type", "Resource", "Account", "Region", "Steward"):
            table.add_column(column, no_wrap=column != "Resource")
        table.add_column("Reason")
        for record in self.records:
            table.add_row(
                _health_text(record.health),
                record.type.value,
                record.label,
                record.account,
                record.region,
                f"{record.steward} ({record.autonomy})",
                record.reason or record.state,
            )
        return table

    def _narrow(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=PROBLEMS_TITLE, title_justify="left", show_lines=True)
        table.add_column("Health", no_wrap=True)
        table.add_column("Resource", ratio=1, overflow="fold")
        table.add_column("Reason", ratio=1)
        for record in self.records:
            where = Text(
                f"\n{record.type.value} · {record.account}/{record.region}\n"
                f"{record.steward} ({record.autonomy})",
                style="dim",
            )
            table.add_row(
                _health_text(record.health),
                Text.assemble(record.label, where),
                record.reason or record.state,
            )
        return table


def _places_table(report: ScanReport) -> Table:
    """Resources and problems per account, and per region within it (as the Slack card)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="By account and region", title_justify="left")
    table.add_column("Account")
    table.add_column("Region")
    table.add_column("Resources", justify="right")
    for health in (Health.UNHEALTHY, Health.DEGRADED, Health.UNKNOWN):
        table.add_column(health.value.capitalize(), justify="right")
    counts = report.by_account_region
    accounts = list(report.accounts) + sorted({a for a, _ in counts} - set(report.accounts))
    for account in accounts:
        places = [(region, found) for (a, region), found in counts.items() if a == account]
        failed = [e for e in report.errors if e.account == account and e.region == ALL_REGIONS]
        if failed and not places:
            table.add_row(account, "all", Text("not scanned", style="red"), "", "", "")
            continue
        total: Counter[Health] = Counter()
        for _region, found in places:
            total.update(found)
        table.add_row(*_count_cells(Text(account, style="bold"), Text("all", style="bold"), total))
        if len(places) > 1:
            for region, found in sorted(places):
                table.add_row(*_count_cells("", region, found))
    return table


def _count_cells(
    account: str | Text, region: str | Text, counts: Mapping[Health, int]
) -> tuple[str | Text, ...]:
    return (
        account,
        region,
        str(sum(counts.values())),
        *(str(counts.get(h, 0)) for h in (Health.UNHEALTHY, Health.DEGRADED, Health.UNKNOWN)),
    )


def render_text(report: ScanReport, *, width: int = 120, max_problems: int = 50) -> str:
    """Render the terminal view to plain text (no colour codes).

    Args:
        report: The scan report.
        width: Terminal width in characters.
        max_problems: As for `render_report`.

    Returns:
        The text a terminal would show.
    """
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(render_report(report, max_problems=max_problems))
    return buffer.getvalue()


class HealthChange(BaseModel):
    """A resource whose health changed between two scans."""

    model_config = ConfigDict(frozen=True)

    record: ResourceRecord
    previous: Health | None


class ScanDiff(BaseModel):
    """What changed between two scans, keyed by (account, region, type, id)."""

    model_config = ConfigDict(frozen=True)

    newly_unhealthy: tuple[HealthChange, ...] = ()
    recovered: tuple[HealthChange, ...] = ()
    added: tuple[ResourceRecord, ...] = ()
    removed: tuple[ResourceRecord, ...] = ()
    # Missing now, but their unit failed this time, so they may well still exist.
    unverified: tuple[ResourceRecord, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether nothing worth telling anyone changed."""
        return not (self.newly_unhealthy or self.recovered or self.added or self.removed)


def _problem(health: Health) -> bool:
    return health in (Health.UNHEALTHY, Health.DEGRADED)


def diff(
    previous_records: Iterable[ResourceRecord],
    current_records: Iterable[ResourceRecord],
    *,
    current_errors: Sequence[ScanError] = (),
) -> ScanDiff:
    """Compare two scans' records.

    A resource is *newly unhealthy* when it is now degraded or unhealthy and is
    worse than before (including new resources that arrive broken); it has
    *recovered* when it was degraded or unhealthy and is now healthy.

    Args:
        previous_records: Records of the earlier scan.
        current_records: Records of the later scan.
        current_errors: The later scan's errors; resources those failed units
            would have produced are reported as unverified, not removed.

    Returns:
        The differences, each list ordered worst first, then by key.
    """
    before: dict[RecordKey, ResourceRecord] = {r.key: r for r in previous_records}
    after: dict[RecordKey, ResourceRecord] = {r.key: r for r in current_records}

    newly_unhealthy: list[HealthChange] = []
    recovered: list[HealthChange] = []
    for key, record in after.items():
        old = before.get(key)
        old_health = old.health if old else None
        if _problem(record.health) and (
            old_health is None or record.health.severity > old_health.severity
        ):
            newly_unhealthy.append(HealthChange(record=record, previous=old_health))
        elif record.health is Health.HEALTHY and old_health is not None and _problem(old_health):
            recovered.append(HealthChange(record=record, previous=old_health))

    gone = [r for key, r in before.items() if key not in after]
    unverified = [r for r in gone if any(e.covers(r) for e in current_errors)]
    removed = [r for r in gone if r not in unverified]

    def order(record: ResourceRecord) -> tuple[int, RecordKey]:
        return (-record.health.severity, record.key)

    return ScanDiff(
        newly_unhealthy=tuple(sorted(newly_unhealthy, key=lambda c: order(c.record))),
        recovered=tuple(sorted(recovered, key=lambda c: c.record.key)),
        added=tuple(sorted((r for k, r in after.items() if k not in before), key=order)),
        removed=tuple(sorted(removed, key=order)),
        unverified=tuple(sorted(unverified, key=order)),
    )


def _where(record: ResourceRecord) -> str:
    return f"{record.type.value} {record.label} ({record.account}/{record.region})"


def describe_diff(changes: ScanDiff) -> list[str]:
    """Say in plain lines what changed since the previous scan.

    Args:
        changes: Output of `diff`.

    Returns:
        One line per change, problems first; a single line when nothing changed.
    """
    lines = []
    for change in changes.newly_unhealthy:
        was = f"was {change.previous.value}" if change.previous else "new"
        lines.append(
            f"NEW {change.record.health.value.upper()}: {_where(change.record)}"
            f" - {change.record.reason or change.record.state} ({was})"
        )
    lines.extend(
        f"RECOVERED: {_where(c.record)} (was {c.previous.value if c.previous else 'unknown'})"
        for c in changes.recovered
    )
    lines.extend(f"ADDED: {_where(r)} [{r.health.value}]" for r in changes.added)
    lines.extend(f"REMOVED: {_where(r)}" for r in changes.removed)
    lines.extend(f"NOT CHECKED (scan failed): {_where(r)}" for r in changes.unverified)
    return lines or ["No changes since the previous scan."]
