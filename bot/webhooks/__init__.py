"""Triggers from GitHub, Sentry and Jira, feeding the same approval pipeline as Slack.

Each sender gets one endpoint, `POST /webhooks/<name>`: the signature is verified,
the body read totally (any JSON shape gives an answer, never a crash), and a task is
created through the lifecycle with its card posted in the repo's channel, where
approvers decide as for any other task.
"""

from __future__ import annotations

import logging

from bot.services import Services
from bot.web import WebApp
from bot.webhooks.github import GitHubSource
from bot.webhooks.http import Source, endpoint
from bot.webhooks.intake import Intake
from bot.webhooks.jira import JiraSource
from bot.webhooks.sentry import SentrySource

log = logging.getLogger(__name__)


def sources(services: Services) -> list[Source]:
    """The webhook senders, wired to one intake."""
    intake = Intake(services)
    return [
        GitHubSource(services, intake),
        SentrySource(services, intake),
        JiraSource(services, intake),
    ]


def register(web: WebApp, services: Services) -> None:
    """Serve `POST /webhooks/github|sentry|jira` from the web app."""
    for source in sources(services):
        web.webhooks[source.name] = endpoint(source)
        if not source.secret:
            log.info("webhooks/%s has no secret configured; it refuses every delivery", source.name)
