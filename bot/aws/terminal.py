"""`agentbot aws status`: the Slack report's twin in the terminal.

It scans directly with the bot's AWS settings and configuration, showing a
progress bar on stderr while the scan runs, then prints the report's tables on
stdout. Like the Slack report, every scan is stored as a snapshot in the database
(DATABASE_URL), shared with the bot, and the report ends with what changed since
the scope's previous scan, whoever ran it. It always scans: a terminal user asks
for the estate as it is now, not for a recent answer.

It needs no Redis or Slack, and no database either: without one (or without its
schema) the report is printed all the same, with a note on how to keep history.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from agents.aws.config import AwsConfig
from agents.aws.report import describe_diff, render_report
from agents.aws.scanner import ScanReport, ScanScope, ScopeError, resolve_scope, scan
from bot.aws.status_blocks import scope_phrase
from bot.settings import Settings
from jobs.aws.snapshots import StoredScan, missing_schema, store_scan
from jobs.db import Database
from jobs.exceptions import first_line

MIGRATE = "Run `agentbot migrate` to keep scans and see what changed between them."


class _History:
    """The database scans are kept in, or why there is none this time."""

    def __init__(self, database_url: str) -> None:
        self.db: Database | None = None
        self.problem: str | None = None
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            path = Path(str(url.database))
            # Connecting would create an empty file; a report should not leave one behind.
            if not path.exists():
                self.problem = f"there is no database at {path} yet. {MIGRATE}"
                return
        db = Database(database_url)
        try:
            missing = missing_schema(db.engine)
        except SQLAlchemyError as error:
            db.dispose()
            self.problem = f"cannot reach the database (DATABASE_URL): {first_line(error)}"
            return
        if missing:
            db.dispose()
            self.problem = f"the database (DATABASE_URL) lacks {', '.join(missing)}. {MIGRATE}"
            return
        self.db = db

    def store(self, scope: ScanScope, report: ScanReport) -> StoredScan | None:
        """Store the scan; None (and `problem` set) when it could not be stored."""
        if self.db is None:
            return None
        try:
            with self.db.session() as session:
                return store_scan(session, scope, report)
        except SQLAlchemyError as error:
            self.problem = f"storing it failed (DATABASE_URL): {first_line(error)}"
            return None
        finally:
            self.db.dispose()


def _with_words(
    config: AwsConfig,
    words: Sequence[str],
    accounts: Sequence[str] | None,
    regions: Sequence[str] | None,
    services: Sequence[str] | None,
) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    """Add the positional words, sorted as Slack sorts them, to the options given.

    Raises:
        ScopeError: A word is not a configured account, a region or a service.
    """
    from bot.aws.status import parse_status_words

    request = parse_status_words(words, config)

    def both(given: Sequence[str] | None, typed: Sequence[str] | None) -> list[str] | None:
        merged = [*(given or ()), *(typed or ())]
        return merged or None

    return (
        both(accounts, request.accounts),
        both(regions, request.regions),
        both(services, request.services),
    )


def _changes(stored: StoredScan) -> Text:
    if stored.changes is None or stored.previous_at is None:
        return Text(
            "\nSince the previous scan: this is the first scan of this scope; "
            "the next one will say what changed."
        )
    lines = [f"  • {line}" for line in describe_diff(stored.changes)]
    heading = f"Since the previous scan (at {stored.previous_at:%Y-%m-%d %H:%M:%S} UTC):"
    return Text("\n".join(["", heading, *lines]))


def print_status(
    settings: Settings,
    *,
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    services: Sequence[str] | None = None,
    words: Sequence[str] = (),
    out: Console | None = None,
    err: Console | None = None,
) -> int:
    """Scan and print the AWS status report.

    Without an `[aws]` table in the configuration, the account of the default
    credentials is scanned in the configured region (AWS_REGION). The scan is
    stored in the database, as the Slack report's are, and the report ends with
    what changed since the scope's previous scan; without a usable database, a
    note on stderr says why nothing was stored.

    Args:
        settings: The process settings (AWS profile and region, the config file).
        accounts: Account names or ids; None means every configured account.
        regions: Regions; None means every configured region.
        services: Service names; None means every configured service.
        words: Accounts, regions and services in any order, as `/agent aws status`
            takes them; added to the three above.
        out: Where the report goes (stdout by default).
        err: Where progress and notes go (stderr by default).

    Returns:
        The exit status: 0 after a report (even a partial one), 2 for a bad scope.

    Raises:
        ConfigError: The configuration file or the AWS settings are broken.
    """
    out = out or Console()
    err = err or Console(stderr=True)
    config = settings.config.aws
    if config is None:
        config = AwsConfig()
        err.print(
            "No [aws] table in AGENTBOT_CONFIG: scanning the default credentials' account.",
            style="dim",
            markup=False,
        )
    session = settings.aws_session()
    try:
        if words:
            accounts, regions, services = _with_words(config, words, accounts, regions, services)
        scope = resolve_scope(
            config, session, accounts=accounts, regions=regions, services=services
        )
    except ScopeError as error:
        print(f"agentbot: {error}", file=sys.stderr)
        return 2
    # Before the scan, so an unreachable database costs its timeout up front, not after.
    history = _History(settings.database_url)

    columns = (
        SpinnerColumn(),
        TextColumn(f"Scanning {scope_phrase(len(scope.accounts), len(scope.regions))}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("checks"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        bar = progress.add_task("scan", total=None)
        report = scan(
            config,
            session,
            accounts=[a.name for a in scope.accounts],
            regions=list(scope.regions),
            services=list(scope.services),
            progress=lambda done, total: progress.update(bar, completed=done, total=total),
        )
    stored = history.store(scope, report)
    out.print(render_report(report))
    if stored is not None:
        out.print(_changes(stored))
    else:
        err.print(Text(f"Scan not stored: {history.problem}", style="yellow"), soft_wrap=True)
    return 0
