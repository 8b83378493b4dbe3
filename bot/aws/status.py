"""The Slack side of `/agent aws status`: read the words, queue the report, show it.

`request_status` runs in the web process within Slack's three seconds: it checks
the scope against the configuration and queues the job. `SlackAwsReporter` runs in
the worker: it posts the stand-in message, edits it as the scan progresses, and
edits it into the summary card (attaching the full list when the card is cut).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from agents.aws.config import AwsConfig, Service
from agents.aws.scanner import ScanScope, ScopeError, resolve_scope
from bot.aws import status_blocks
from bot.logging import Redactor
from bot.masked_client import MaskedClient
from bot.services import Services
from bot.settings import ConfigError
from jobs.aws.status_scan import enqueue_status
from jobs.exceptions import BadRequest, NotAllowed, Unavailable
from jobs.notify import AwsStatus, ChatMessage

log = logging.getLogger(__name__)

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
MAX_WORDS = 20


@dataclass(frozen=True)
class StatusRequest:
    """What `/agent aws status …` asked for; None means everything configured."""

    accounts: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    services: tuple[str, ...] | None = None


def parse_status_words(words: Sequence[str], config: AwsConfig) -> StatusRequest:
    """Sort the words after `aws status` into accounts, regions and services, in any order.

    A word is an account when it is a configured account's name or id, a service when
    it names one, and a region when it looks like one; anything else is refused.

    Args:
        words: The words, as typed.
        config: The AWS configuration.

    Returns:
        The request.

    Raises:
        ScopeError: A word is none of these, naming what would have been accepted.
    """
    if len(words) > MAX_WORDS:
        raise ScopeError(f"that is more than {MAX_WORDS} accounts, regions and services")
    known_accounts = {a.name for a in config.accounts} | {
        a.effective_account_id for a in config.accounts if a.effective_account_id
    }
    services = {s.value for s in Service}
    accounts: list[str] = []
    regions: list[str] = []
    chosen: list[str] = []
    for raw in words:
        word = raw.strip(",")
        if not word:
            continue
        if word in known_accounts:
            accounts.append(word)
        elif word.lower() in services:
            chosen.append(word.lower())
        elif REGION.match(word.lower()):
            regions.append(word.lower())
        else:
            names = ", ".join(a.name for a in config.accounts)
            raise ScopeError(
                f"`{word[:40]}` is not a configured account, a region or a service. "
                f"Accounts: {names}. Services: {', '.join(sorted(services))}"
            )
    return StatusRequest(
        accounts=tuple(accounts) or None,
        regions=tuple(regions) or None,
        services=tuple(chosen) or None,
    )


def request_status(services: Services, words: Sequence[str], *, user: str, channel: str) -> str:
    """Validate `/agent aws status …` and queue the report.

    Args:
        services: The process's services (its configuration must have `[aws]`).
        words: The words after `aws status`.
        user: Who asked.
        channel: Where they asked, and where the report goes.

    Returns:
        The ephemeral acknowledgement.

    Raises:
        NotAllowed: The user is not one of the configured requesters.
        BadRequest: The words name an account, region or service that is not configured.
        Unavailable: The bot's own AWS settings are broken (an operator must fix them).
    """
    config = services.config.aws
    assert config is not None, "only called when [aws] is configured"
    # As for `aws cost` and `aws optimize`: a scan costs AWS calls and shows the estate.
    if not services.access.may_request(user):
        raise NotAllowed("You are not on the list of people who can ask for AWS reports.")
    try:
        request = parse_status_words(words, config)
        scope = resolve_scope(
            config,
            services.settings.aws_session(),
            accounts=request.accounts,
            regions=request.regions,
            services=request.services,
        )
    except ScopeError as error:
        raise BadRequest(f"{error}.\nUsage: {status_blocks.USAGE}") from None
    except ConfigError as error:
        raise Unavailable(f"Agentbot's AWS settings need fixing: {error}") from None
    enqueue_status(
        services.queues,
        channel=channel,
        user=user,
        accounts=request.accounts,
        regions=request.regions,
        services=request.services,
    )
    phrase = status_blocks.scope_phrase(len(scope.accounts), len(scope.regions))
    return f":mag: Checking {phrase}; the report will appear in this channel."


class SlackAwsReporter:
    """The `jobs.notify.AwsStatusReporter` that speaks Slack's Web API, masked.

    Reports quote AWS's own words (a check's error, a failure's reason), so every text
    goes through the same redaction as the task notifier's.
    """

    def __init__(self, client: WebClient, *, redactor: Redactor | None = None) -> None:
        """Report through `client` (the bot's WebClient).

        Args:
            client: The Slack Web API client.
            redactor: What masks credentials; by default the logs' patterns plus the
                client's own token.
        """
        self.client = MaskedClient(client, redactor)

    def scanning(self, channel: str, thread_ts: str | None, scope: ScanScope) -> ChatMessage:
        """Post the "Scanning N accounts by M regions" stand-in message."""
        response = self.client.post(
            channel=channel, thread_ts=thread_ts, text=status_blocks.render_scanning(scope)
        )
        # Posting to a user id lands in a DM whose id Slack returns; edits need that id.
        return ChatMessage(channel=str(response.get("channel") or channel), ts=str(response["ts"]))

    def progress(self, message: ChatMessage, scope: ScanScope, done: int, total: int) -> None:
        """Edit the stand-in message to show checks done so far."""
        self.client.update(
            channel=message.channel,
            ts=message.ts,
            text=status_blocks.render_scanning(scope, done, total),
        )

    def report(
        self,
        channel: str,
        thread_ts: str | None,
        status: AwsStatus,
        replace: ChatMessage | None = None,
    ) -> ChatMessage:
        """Show the summary card, and attach the full list in its thread if the card is cut."""
        card = status_blocks.render_status_card(status)
        if replace is None:
            response = self.client.post(
                channel=channel, thread_ts=thread_ts, blocks=card.blocks, text=card.text
            )
            message = ChatMessage(
                channel=str(response.get("channel") or channel), ts=str(response["ts"])
            )
        else:
            self.client.update(
                channel=replace.channel, ts=replace.ts, blocks=card.blocks, text=card.text
            )
            message = replace
        if card.needs_full_list:
            self._attach_full_list(message, thread_ts, status)
        return message

    def _attach_full_list(
        self, message: ChatMessage, thread_ts: str | None, status: AwsStatus
    ) -> None:
        report = status.report
        try:
            self.client.upload(
                channel=message.channel,
                thread_ts=thread_ts or message.ts,
                filename=status_blocks.full_list_filename(report),
                title=f"AWS status: all {status_blocks.plural(len(report.records), 'resource')}",
                content=status_blocks.render_full_list(report),
                initial_comment=(
                    f"The full list: {status_blocks.plural(len(report.records), 'resource')}, "
                    "worst first"
                    + (
                        f", then {status_blocks.plural(len(report.errors), 'failed check')}."
                        if report.errors
                        else "."
                    )
                ),
            )
        except SlackApiError as error:
            # The card is out already; say why its list is missing rather than fail the job.
            log.warning("could not attach the AWS status list: %s", error.response.get("error"))
            self.client.post(
                channel=message.channel,
                thread_ts=thread_ts or message.ts,
                text=":warning: The full list could not be attached "
                f"(Slack said `{error.response.get('error')}`).",
            )

    def failed(
        self, channel: str, thread_ts: str | None, text: str, replace: ChatMessage | None = None
    ) -> None:
        """Edit the stand-in message into the failure, or post the failure."""
        line = status_blocks.render_failed(text)
        if replace is None:
            self.client.post(channel=channel, thread_ts=thread_ts, text=line)
        else:
            self.client.update(channel=replace.channel, ts=replace.ts, text=line)
