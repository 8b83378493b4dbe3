"""`POST /webhooks/github`: labelled issues become tasks; comments approve or reject them.

GitHub signs each delivery with `X-Hub-Signature-256` (HMAC-SHA256 of the body with
the webhook secret) and names it with `X-GitHub-Delivery`, which stays the same when
a delivery is redelivered. Events used:

- `issues` `labeled` (or `opened` already carrying the label): a task whose
  description is the issue's title and body, for the configured repo of that name.
- `issue_comment` `created` starting with `/agent approve [comment]` or
  `/agent reject [reason]`: the same decision as the Slack buttons, taken as the
  Slack user the commenter's login is linked to, under the same approval rules.
- `ping`: answered, so GitHub shows the hook as working.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

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
from bot.webhooks.payload import dig, items, number, obj, text
from jobs.config import RepoConfig
from jobs.lifecycle import NO_REASON
from jobs.models import Task
from jobs.origin import enqueue_announce, enqueue_reply

log = logging.getLogger(__name__)

SOURCE = "github"
COMMAND = re.compile(r"\A\s*/agent(?:\s+(?P<verb>\S+))?(?P<rest>.*)\Z", re.IGNORECASE | re.DOTALL)
COMMENT_LIMIT = 1000
USAGE = "Here Agentbot understands `/agent approve [comment]` and `/agent reject [reason]`."


@dataclass(frozen=True)
class Command:
    """An `/agent …` comment."""

    verb: str
    rest: str


def parse_command(body: str) -> Command | None:
    """The `/agent` command a comment starts with, or None when it is not one."""
    match = COMMAND.match(body)
    if match is None:
        return None
    return Command(verb=(match["verb"] or "").lower(), rest=match["rest"].strip()[:COMMENT_LIMIT])


def issue_ref(repo: RepoConfig, issue_number: int) -> str:
    """How a GitHub issue is recorded as a task's `source_ref`."""
    return f"{repo.name}#{issue_number}"


