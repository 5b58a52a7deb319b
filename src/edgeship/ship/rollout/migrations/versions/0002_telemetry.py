"""Telemetry: reports and per-device totals, reference profiles, telemetry gates on rollouts,
the last failure detail and the token of each device.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("config", sa.Text))
        batch.add_column(sa.Column("halt", sa.Text))
        batch.add_column(sa.Column("gate_results", sa.Text))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("last_detail", sa.Text))
        batch.add_column(sa.Column("token", sa.Text))
    op.create_table(
        "profiles",
        sa.Column("target", sa.Text, primary_key=True), sa.Column("profile", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False))
    op.create_table(
        "telemetry",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Text, nullable=False), sa.Column("report_id", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False), sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float, nullable=False), sa.Column("received", sa.Float, nullable=False),
        sa.Column("inferences", sa.Integer, nullable=False), sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("p50", sa.Float), sa.Column("p95", sa.Float), sa.Column("p99", sa.Float),
        sa.Column("dropped", sa.Integer, nullable=False, server_default="0"), sa.Column("error_kinds", sa.Text),
        sa.UniqueConstraint("device_id", "report_id", name="telemetry_once"))
    op.create_index("telemetry_by_target", "telemetry", ["target", "end_at"])
    op.create_table(
        "telemetry_totals",
        sa.Column("target", sa.Text, primary_key=True), sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("first_at", sa.Float, nullable=False), sa.Column("last_at", sa.Float, nullable=False),
        sa.Column("inferences", sa.Integer, nullable=False), sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False))
    op.create_index("devices_by_model", "devices", ["model", "channel"])


def downgrade() -> None:
    op.drop_index("devices_by_model", "devices")
    for table in ("telemetry_totals", "telemetry", "profiles"):
        op.drop_table(table)
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("token")
        batch.drop_column("last_detail")
    with op.batch_alter_table("rollouts") as batch:
        for column in ("gate_results", "halt", "config"):
            batch.drop_column(column)
