"""predictions: what each request scored and answered

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.coltypes import BigId, JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("features", JSONType, nullable=False),
        sa.Column("answer", JSONType, nullable=False),
        sa.UniqueConstraint("request_id", name="uq_predictions_request_id"),
    )
    op.create_index("ix_predictions_timestamp_id", "predictions", ["timestamp", "id"])


def downgrade() -> None:
    op.drop_table("predictions")
