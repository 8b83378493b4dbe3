"""Where every webhook trigger joins the task lifecycle.

A trigger becomes a task through `Lifecycle.request`, in one transaction that also
claims the delivery id (so a replay is recognised) and checks for an open task from
the same origin (so an alert storm makes one task). Concurrent deliveries for one
origin are serialized by a transaction-scoped advisory lock on PostgreSQL. If
creation fails, the claim rolls back with it and the sender's re-delivery is
processed as if it were the first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.services import Services
from bot.webhooks.http import Outcome, bad_request
from jobs.config import RepoConfig
from jobs.exceptions import AgentbotError, BadRequest, Unavailable
from jobs.lifecycle import MAX_DESCRIPTION
from jobs.models import SlackDelivery, Task, TaskEvent
from jobs.states import TERMINAL, TaskState

log = logging.getLogger(__name__)

# Namespaces this module's advisory locks (the first key of the two-key form).
LOCK_NAMESPACE = 6_201
REQUESTER_LIMIT = 64
TRUNCATED = "\n… (truncated)"


class _Duplicate(Exception):
    """The delivery id was claimed before."""


class _AlreadyOpen(Exception):
    def __init__(self, task_id: int) -> None:
        super().__init__(task_id)
        self.task_id = task_id


@dataclass(frozen=True)
class Verdict:
    """What became of an approve or reject sent from outside Slack."""

    status: Literal["approved", "approval recorded", "rejected", "refused"]
    message: str


@dataclass(frozen=True)
class Trigger:
    """A request for work from outside Slack, in the lifecycle's terms."""

    source: str
    ref: str
    repo: str
    description: str
    requester: str
    data: dict[str, Any] = field(default_factory=dict)


def clip_description(description: str) -> str:
    """Keep a description within what the lifecycle accepts, saying it was cut."""
    description = description.strip()
    if len(description) <= MAX_DESCRIPTION:
        return description
    return description[: MAX_DESCRIPTION - len(TRUNCATED)].rstrip() + TRUNCATED


def clip_requester(requester: str) -> str:
    """Requesters are stored in 64 characters."""
    return requester[:REQUESTER_LIMIT]


