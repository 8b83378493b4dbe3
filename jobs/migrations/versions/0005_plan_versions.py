"""plan versions: every plan a task was shown, and approvals per version

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# What SQLite's batch mode calls the reflected, unnamed (task_id, user_id, decision) key.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OLD_UNIQUE_SQLITE = "uq_approvals_task_id_user_id_decision"
# What PostgreSQL named it when 0001 created it.
OLD_UNIQUE_POSTGRES = "approvals_task_id_user_id_decision_key"
NEW_UNIQUE = "uq_approvals_task_version_user_decision"


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.Column("feedback", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("superseded_shown", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "version", name="uq_plan_versions_task_version"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("plan_version", sa.Integer(), nullable=False, server_default="1")
        )
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table(
        "approvals", schema=None, naming_convention=None if postgres else SQLITE_NAMES
    ) as batch_op:
        batch_op.add_column(
            sa.Column("plan_version", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.drop_constraint(
            OLD_UNIQUE_POSTGRES if postgres else OLD_UNIQUE_SQLITE, type_="unique"
        )
        batch_op.create_unique_constraint(
            NEW_UNIQUE, ["task_id", "plan_version", "user_id", "decision"]
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # Only the latest version's decisions fit the old one-decision-per-person key.
    op.execute(
        "DELETE FROM approvals WHERE plan_version < "
        "(SELECT plan_version FROM tasks WHERE tasks.id = approvals.task_id)"
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_constraint(NEW_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(
            OLD_UNIQUE_POSTGRES if postgres else OLD_UNIQUE_SQLITE,
            ["task_id", "user_id", "decision"],
        )
        batch_op.drop_column("plan_version")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("plan_version")
    op.drop_table("plan_versions")
