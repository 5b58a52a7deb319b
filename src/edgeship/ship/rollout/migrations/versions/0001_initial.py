"""The rollout store as the hand-written SQLite schema of earlier versions had it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.Text, nullable=False), sa.Column("channel", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False), sa.Column("from_target", sa.Text),
        sa.Column("stages", sa.Text, nullable=False),
        sa.Column("stage", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.Text, nullable=False), sa.Column("failure_threshold", sa.Float, nullable=False),
        sa.Column("advance_fraction", sa.Float, nullable=False), sa.Column("min_reports", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False), sa.Column("reason", sa.Text))
    op.create_table(
        "devices",
        sa.Column("device_id", sa.Text, primary_key=True), sa.Column("model", sa.Text), sa.Column("channel", sa.Text),
        sa.Column("active_target", sa.Text), sa.Column("agent_version", sa.Text), sa.Column("last_seen", sa.Float),
        sa.Column("last_outcome", sa.Text))
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text, nullable=False), sa.Column("rollout_id", sa.Integer),
        sa.Column("target", sa.Text), sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("transient", sa.Integer, nullable=False, server_default="0"), sa.Column("detail", sa.Text),
        sa.Column("active_target", sa.Text), sa.Column("at", sa.Float, nullable=False))
    op.create_index("reports_by_rollout", "reports", ["rollout_id", "device_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), sa.Column("rollout_id", sa.Integer),
        sa.Column("at", sa.Float, nullable=False), sa.Column("text", sa.Text, nullable=False))


def downgrade() -> None:
    for table in ("events", "reports", "devices", "rollouts"):
        op.drop_table(table)