class GitHubSource:
    """Verifies and acts on GitHub deliveries."""

    name = SOURCE

    def __init__(self, services: Services, intake: Intake) -> None:
        self.services = services
        self.intake = intake
        self.config = services.config.webhooks.github
        self.secret = effective_secret(services.settings.github_webhook_secret, self.config.secret)

    def verify(self, delivery: Delivery) -> None:
        """Check `X-Hub-Signature-256` against the webhook secret."""
        check_signature(
            self.secret,
            delivery.body,
            delivery.header("x-hub-signature-256"),
            prefix="sha256=",
            header="X-Hub-Signature-256",
        )

    def handle(self, delivery: Delivery, payload: dict[str, Any]) -> Outcome:
        """Dispatch on `X-GitHub-Event`."""
        event = delivery.header("x-github-event")
        keys = [*delivery.header_key(SOURCE, "x-github-delivery"), delivery.body_key(SOURCE)]
        if event == "ping":
            return Outcome(200, {"status": "pong"})
        if event == "issues":
            return self._issue(payload, keys)
        if event == "issue_comment":
            return self._comment(payload, keys)
        return Outcome.ignored(f"GitHub event {event[:50] or '(none)'} is not used")

    # -- shared -------------------------------------------------------------------------

    def _repo(self, payload: dict[str, Any]) -> tuple[str, RepoConfig | None]:
        full_name = text(dig(payload, "repository", "full_name"), 200)
        if not full_name:
            raise bad_request("repository.full_name is missing")
        repos = self.services.config.repos
        # A repo is known by its configured name, or by its name on GitHub when the two
        # differ (`github_repo`, e.g. on GitHub Enterprise).
        repo = self.services.config.repo(full_name) or next(
            (r for r in repos if (r.pull_request_repo or "").lower() == full_name.lower()), None
        )
        allowed = self.config.repos
        if (
            repo is not None
            and allowed
            and repo.name.lower() not in {name.lower() for name in allowed}
        ):
            repo = None
        return full_name, repo

    @staticmethod
    def _issue_number(payload: dict[str, Any]) -> int:
        value = number(dig(payload, "issue", "number"))
        if value is None or value <= 0:
            raise bad_request("issue.number is missing")
        return value

    def _person(self, login: str) -> str:
        user = self.services.config.webhooks.slack_user(login) if login else None
        return user or f"github:{login or 'unknown'}"

    # -- issues -------------------------------------------------------------------------

    def _issue(self, payload: dict[str, Any], keys: list[str]) -> Outcome:
        action = text(payload.get("action"), 50)
        if action not in ("labeled", "opened"):
            return Outcome.ignored(f"issue action {action or '(none)'} does not start tasks")
        full_name, repo = self._repo(payload)
        issue_number = self._issue_number(payload)
        issue = obj(payload.get("issue"))
        # Labelling an issue updates it: an older body is a replay.
        check_window(sent_at(issue.get("updated_at")), "issue.updated_at")
        label = self.config.label.casefold()
        if action == "labeled":
            labelled = text(dig(payload, "label", "name"), 100).casefold() == label
        else:
            names = (text(obj(each).get("name"), 100) for each in items(issue.get("labels")))
            labelled = any(name.casefold() == label for name in names)
        if not labelled:
            return Outcome.ignored(f"the issue was not labelled `{self.config.label}`")
        if repo is None:
            return Outcome.ignored(f"{full_name} is not a repo GitHub webhooks may use")
        title = text(issue.get("title"), 300).strip()
        if not title:
            raise bad_request("issue.title is missing")
        body = text(issue.get("body")).strip()
        url = text(issue.get("html_url"), 500)
        login = text(dig(payload, "sender", "login"), 100)
        origin = f"GitHub issue {full_name}#{issue_number}" + (f": {url}" if url else "")
        trigger = Trigger(
            source=SOURCE,
            ref=issue_ref(repo, issue_number),
            repo=repo.name,
            description="\n\n".join(part for part in (title, body, origin) if part),
            requester=self._person(login),
            data={
                "repo": full_name,
                "number": issue_number,
                "url": url,
                "title": title,
                "author": text(dig(issue, "user", "login"), 100),
                "labelled_by": login,
            },
        )
        outcome = self.intake.start(trigger, keys)
        if outcome.task_id is not None:
            try:
                enqueue_announce(self.services.queues, outcome.task_id)
            except RedisError:
                log.warning("T-%s created; its GitHub comment could not be queued", outcome.task_id)
        return outcome

    # -- comments -----------------------------------------------------------------------

    def _written_after_plan(self, task: Task, written_at: datetime | None) -> bool:
        """Whether a comment can be about the task's current plan.

        GitHub gives the moment to the second, so a comment in the plan's own second
        counts as after it.
        """
        posted = self.intake.plan_posted_at(task.id)
        if posted is None:
            return True  # no plan yet: the lifecycle refuses the decision itself
        if written_at is None:
            return False
        return written_at + timedelta(seconds=1) > posted

    def _reply(self, full_name: str, issue_number: int, message: str) -> None:
        # The decision is already recorded; a lost reply must not undo or repeat it.
        try:
            enqueue_reply(self.services.queues, full_name, issue_number, message)
        except RedisError:
            log.warning("could not queue a reply on %s#%s", full_name, issue_number)

    def _comment(self, payload: dict[str, Any], keys: list[str]) -> Outcome:
        if text(payload.get("action"), 50) != "created":
            return Outcome.ignored("only new comments are read")
        if text(dig(payload, "sender", "type"), 50) == "Bot":
            return Outcome.ignored("comments by bots are not commands")
        command = parse_command(text(dig(payload, "comment", "body")))
        if command is None:
            return Outcome.ignored("not an /agent command")
        full_name, repo = self._repo(payload)
        issue_number = self._issue_number(payload)
        if repo is None:
            return Outcome.ignored(f"{full_name} is not a repo GitHub webhooks may use")
        comment_id = number(dig(payload, "comment", "id"))
        if comment_id is None:
            raise bad_request("comment.id is missing")
        written_at = sent_at(dig(payload, "comment", "created_at"))
        check_window(written_at, "comment.created_at")
        # A comment acts once, ever: its id is inside the signed body, the delivery's
        # id is not.
        keys = [*keys, f"{SOURCE}:comment:{comment_id}"]
        if not self.intake.claim(keys):
            return Outcome.duplicate()
        login = text(dig(payload, "sender", "login"), 100) or "unknown"

        def refuse(reason: str, task_key: str | None = None) -> Outcome:
            self._reply(full_name, issue_number, f"@{login} {reason}")
            return Outcome(202, {"status": "refused", "task": task_key, "reason": reason})

        if command.verb not in ("approve", "reject"):
            return refuse(USAGE)
        task = self.intake.latest_task(SOURCE, issue_ref(repo, issue_number))
        if task is None:
            return refuse(
                f"There is no Agentbot task for this issue; label it `{self.config.label}` "
                "to start one."
            )
        user = self.services.config.webhooks.slack_user(login)
        if user is None:
            return refuse(
                f"your GitHub login is not linked to a Slack user, so Agentbot cannot check "
                f"that you may decide {task.key}. Ask an admin to add it under "
                "`[webhooks.github_users]`.",
                task.key,
            )
        if not self._written_after_plan(task, written_at):
            return refuse(
                f"this comment was written before the current plan of {task.key} was "
                "posted; read that plan, then comment again to decide on it.",
                task.key,
            )
        approve = command.verb == "approve"
        # As with the slash command, a reason is welcome but not required.
        comment = command.rest if approve or command.rest else NO_REASON
        verdict = self.intake.decide(
            task, user, approve=approve, comment=comment, delivery_keys=keys
        )
        if verdict.status == "refused":
            return refuse(verdict.message, task.key)
        self._reply(full_name, issue_number, f"@{login} {verdict.message}")
        return Outcome(200, {"status": verdict.status, "task": task.key})
