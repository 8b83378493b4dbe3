"""`POST /webhooks/jira`: issues created or updated with a label become tasks.

Jira Cloud admin webhooks registered with a secret sign each request with
`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>` and name it with
`X-Atlassian-Webhook-Identifier`, which stays the same across Jira's retries. Events
used are `jira:issue_created` (the issue carries the label) and `jira:issue_updated`
(the changelog shows the label was just added, so later edits of a labelled issue do
not start work again).
"""

from __future__ import annotations

import re
from typing import Any

from bot.services import Services
from bot.webhooks.http import (
    Delivery,
    Outcome,
    bad_request,
    check_signature,
    check_window,
    effective_secret,
    sent_at,
)
from bot.webhooks.intake import Intake, Trigger
from bot.webhooks.payload import dig, ident, items, obj, text, words

SOURCE = "jira"
ISSUE_KEY = re.compile(r"^(?P<project>[A-Za-z][A-Za-z0-9_]*)-[0-9]+$")
EVENTS = ("jira:issue_created", "jira:issue_updated")
ADF_DEPTH = 20


def adf_text(node: Any, depth: int = 0) -> str:
    """Plain text of an Atlassian Document Format node (descriptions in API v3 shape)."""
    if depth > ADF_DEPTH:
        return ""
    if isinstance(node, str):
        return text(node)
    node = obj(node)
    if node.get("type") == "text":
        return text(node.get("text"))
    parts = [adf_text(child, depth + 1) for child in items(node.get("content"))]
    joiner = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
    return joiner.join(part for part in parts if part)


def label_added(payload: dict[str, Any], label: str) -> bool:
    """Whether this update's changelog adds `label` (labels are space-separated there)."""
    wanted = label.casefold()
    for raw in items(dig(payload, "changelog", "items")):
        item = obj(raw)
        if text(item.get("field")).casefold() != "labels":
            continue
        before = {name.casefold() for name in text(item.get("fromString")).split()}
        after = {name.casefold() for name in text(item.get("toString")).split()}
        if wanted in after and wanted not in before:
            return True
    return False


def browse_url(issue: dict[str, Any], key: str) -> str:
    """The issue's web page, from its REST `self` URL (`…/rest/api/2/issue/10001`)."""
    site = text(issue.get("self"), 500).split("/rest/", 1)[0]
    return f"{site}/browse/{key}" if site.startswith("https://") else ""


class JiraSource:
    """Verifies and acts on Jira deliveries."""

    name = SOURCE

    def __init__(self, services: Services, intake: Intake) -> None:
        self.services = services
        self.intake = intake
        self.config = services.config.webhooks.jira
        self.secret = effective_secret(services.settings.jira_webhook_secret, self.config.secret)

    def verify(self, delivery: Delivery) -> None:
        """Check `X-Hub-Signature` against the webhook's secret."""
        check_signature(
            self.secret,
            delivery.body,
            delivery.header("x-hub-signature"),
            prefix="sha256=",
            header="X-Hub-Signature",
        )

    def handle(self, delivery: Delivery, payload: dict[str, Any]) -> Outcome:
        """Create a task for a newly labelled issue; ignore everything else."""
        event = text(payload.get("webhookEvent"), 100)
        if event not in EVENTS:
            return Outcome.ignored(f"Jira event {event or '(none)'} is not used")
        check_window(sent_at(payload.get("timestamp")), "timestamp")
        issue = payload.get("issue")
        if not isinstance(issue, dict):
            raise bad_request("issue is missing")
        key = text(issue.get("key"), 100)
        match = ISSUE_KEY.match(key)
        if match is None:
            raise bad_request("issue.key is missing or malformed")
        fields = obj(issue.get("fields"))
        label = self.config.label
        if label.casefold() not in {name.casefold() for name in words(fields.get("labels"))}:
            return Outcome.ignored(f"{key} is not labelled {label}")
        if event == "jira:issue_updated" and not label_added(payload, label):
            return Outcome.ignored(f"{key} already had the label {label}; this update is not new")
        project = text(dig(fields, "project", "key"), 100) or match["project"]
        repo_name = self.config.projects.get(project)
        if repo_name is None:
            return Outcome.ignored(
                f"Jira project {project} is not mapped to a repo in webhooks.jira.projects"
            )
        summary = text(fields.get("summary"), 300).strip()
        if not summary:
            raise bad_request("issue.fields.summary is missing")
        body = adf_text(fields.get("description")).strip()[:20_000]
        url = browse_url(issue, key)
        origin = f"Jira {key}" + (f": {url}" if url else "")
        user = obj(payload.get("user"))
        who = (
            text(user.get("displayName"), 60)
            or text(user.get("name"), 60)
            or ident(user.get("accountId"))
        )
        trigger = Trigger(
            source=SOURCE,
            ref=key,
            repo=repo_name,
            description="\n\n".join(part for part in (summary, body, origin) if part),
            requester=f"jira:{who}" if who else "jira",
            data={
                "key": key,
                "project": project,
                "url": url,
                "summary": summary,
                "labels": words(fields.get("labels"))[:50],
                "issue_type": text(dig(fields, "issuetype", "name"), 100),
                "priority": text(dig(fields, "priority", "name"), 100)
                or text(fields.get("priority"), 100),
            },
        )
        keys = [
            *delivery.header_key(SOURCE, "x-atlassian-webhook-identifier"),
            delivery.body_key(SOURCE),
        ]
        return self.intake.start(trigger, keys)
