"""aws status scans and the resources each one saw

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aws_scans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("units_total", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("aws_scans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_aws_scans_scope_key_finished_at", ["scope_key", "finished_at"], unique=False
        )

    op.create_table(
        "aws_scan_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("arn", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("steward", sa.Text(), nullable=False),
        sa.Column("autonomy", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["scan_id"], ["aws_scans.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("aws_scan_resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_aws_scan_resources_scan_id"), ["scan_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("aws_scan_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aws_scan_resources_scan_id"))

    op.drop_table("aws_scan_resources")
    with op.batch_alter_table("aws_scans", schema=None) as batch_op:
        batch_op.drop_index("ix_aws_scans_scope_key_finished_at")

    op.drop_table("aws_scans")
