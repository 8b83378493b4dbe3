"""Block Kit for `/agent aws status`, built by pure functions from an `AwsStatus`.

The card leads with totals, then what needs attention (worst first, each with its
reason), then what could not be scanned, then the breakdowns by account and region
and by steward, then what changed since the previous scan. Every list is capped so
that the card fits Slack's limits whatever the size of the estate; when anything is
left out, the card says so and the full list travels as a CSV file beside it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock

from agents.aws.collectors import GLOBAL_REGION, Health, ResourceRecord
from agents.aws.config import ResourceType, Service
from agents.aws.report import describe_diff
from agents.aws.scanner import ALL_REGIONS, ErrorKind, ScanError, ScanReport, ScanScope
from bot.blocks import (
    SECTION_LIMIT,
    clip,
    context,
    escape,
    fields_section,
    finish,
    header,
    mention,
    section,
)
from jobs.notify import AwsStatus

# Caps per list; together they keep a card far below 50 blocks.
MAX_PROBLEMS = 20
MAX_PLACES = 20
MAX_STEWARDS = 10
MAX_FAILURES = 10
MAX_CHANGES = 10
# One line never takes more than this much of a section.
LINE_LIMIT = 600
REASON_LIMIT = 300
USAGE = "`/agent aws status [account] [region] [service]`"
TIMES = "\N{MULTIPLICATION SIGN}"

HEALTH_ICON = {
    Health.UNHEALTHY: ":red_circle:",
    Health.DEGRADED: ":large_orange_circle:",
    Health.UNKNOWN: ":white_circle:",
    Health.HEALTHY: ":large_green_circle:",
}
TYPE_LABEL = {
    ResourceType.EC2_INSTANCE: "EC2 instance",
    ResourceType.LAMBDA_FUNCTION: "Lambda function",
    ResourceType.ECS_SERVICE: "ECS service",
    ResourceType.S3_BUCKET: "S3 bucket",
    ResourceType.CLOUDFRONT_DISTRIBUTION: "CloudFront distribution",
    ResourceType.AUTOSCALING_GROUP: "Auto Scaling group",
    ResourceType.LOAD_BALANCER: "load balancer",
    ResourceType.TARGET_GROUP: "target group",
    ResourceType.LAMBDA_EDGE_FUNCTION: "Lambda@Edge function",
    ResourceType.CLOUDWATCH_ALARM: "CloudWatch alarm",
    ResourceType.XRAY_GROUP: "X-Ray group",
    ResourceType.API_GATEWAY: "API Gateway",
    ResourceType.SNS_TOPIC: "SNS topic",
    ResourceType.RDS_INSTANCE: "RDS instance",
    ResourceType.DYNAMODB_TABLE: "DynamoDB table",
}
KIND_LABEL = {
    ErrorKind.ACCESS_DENIED: "access denied",
    ErrorKind.THROTTLED: "throttled",
    ErrorKind.TIMEOUT: "timed out",
    ErrorKind.ENDPOINT: "endpoint unreachable",
    ErrorKind.CREDENTIALS: "no credentials",
    ErrorKind.ERROR: "failed",
}
CSV_COLUMNS = (
    "health",
    "type",
    "account",
    "region",
    "id",
    "name",
    "state",
    "reason",
    "steward",
    "autonomy",
    "arn",
)


@dataclass(frozen=True)
class AwsCard:
    """A rendered status card."""

    blocks: list[dict[str, Any]]
    text: str
    # Something was left out of the card: attach the full list.
    needs_full_list: bool


def plural(count: int, noun: str) -> str:
    """`1 account`, `2 accounts`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def scope_phrase(accounts: int, regions: int) -> str:
    """`2 accounts by 3 regions`, with a real multiplication sign."""
    return f"{plural(accounts, 'account')} {TIMES} {plural(regions, 'region')}"


def _services_note(services: Sequence[Service]) -> str:
    if set(services) == set(Service):
        return ""
    return f" ({', '.join(s.value for s in services)})"


