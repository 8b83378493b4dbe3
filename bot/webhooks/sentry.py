"""`POST /webhooks/sentry`: issue alerts from a Sentry internal integration.

Sentry signs each request with `Sentry-Hook-Signature` (hex HMAC-SHA256 of the body
with the integration's client secret), says what it is about in
`Sentry-Hook-Resource`, and names it with `Request-ID`. Only `event_alert`
(`action: triggered`) starts work: the task carries the error type and message, the
culprit, the stack frames and the event count, so planning starts from the stack
trace. While a task for the Sentry issue is open, further alerts for that issue are
counted on it instead of creating more tasks.
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
from bot.webhooks.payload import dig, ident, items, number, obj, text

SOURCE = "sentry"
# `data.event.url` is the event's API URL: …/api/0/projects/<org>/<project>/events/<id>/
PROJECT_IN_URL = re.compile(r"/projects/[^/]+/(?P<project>[^/]+)/events/")
MAX_FRAMES = 30
FRAMES_SHOWN = 5


def frames_of(exception: dict[str, Any]) -> list[dict[str, Any]]:
    """Stack frames, most recent call first, as file, line, function and in_app.

    Sentry lists frames oldest first, the raising frame last; the planning agent and
    the people reading the card want the raising frame first.
    """
    frames = []
    for raw in reversed(items(dig(exception, "stacktrace", "frames"))):
        frame = obj(raw)
        file = (
            text(frame.get("filename"), 300)
            or text(frame.get("abs_path"), 300)
            or text(frame.get("module"), 300)
        )
        if not file:
            continue
        frames.append(
            {
                "file": file,
                "line": number(frame.get("lineno")),
                "function": text(frame.get("function"), 200) or None,
                "in_app": frame.get("in_app") is True,
            }
        )
        if len(frames) == MAX_FRAMES:
            break
    return frames


def frame_line(frame: dict[str, Any]) -> str:
    """`file:line in function`, as a stack trace reads."""
    where = frame["file"] + (f":{frame['line']}" if frame["line"] is not None else "")
    return f"{where} in {frame['function'] or '?'}"


def describe(data: dict[str, Any], title: str) -> str:
    """The task description: the error, where it happened, and the top frames."""
    frames = data["frames"]
    in_app = [frame for frame in frames if frame["in_app"]]
    shown = (in_app or frames)[:FRAMES_SHOWN]
    lines = [
        title,
        "",
        f"Sentry issue {data['issue_id']} in project {data['project']}: "
        f"{data['event_count']} event(s) when the alert fired"
        + (f", level {data['level']}" if data["level"] else ""),
    ]
    if data["culprit"]:
        lines.append(f"Culprit: {data['culprit']}")
    if shown:
        label = "In-app frames" if in_app else "Frames"
        lines.append(f"{label}, most recent call first:")
        lines.extend(f"  {frame_line(frame)}" for frame in shown)
    if data["url"]:
        lines.append(data["url"])
    return "\n".join(lines)


class SentrySource:
    """Verifies and acts on Sentry deliveries."""

    name = SOURCE

    def __init__(self, services: Services, intake: Intake) -> None:
        self.services = services
        self.intake = intake
        self.config = services.config.webhooks.sentry
        self.secret = effective_secret(services.settings.sentry_client_secret, self.config.secret)

    def verify(self, delivery: Delivery) -> None:
        """Check `Sentry-Hook-Signature` against the client secret."""
        check_signature(
            self.secret,
            delivery.body,
            delivery.header("sentry-hook-signature"),
            prefix="",
            header="Sentry-Hook-Signature",
        )

    def handle(self, delivery: Delivery, payload: dict[str, Any]) -> Outcome:
        """Create (or count) a task for an issue alert; ignore other resources."""
        resource = delivery.header("sentry-hook-resource")
        if resource != "event_alert":
            return Outcome.ignored(f"Sentry resource {resource[:50] or '(none)'} is not used")
        if text(payload.get("action"), 50) != "triggered":
            return Outcome.ignored("only triggered alerts start tasks")
        event = dig(payload, "data", "event")
        if not isinstance(event, dict):
            raise bad_request("data.event is missing")
        issue_id = ident(event.get("issue_id"))
        if not issue_id:
            raise bad_request("data.event.issue_id is missing")
        project, repo_name = self._project(event)
        if repo_name is None:
            return Outcome.ignored(
                f"Sentry project {project or '(unknown)'} is not mapped to a repo "
                "in webhooks.sentry.projects"
            )
        check_window(
            sent_at(event.get("timestamp")) or sent_at(event.get("datetime")),
            "data.event.timestamp",
        )
        data, title = self._details(payload, event, issue_id, project)
        rule = text(dig(payload, "data", "triggered_rule"), 100)
        trigger = Trigger(
            source=SOURCE,
            ref=issue_id,
            repo=repo_name,
            description=describe(data, title),
            requester=f"sentry: {rule}" if rule else "sentry",
            data=data,
        )
        keys = [*delivery.header_key(SOURCE, "request-id"), delivery.body_key(SOURCE)]
        return self.intake.start(trigger, keys)

    def _project(self, event: dict[str, Any]) -> tuple[str, str | None]:
        """The event's project (slug when known, else id) and the repo it maps to."""
        match = PROJECT_IN_URL.search(text(event.get("url"), 1000))
        slug = match["project"] if match else ""
        project_id = ident(event.get("project"))
        for candidate in (slug, project_id):
            if candidate and candidate in self.config.projects:
                return candidate, self.config.projects[candidate]
        return slug or project_id, None

    @staticmethod
    def _details(
        payload: dict[str, Any], event: dict[str, Any], issue_id: str, project: str
    ) -> tuple[dict[str, Any], str]:
        # Chained exceptions are listed cause first; the last one is what was raised.
        values = [obj(value) for value in items(dig(event, "exception", "values"))]
        exception = values[-1] if values else {}
        metadata = obj(event.get("metadata"))
        error_type = text(exception.get("type"), 200) or text(metadata.get("type"), 200)
        message = (
            text(exception.get("value"), 2000)
            or text(metadata.get("value"), 2000)
            or text(event.get("message"), 2000)
        )
        title = (
            text(event.get("title"), 300)
            or (f"{error_type}: {message}" if error_type else message)
            or f"Sentry issue {issue_id}"
        )
        # Issue alerts carry one event; a count, when a sender includes one, wins.
        count = number(dig(payload, "data", "issue", "count")) or number(event.get("count"))
        data = {
            "issue_id": issue_id,
            "project": project,
            "error_type": error_type,
            "message": message,
            "culprit": text(event.get("culprit"), 500),
            "frames": frames_of(exception),
            "event_count": max(count or 1, 1),
            "level": text(event.get("level"), 20),
            "platform": text(event.get("platform"), 50),
            "url": text(event.get("web_url"), 500) or text(event.get("issue_url"), 500),
            "rule": text(dig(payload, "data", "triggered_rule"), 200),
        }
        first_line = next((line for line in title.splitlines() if line.strip()), "")
        return data, first_line.strip() or f"Sentry issue {issue_id}"
