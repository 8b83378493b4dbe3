"""Database tables: tasks, their audit trail, approvals, and seen deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobs.states import TaskState


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp we store is UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base for Agentbot's tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Task(Base):
    """One piece of work handed to the agents, shown to users as `T-<id>`."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    description: Mapped[str] = mapped_column(Text)
    repo: Mapped[str] = mapped_column(String(200))
    requester: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="slack")
    source_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    source_data: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    state: Mapped[str] = mapped_column(String(32), default=TaskState.QUEUED.value)
    version: Mapped[int] = mapped_column(Integer, default=1)
    card_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    thread_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    plan_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    progress_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    outcome_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    slack_version: Mapped[int] = mapped_column(Integer, default=0)
    plan: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # The version `plan` is (or, before the first plan, will be); approvals are of one.
    plan_version: Mapped[int] = mapped_column(Integer, default=1)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    job_id: Mapped[str | None] = mapped_column(String(64), default=None)
    agent_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_tasks_state", "state"),
        Index("ix_tasks_requester", "requester"),
        Index("ix_tasks_source_ref", "source", "source_ref"),
    )

    @property
    def key(self) -> str:
        """The id users see and type."""
        return f"T-{self.id}"

    @property
    def task_state(self) -> TaskState:
        """The state as an enum."""
        return TaskState(self.state)


class TaskEvent(Base):
    """One state change: the audit trail."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approval(Base):
    """One approver's decision on a task's plan."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    # The plan version decided on: an approval of v1 does not count for v2.
    plan_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "task_id",
            "plan_version",
            "user_id",
            "decision",
            name="uq_approvals_task_version_user_decision",
        ),
    )


class PlanVersion(Base):
    """One version of a task's plan: v1, then one per change request.

    A row whose `plan` is still None is a change request the planner has not answered
    yet; `message_ts` is the Slack message that showed the version, edited to say
    "Superseded" once a newer one is posted (`superseded_shown`).
    """

    __tablename__ = "plan_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    plan: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    changes: Mapped[str | None] = mapped_column(Text, default=None)
    feedback: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by: Mapped[str | None] = mapped_column(String(64), default=None)
    message_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    superseded_shown: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    planned_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (UniqueConstraint("task_id", "version", name="uq_plan_versions_task_version"),)


class SlackDelivery(Base):
    """A Slack request we have already taken, keyed by Slack's own ids."""

    __tablename__ = "slack_deliveries"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