class Intake:
    """Turns triggers into tasks, and origin comments into approval decisions."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # -- where a task goes ---------------------------------------------------------------

    def channel_for(self, repo: RepoConfig) -> str | None:
        """The channel that gets the card: the repo's own, else the notification channel."""
        return repo.channel or self.services.config.slack.notification_channel

    # -- creating tasks -----------------------------------------------------------------

    def start(self, trigger: Trigger, delivery_keys: Sequence[str]) -> Outcome:
        """Create the task for a trigger, once per delivery and once per open origin.

        A delivery is known by each of `delivery_keys` (the sender's id, the signed
        body's digest); any one of them seen before makes it a duplicate.

        Raises:
            Refused: 400 when the trigger carries no description at all.
        """
        config = self.services.config
        repo = config.repo(trigger.repo)
        if repo is None:
            return Outcome.ignored(f"{trigger.repo} is not a configured repo")
        channel = self.channel_for(repo)
        if channel is None:
            return Outcome.ignored(
                f"no channel configured for {repo.name}: set its `channel` "
                "or `slack.notification_channel`"
            )

        def guard(session: Session) -> None:
            self._lock(session, trigger)
            for key in delivery_keys:
                self._claim(session, key)
            open_task = self._open_task(session, trigger)
            if open_task is not None:
                raise _AlreadyOpen(open_task)

        try:
            task = self.services.lifecycle.request(
                description=clip_description(trigger.description),
                requester=clip_requester(trigger.requester),
                channel=channel,
                repo_name=repo.name,
                source=trigger.source,
                source_ref=trigger.ref,
                source_data=trigger.data,
                # The signed webhook and the repo allowlist are the authorization here;
                # Slack's requester list is about Slack users.
                check_access=False,
                guard=guard,
            )
        except _Duplicate:
            return Outcome.duplicate()
        except _AlreadyOpen as exc:
            return self._seen_again(exc.task_id, trigger, delivery_keys)
        except BadRequest as exc:
            raise bad_request(str(exc)) from None
        return Outcome.created(task)

    def _lock(self, session: Session, trigger: Trigger) -> None:
        if self.services.db.is_postgres:
            session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:ref))"),
                {"namespace": LOCK_NAMESPACE, "ref": f"{trigger.source}:{trigger.ref}"},
            )

    @staticmethod
    def _claim(session: Session, key: str) -> None:
        # No savepoint: a duplicate abandons the whole transaction, so the two extra
        # round trips (SAVEPOINT, RELEASE) on every delivery bought nothing.
        session.add(SlackDelivery(key=key[:255]))
        try:
            session.flush()
        except IntegrityError:
            raise _Duplicate() from None

    @staticmethod
    def _open_task(session: Session, trigger: Trigger) -> int | None:
        found = session.execute(
            select(Task.id)
            .where(
                Task.source == trigger.source,
                Task.source_ref == trigger.ref,
                Task.state.notin_([state.value for state in TERMINAL]),
            )
            .order_by(Task.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        return None if found is None else int(found)

    def _seen_again(self, task_id: int, trigger: Trigger, delivery_keys: Sequence[str]) -> Outcome:
        """Count a repeat of an origin on its open task (an alert firing again)."""
        key = f"T-{task_id}"
        try:
            with self.services.db.session() as session:
                for delivery_key in delivery_keys:
                    self._claim(session, delivery_key)
                task = session.execute(
                    select(Task).where(Task.id == task_id).with_for_update()
                ).scalar_one()
                data = dict(task.source_data or {})
                data["triggers"] = int(data.get("triggers") or 1) + 1
                if "event_count" in trigger.data:
                    data["event_count"] = max(
                        int(data.get("event_count") or 0) + 1,
                        int(trigger.data.get("event_count") or 0),
                    )
                # Not a change users need re-rendered: no version bump, no Slack edit.
                session.execute(update(Task).where(Task.id == task_id).values(source_data=data))
        except _Duplicate:
            return Outcome.duplicate()
        return Outcome.exists(key)

    # -- deciding -----------------------------------------------------------------------

    def latest_task(self, source: str, ref: str) -> Task | None:
        """The most recent task from one origin, in any state."""
        with self.services.db.session() as session:
            return session.execute(
                select(Task)
                .where(Task.source == source, Task.source_ref == ref)
                .order_by(Task.id.desc())
                .limit(1)
            ).scalar_one_or_none()

    def claim(self, keys: Sequence[str]) -> bool:
        """Record a delivery by all its keys at once; False when any was recorded before."""
        try:
            with self.services.db.session() as session:
                for key in keys:
                    self._claim(session, key)
        except _Duplicate:
            return False
        return True

    def release(self, keys: Sequence[str]) -> None:
        """Forget a delivery whose processing failed, so its re-delivery is processed."""
        try:
            with self.services.db.session() as session:
                session.execute(
                    delete(SlackDelivery).where(SlackDelivery.key.in_([k[:255] for k in keys]))
                )
        except Exception:
            log.warning("could not release delivery %s", ", ".join(keys), exc_info=True)

    def plan_posted_at(self, task_id: int) -> datetime | None:
        """When the task's current plan was put up for approval (None before any was)."""
        with self.services.db.session() as session:
            found = session.execute(
                select(func.max(TaskEvent.created_at)).where(
                    TaskEvent.task_id == task_id,
                    TaskEvent.to_state == TaskState.AWAITING_APPROVAL.value,
                )
            ).scalar_one_or_none()
        return None if found is None else _aware(found)

    def decide(
        self, task: Task, user: str, *, approve: bool, comment: str, delivery_keys: Sequence[str]
    ) -> Verdict:
        """Approve or reject a task as `user`, exactly like the Slack buttons.

        The caller has claimed `delivery_keys`; they are released when the database or
        queue fails, so the re-delivery is processed. A refusal (not an approver,
        self-approval, already decided) is a verdict with the lifecycle's own sentence,
        and the delivery stays claimed: delivered again, it would be refused the same way.
        """
        lifecycle = self.services.lifecycle
        try:
            if not approve:
                rejected = lifecycle.reject(task.id, user, comment)
                return Verdict("rejected", f"{rejected.key} is rejected: {comment}")
            decision = lifecycle.approve(task.id, user, comment or None)
        except Unavailable:
            self._release_quietly(delivery_keys)
            raise
        except AgentbotError as exc:
            return Verdict("refused", str(exc))
        except Exception:
            self._release_quietly(delivery_keys)
            raise
        if decision.moved:
            return Verdict("approved", f"{task.key} is approved and queued for execution.")
        return Verdict(
            "approval recorded",
            f"Approval of {task.key} recorded ({decision.approvals} of {decision.required}).",
        )

    def _release_quietly(self, keys: Sequence[str]) -> None:
        if keys:
            self.release(keys)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
