"""The first schema: models (pointers), versions (cards), blobs, history, outcomes.

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
        "models",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("champion", sa.String(20)),
        sa.Column("challenger", sa.String(20)),
        sa.Column("challenger_mode", sa.String(10)),
        sa.Column("challenger_percent", sa.Float),
        sa.Column("challenger_since", sa.String(40)),
    )
    op.create_table(
        "versions",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(20), primary_key=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("card", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
    )
    op.create_index("ix_history_model", "history", ["model"])
    op.create_table(
        "outcomes",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("lead_id", sa.String(200), primary_key=True),
        sa.Column("property_id", sa.String(200), primary_key=True, server_default=""),
        sa.Column("outcome", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("features", sa.Text),
        sa.Column("scored_version", sa.String(20)),
        sa.Column("scored_at", sa.String(40)),
    )


def downgrade() -> None:
    for table in ("outcomes", "history", "blobs", "versions", "models"):
        op.drop_table(table)
