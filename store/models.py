"""The store's tables (SQLAlchemy 2 declarative models). The schema itself is created and
changed only by the Alembic revisions in store/migrations/; tests/store checks that the
migrated database and these models agree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.coltypes import BigId, JSONType, UTCDateTime


class Base(DeclarativeBase):
    pass


class Prediction(Base):
    """One scored record: what came in, what the model answered, and later the truth."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(100))
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # {"prediction": label, "probabilities": {...}, ...} or {"prediction": value}
    answer: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Ground truth sent later (POST /feedback): a class label or a number; JSON keeps both.
    actual: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        # One row per request: a writer's retry after a lost commit acknowledgement, or a
        # client resending its X-Request-ID, never stores a prediction twice.
        UniqueConstraint("request_id", name="uq_predictions_request_id"),
        # History pages (newest first) and retention scan by time; id breaks ties.
        Index("ix_predictions_timestamp_id", "timestamp", "id"),
        # Drift windows and online performance are per model (version), newest first.
        Index("ix_predictions_model", "model_name", "model_version", "timestamp"),
        # Online performance: the newest labelled rows per version, without a scan of all.
        Index("ix_predictions_labelled", "model_name", "model_version", "timestamp", "id",
              sqlite_where=text("feedback_at IS NOT NULL"),
              postgresql_where=text("feedback_at IS NOT NULL")),
    )


class DriftRun(Base):
    """One fleet-wide drift check: its summary, and the HTML report every replica serves."""

    __tablename__ = "drift_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(200))
    window_rows: Mapped[int] = mapped_column(Integer)
    drift_share: Mapped[float] = mapped_column(Float)
    drift_detected: Mapped[bool] = mapped_column()
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)
    report_html: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_drift_runs_model", "model_name", "checked_at"),)


predictions = Prediction.__table__
drift_runs = DriftRun.__table__
