"""a partial index over labelled predictions, for online performance

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LABELLED = sa.text("feedback_at IS NOT NULL")


def upgrade() -> None:
    # Online performance reads the newest labelled rows per model version every
    # metrics_interval_s in every worker; without this it scanned every prediction of the
    # model (at 2,600 predictions a second, a quarter of a worker's CPU in a minute).
    op.create_index("ix_predictions_labelled", "predictions",
                    ["model_name", "model_version", "timestamp", "id"],
                    sqlite_where=LABELLED, postgresql_where=LABELLED)


def downgrade() -> None:
    op.drop_index("ix_predictions_labelled", table_name="predictions")
