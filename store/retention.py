"""Retention by age: predictions (with their feedback) and drift runs older than
`retention_days` are deleted, in chunks so that a large backlog never holds long locks
that would stall the writers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Table, delete, func, select
from sqlalchemy.engine import Engine

from store.models import drift_runs, predictions

CHUNK = 5_000


@dataclass(frozen=True)
class CleanupResult:
    cutoff: str  # ISO 8601: rows older than this were deleted
    predictions: int
    drift_runs: int


def cleanup(engine: Engine, retention_days: float, *, now: datetime | None = None,
            chunk: int = CHUNK) -> CleanupResult:
    if retention_days <= 0:
        raise ValueError("retention_days must be positive")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    removed = _delete_before(engine, predictions, predictions.c.timestamp, cutoff, chunk)
    # The newest drift run stays whatever its age: replicas keep serving the last summary.
    newest = select(func.max(drift_runs.c.id)).scalar_subquery()
    runs = _delete_before(engine, drift_runs, drift_runs.c.checked_at, cutoff, chunk,
                          keep=drift_runs.c.id != newest)
    return CleanupResult(cutoff.isoformat(), removed, runs)


def _delete_before(engine: Engine, table: Table, column: ColumnElement[datetime],
                   cutoff: datetime, chunk: int,
                   keep: ColumnElement[bool] | None = None) -> int:
    total = 0
    while True:
        ids = select(table.c.id).where(column < cutoff)
        if keep is not None:
            ids = ids.where(keep)
        with engine.begin() as connection:
            # A chunk of ids, then DELETE by id: DELETE ... LIMIT is not portable.
            chosen = connection.execute(ids.limit(chunk)).scalars().all()
            if not chosen:
                return total
            total += connection.execute(delete(table).where(table.c.id.in_(chosen))).rowcount
