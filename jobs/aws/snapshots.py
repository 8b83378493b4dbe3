"""Snapshots of AWS status scans: what each scan found, kept to say what changed.

Every scan that really ran (not one answered from a recent snapshot) is stored as
one `aws_scans` row and one `aws_scan_resources` row per resource. Scans are
grouped by scope (accounts x regions x services), because comparing a scan of one
account with a scan of the whole estate would report every other resource as gone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from agents.aws.collectors import Health, ResourceRecord
from agents.aws.config import ResourceType, Service
from agents.aws.report import ScanDiff, diff
from agents.aws.scanner import ScanError, ScanReport, ScanScope
from jobs.models import Base

SNAPSHOT_TABLES = ("aws_scans", "aws_scan_resources")
# Enough history to look back over a day of frequent asks, small enough to never matter.
KEEP_SCANS_PER_SCOPE = 20


class AwsScan(Base):
    """One completed scan of one scope."""

    __tablename__ = "aws_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope_key: Mapped[str] = mapped_column(String(64))
    scope: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    units_total: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict[str, Any]]
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (Index("ix_aws_scans_scope_key_finished_at", "scope_key", "finished_at"),)


class AwsScanResource(Base):
    """One resource as one scan saw it."""

    __tablename__ = "aws_scan_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("aws_scans.id", ondelete="CASCADE"), index=True)
    account: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(Text)
    arn: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    health: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    steward: Mapped[str] = mapped_column(Text)
    autonomy: Mapped[int] = mapped_column(Integer)


def scope_key(scope: ScanScope) -> str:
    """A fixed-length key naming a scope (its accounts, regions and services, in order).

    Args:
        scope: The scope.

    Returns:
        A hex digest; the same scope always gives the same key.
    """
    return hashlib.sha256(json.dumps(scope.key).encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC); PostgreSQL hands back the
    # session's time zone, which need not be UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def save_scan(session: Session, scope: ScanScope, report: ScanReport) -> int:
    """Store a scan and its resources.

    Args:
        session: An open session (the caller's transaction).
        scope: The scope the report covers.
        report: What the scan found.

    Returns:
        The new scan's id.
    """
    scan = AwsScan(
        scope_key=scope_key(scope),
        scope={
            "accounts": list(report.accounts),
            "regions": list(report.regions),
            "services": [s.value for s in report.services],
        },
        started_at=report.started_at,
        finished_at=report.finished_at,
        units_total=report.units_total,
        counts={health.value: count for health, count in report.by_health.items()},
        errors=[error.model_dump(mode="json") for error in report.errors],
    )
    session.add(scan)
    session.flush()
    if report.records:
        session.execute(
            insert(AwsScanResource),
            [
                {
                    "scan_id": scan.id,
                    "account": r.account,
                    "region": r.region,
                    "type": r.type.value,
                    "resource_id": r.id,
                    "arn": r.arn,
                    "name": r.name,
                    "health": r.health.value,
                    "state": r.state,
                    "reason": r.reason,
                    "steward": r.steward,
                    "autonomy": r.autonomy,
                }
                for r in report.records
            ],
        )
    return scan.id


def recent_scans(session: Session, scope: ScanScope, limit: int = 2) -> list[AwsScan]:
    """The latest scans of a scope, newest first.

    Args:
        session: An open session.
        scope: The scope.
        limit: How many to return at most.

    Returns:
        Up to `limit` scans.
    """
    query = (
        select(AwsScan)
        .where(AwsScan.scope_key == scope_key(scope))
        .order_by(AwsScan.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def scan_before(session: Session, scan: AwsScan) -> AwsScan | None:
    """The scan of the same scope that came just before `scan`, if any."""
    query = (
        select(AwsScan)
        .where(AwsScan.scope_key == scan.scope_key, AwsScan.id < scan.id)
        .order_by(AwsScan.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def finished_at(scan: AwsScan) -> datetime:
    """When the scan finished, timezone-aware."""
    return _utc(scan.finished_at)


def load_records(session: Session, scan: AwsScan) -> list[ResourceRecord]:
    """The resources a stored scan found, in the order the scan reported them."""
    rows = session.scalars(
        select(AwsScanResource)
        .where(AwsScanResource.scan_id == scan.id)
        .order_by(AwsScanResource.id)
    )
    return [
        ResourceRecord(
            id=row.resource_id,
            arn=row.arn,
            type=ResourceType(row.type),
            account=row.account,
            region=row.region,
            state=row.state,
            health=Health(row.health),
            reason=row.reason,
            steward=row.steward,
            autonomy=row.autonomy,
            name=row.name,
        )
        for row in rows
    ]


def load_report(session: Session, scan: AwsScan) -> ScanReport:
    """Rebuild the report of a stored scan, as the scan returned it.

    Args:
        session: An open session.
        scan: A stored scan.

    Returns:
        The report, records and errors included.
    """
    return ScanReport(
        records=tuple(load_records(session, scan)),
        errors=tuple(ScanError.model_validate(error) for error in scan.errors),
        accounts=tuple(scan.scope["accounts"]),
        regions=tuple(scan.scope["regions"]),
        services=tuple(Service(s) for s in scan.scope["services"]),
        started_at=_utc(scan.started_at),
        finished_at=_utc(scan.finished_at),
        units_total=scan.units_total,
    )


def prune_scans(session: Session, scope: ScanScope, keep: int = KEEP_SCANS_PER_SCOPE) -> int:
    """Delete all but the newest `keep` scans of a scope.

    Args:
        session: An open session.
        scope: The scope.
        keep: How many scans to keep.

    Returns:
        How many scans were deleted.
    """
    kept = (
        select(AwsScan.id)
        .where(AwsScan.scope_key == scope_key(scope))
        .order_by(AwsScan.id.desc())
        .limit(keep)
    )
    old = list(
        session.scalars(
            select(AwsScan.id).where(
                AwsScan.scope_key == scope_key(scope), AwsScan.id.not_in(kept.scalar_subquery())
            )
        )
    )
    if old:
        # Resources first: SQLite enforces the cascade only when foreign keys are on.
        session.execute(delete(AwsScanResource).where(AwsScanResource.scan_id.in_(old)))
        session.execute(delete(AwsScan).where(AwsScan.id.in_(old)))
    return len(old)


@dataclass(frozen=True)
class StoredScan:
    """A scan just stored, and how it compares with the scope's previous one."""

    scan_id: int
    # When the scope's previous scan finished; None for the scope's first scan.
    previous_at: datetime | None
    changes: ScanDiff | None


def store_scan(session: Session, scope: ScanScope, report: ScanReport) -> StoredScan:
    """Store a scan, compare it with the scope's previous one, and prune old scans.

    Args:
        session: An open session (the caller's transaction).
        scope: The scope the report covers.
        report: What the scan found.

    Returns:
        The new scan's id and what changed since the previous scan of the scope.
    """
    latest = recent_scans(session, scope, limit=1)
    previous = latest[0] if latest else None
    before = load_records(session, previous) if previous is not None else None
    scan_id = save_scan(session, scope, report)
    prune_scans(session, scope)
    return StoredScan(
        scan_id=scan_id,
        previous_at=finished_at(previous) if previous is not None else None,
        changes=None
        if before is None
        else diff(before, report.records, current_errors=report.errors),
    )


def missing_schema(engine: Engine) -> list[str]:
    """What the snapshot tables lack in a database, so a caller can ask for a migration.

    Args:
        engine: The database's engine (connects once).

    Returns:
        The missing tables and columns, as `table` or `table.column`; empty when
        snapshots can be stored.
    """
    inspector = inspect(engine)
    missing: list[str] = []
    for table in (Base.metadata.tables[name] for name in SNAPSHOT_TABLES):
        if not inspector.has_table(table.name):
            missing.append(table.name)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
    return missing
