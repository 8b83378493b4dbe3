"""`agentbot aws status`: the Slack report's twin in the terminal.

It scans directly with the bot's AWS settings and configuration, showing a
progress bar on stderr while the scan runs, then prints the report's tables on
stdout. It needs no database, Redis or Slack, so it works from a laptop with
nothing but AWS credentials.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from agents.aws.config import AwsConfig
from agents.aws.report import render_report
from agents.aws.scanner import ScopeError, resolve_scope, scan
from bot.blocks_aws import scope_phrase
from bot.settings import Settings


def print_status(
    settings: Settings,
    *,
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    services: Sequence[str] | None = None,
    out: Console | None = None,
    err: Console | None = None,
) -> int:
    """Scan and print the AWS status report.

    Without an `[aws]` table in the configuration, the account of the default
    credentials is scanned in the configured region (AWS_REGION).

    Args:
        settings: The process settings (AWS profile and region, the config file).
        accounts: Account names or ids; None means every configured account.
        regions: Regions; None means every configured region.
        services: Service names; None means every configured service.
        out: Where the report goes (stdout by default).
        err: Where progress and notes go (stderr by default).

    Returns:
        The exit status: 0 after a report (even a partial one), 2 for a bad scope.

    Raises:
        ConfigError: The configuration file or the AWS settings are broken.
    """
    out = out or Console()
    err = err or Console(stderr=True)
    config = settings.load_config().aws
    if config is None:
        config = AwsConfig()
        err.print(
            "No [aws] table in AGENTBOT_CONFIG: scanning the default credentials' account.",
            style="dim",
            markup=False,
        )
    session = settings.aws_session()
    try:
        scope = resolve_scope(
            config, session, accounts=accounts, regions=regions, services=services
        )
    except ScopeError as error:
        print(f"agentbot: {error}", file=sys.stderr)
        return 2

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
    out.print(render_report(report))
    return 0
