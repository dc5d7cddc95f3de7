"""feedback on predictions (actual, feedback_at); drift_runs for fleet-wide drift

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.coltypes import BigId, JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: every prediction stored before this revision simply has no feedback yet.
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("actual", JSONType, nullable=True))
        batch.add_column(sa.Column("feedback_at", UTCDateTime(), nullable=True))
    op.create_index("ix_predictions_model", "predictions",
                    ["model_name", "model_version", "timestamp"])
    op.create_table(
        "drift_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("window_rows", sa.Integer(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("drift_detected", sa.Boolean(), nullable=False),
        sa.Column("summary", JSONType, nullable=False),
        sa.Column("report_html", sa.Text(), nullable=True),
    )
    op.create_index("ix_drift_runs_model", "drift_runs", ["model_name", "checked_at"])


def downgrade() -> None:
    op.drop_table("drift_runs")
    op.drop_index("ix_predictions_model", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("feedback_at")
        batch.drop_column("actual")