def age_text(age: timedelta) -> str:
    """How long ago, as `0m 12s`, `14m 03s` or `2h 05m`."""
    seconds = max(0, int(age.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s"


def render_scanning(scope: ScanScope, done: int | None = None, total: int | None = None) -> str:
    """The stand-in message while a scan runs.

    Args:
        scope: What is being scanned.
        done: Checks (account, region, service units) finished so far, if known.
        total: All checks of the scan, if known.

    Returns:
        One line of text: what is being scanned and, once known, how far it has got.
    """
    line = (
        f":hourglass_flowing_sand: Scanning "
        f"{scope_phrase(len(scope.accounts), len(scope.regions))}"
        f"{_services_note(scope.services)}…"
    )
    if done is not None and total:
        line += f" {done} of {total} checks done"
    return line


def render_failed(text: str) -> str:
    """The message that replaces the stand-in when no report is coming."""
    return f":x: {text}"


def _summary(counts: dict[Health, int]) -> str:
    parts = [
        f"{counts[h]} {h.value}"
        for h in (Health.UNHEALTHY, Health.DEGRADED, Health.UNKNOWN)
        if counts.get(h)
    ]
    return " · ".join(parts) if parts else "all healthy"


def _region_label(region: str) -> str:
    if region == ALL_REGIONS:
        return "all regions"
    if region == GLOBAL_REGION:
        return "account-wide"
    return region


def _line(text: str) -> str:
    return clip(text, LINE_LIMIT)


def _sections(title: str, lines: Sequence[str]) -> list[Block]:
    """A titled list as few sections as fit Slack's per-section limit."""
    blocks: list[Block] = []
    current = title
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_LIMIT:
            blocks.append(section(current))
            current = line
        else:
            current = candidate
    if current:
        blocks.append(section(current))
    return blocks


def _capped(lines: list[str], cap: int, what: str) -> tuple[list[str], bool]:
    if len(lines) <= cap:
        return lines, False
    left = len(lines) - cap
    return [*lines[:cap], f"_…and {left} more {what} in the attached file._"], True


def problem_line(record: ResourceRecord) -> str:
    """One resource that needs attention, with where it is, why, and its steward."""
    reason = clip(record.reason or record.state, REASON_LIMIT)
    return _line(
        f"{HEALTH_ICON[record.health]} *{escape(record.label)}* · "
        f"{TYPE_LABEL.get(record.type, record.type.value)} · "
        f"{escape(record.account)}/{escape(record.region)} — {escape(reason)} · "
        f"_{escape(record.steward)}_"
    )


def failure_lines(errors: Sequence[ScanError]) -> list[str]:
    """Failed checks, one line per account, region and cause (services grouped)."""
    grouped: dict[tuple[str, str, ErrorKind, str], list[str]] = defaultdict(list)
    for error in errors:
        grouped[(error.account, error.region, error.kind, error.message)].append(error.service)
    lines = []
    for (account, region, kind, message), services in grouped.items():
        what = "could not assume its role" if region == ALL_REGIONS else ", ".join(services)
        lines.append(
            _line(
                f":warning: *{escape(account)} / {_region_label(region)}* — {what}: "
                f"{KIND_LABEL[kind]} (`{escape(clip(message, REASON_LIMIT))}`)"
            )
        )
    return lines


def place_lines(report: ScanReport, limit: int | None = None) -> list[str]:
    """Per account and region: resources and problems, and what was not scanned there.

    Args:
        report: The scan report.
        limit: When there are more places than this, the ones with failed checks
            come first, then the ones with problems; otherwise configuration order.

    Returns:
        One line per (account, region).
    """
    counts = report.by_account_region
    places = [(a, r) for a in report.accounts for r in report.regions]
    places += [key for key in counts if key not in places]
    ranked: list[tuple[int, str]] = []
    for account, region in places:
        failed = [
            e for e in report.errors if e.account == account and e.region in (region, ALL_REGIONS)
        ]
        found = counts.get((account, region))
        total = sum(found.values()) if found else 0
        where = f"*{escape(account)} / {_region_label(region)}*"
        if any(e.region == ALL_REGIONS for e in failed):
            ranked.append((2, f":warning: {where} — not scanned (could not assume its role)"))
            continue
        found_text = plural(total, "resource") + (f": {_summary(found)}" if found else "")
        if failed:
            # Lead with the gap: whatever was found there is not the whole picture.
            ranked.append(
                (
                    2,
                    f":warning: {where} — {plural(len(failed), 'service')} not scanned; "
                    f"found {found_text}",
                )
            )
        else:
            troubled = found is not None and any(
                found[h] for h in (Health.UNHEALTHY, Health.DEGRADED, Health.UNKNOWN)
            )
            ranked.append((1 if troubled else 0, f"{where} — {found_text}"))
    if limit is not None and len(ranked) > limit:
        ranked.sort(key=lambda item: -item[0])
    return [line for _, line in ranked]


def steward_lines(report: ScanReport) -> list[str]:
    """Per steward: what kinds of resource they look after, and how those are doing."""
    kinds: dict[str, set[ResourceType]] = defaultdict(set)
    for record in report.records:
        kinds[record.steward].add(record.type)
    lines = []
    for steward, counts in report.by_steward.items():
        labels = ", ".join(sorted(TYPE_LABEL.get(t, t.value) for t in kinds[steward]))
        lines.append(
            _line(
                f"*{escape(steward)}* ({labels}) — "
                f"{plural(sum(counts.values()), 'resource')}: {_summary(counts)}"
            )
        )
    return lines


def render_status_card(status: AwsStatus) -> AwsCard:
    """The summary card of one `aws status` answer.

    Args:
        status: The report, its age, and what changed since the scope's previous scan.

    Returns:
        Blocks within Slack's limits, the notification text, and whether the card
        left anything out (then the full list should be attached).
    """
    report = status.report
    counts = report.by_health
    phrase = scope_phrase(len(report.accounts), len(report.regions))
    problems = report.problems()
    left_out = False

    about = [
        phrase + _services_note(report.services),
        plural(len(report.records), "resource"),
        f"data from {age_text(status.age)} ago" + (" (cached)" if status.cached else ""),
        f"scanned at {report.finished_at:%H:%M:%S} UTC in {report.duration.total_seconds():.1f} s",
    ]
    if status.requested_by:
        about.append(f"asked by {mention(status.requested_by)}")
    blocks: list[Block] = [
        header("AWS status"),
        context(" · ".join(about)),
        fields_section(
            [(h.value.capitalize(), f"{HEALTH_ICON[h]} {counts[h]}") for h in counts],
        ),
    ]
    if report.errors:
        blocks.append(
            context(
                f":warning: *Partial result:* {len(report.errors)} of "
                f"{report.units_total} checks failed. Resources they would have found are "
                "missing from the counts below; see *Not scanned*."
            )
        )

    blocks.append(DividerBlock())
    if problems:
        lines, cut = _capped([problem_line(r) for r in problems], MAX_PROBLEMS, "resources")
        left_out |= cut
        blocks += _sections(f"*Needs attention* ({len(problems)}, worst first)", lines)
    else:
        blocks += _sections(":white_check_mark: *Everything scanned is healthy.*", [])

    if report.errors:
        lines, cut = _capped(failure_lines(report.errors), MAX_FAILURES, "failures")
        left_out |= cut
        blocks += _sections("*Not scanned* (partial failure)", lines)

    lines, cut = _capped(place_lines(report, MAX_PLACES), MAX_PLACES, "accounts and regions")
    left_out |= cut
    blocks += _sections("*By account and region*", lines)

    lines, cut = _capped(steward_lines(report), MAX_STEWARDS, "stewards")
    left_out |= cut
    if lines:
        blocks += _sections("*By steward*", lines)

    if status.changes is None or status.previous_at is None:
        blocks += _sections(
            "*Since the previous scan*",
            ["_This is the first scan of this scope; the next one will say what changed._"],
        )
    else:
        changes = [f"• {escape(line)}" for line in describe_diff(status.changes)]
        lines, cut = _capped(changes, MAX_CHANGES, "changes")
        left_out |= cut
        blocks += _sections(
            f"*Since the previous scan* (at {status.previous_at:%H:%M:%S} UTC)", lines
        )

    footer = f"Read-only: nothing in AWS was changed. {USAGE}"
    if left_out:
        footer = (
            f":paperclip: Not everything fits here: the full list "
            f"({plural(len(report.records), 'resource')}"
            + (f", {plural(len(report.errors), 'failed check')}" if report.errors else "")
            + f") is attached in this message's thread. {footer}"
        )
    blocks.append(context(footer))

    text = (
        f"AWS status: {counts[Health.UNHEALTHY]} unhealthy, {counts[Health.DEGRADED]} degraded "
        f"of {plural(len(report.records), 'resource')} in {phrase}"
    )
    if report.errors:
        text += f" (partial: {plural(len(report.errors), 'check')} failed)"
    return AwsCard(blocks=finish(blocks), text=text, needs_full_list=left_out)


def _cell(value: object) -> str:
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def render_full_list(report: ScanReport) -> str:
    """Every resource of a report as CSV, worst first, then every failed check.

    Args:
        report: The scan report.

    Returns:
        CSV text with a header row; failed checks have health `not scanned`.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.unhealthy_first():
        writer.writerow(
            _cell(v)
            for v in (
                r.health.value,
                r.type.value,
                r.account,
                r.region,
                r.id,
                r.name,
                r.state,
                r.reason,
                r.steward,
                r.autonomy,
                r.arn,
            )
        )
    for e in report.errors:
        writer.writerow(
            _cell(v)
            for v in (
                "not scanned",
                e.service,
                e.account,
                _region_label(e.region),
                "",
                "",
                e.kind.value,
                e.message,
                "",
                "",
                "",
            )
        )
    return buffer.getvalue()


def full_list_filename(report: ScanReport) -> str:
    """`aws-status-20260101-143305.csv`, from when the scan finished."""
    return f"aws-status-{report.finished_at:%Y%m%d-%H%M%S}.csv"
