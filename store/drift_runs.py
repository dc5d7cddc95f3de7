"""What the fleet-wide drift check reads and writes: the newest predictions' features (from
every replica) as its window, and its summary and HTML report, which every replica then
serves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from store.models import drift_runs, predictions


def recent_features(engine: Engine, model_name: str, *, limit: int,
                    model_version: str | None = None) -> pd.DataFrame:
    """Features of the newest `limit` predictions of a model (version), oldest row first,
    one column per feature (a feature excluded from the store is simply absent)."""
    query = select(predictions.c.features).where(predictions.c.model_name == model_name)
    if model_version is not None:
        query = query.where(predictions.c.model_version == model_version)
    query = query.order_by(predictions.c.timestamp.desc(), predictions.c.id.desc())
    with engine.connect() as connection:
        rows = connection.execute(query.limit(limit)).scalars().all()
    return pd.DataFrame(list(reversed(rows)))


def save_drift_run(engine: Engine, summary: dict[str, Any],
                   report_html: str | None = None) -> int:
    """Store one check's summary (serving.drift.DriftSummary.to_dict()) and report; its id."""
    checked_at = summary.get("checked_at")
    when = (datetime.fromtimestamp(checked_at, UTC) if isinstance(checked_at, int | float)
            else datetime.now(UTC))
    with engine.begin() as connection:
        return connection.execute(insert(drift_runs).values(
            checked_at=when, model_name=summary["model_name"],
            model_version=summary["model_version"], window_rows=int(summary["window_rows"]),
            drift_share=float(summary["drift_share"]),
            drift_detected=bool(summary["drift_detected"]), summary=summary,
            report_html=report_html,
        ).returning(drift_runs.c.id)).scalar_one()


def latest_drift_run(engine: Engine, model_name: str, model_version: str | None = None, *,
                     with_report: bool = False) -> dict[str, Any] | None:
    """The newest run's summary (plus `checked_at` ISO and `run_id`), and its HTML report
    under `report_html` if asked (it may be megabytes: only the report endpoint asks)."""
    columns = [drift_runs.c.id, drift_runs.c.checked_at, drift_runs.c.summary]
    if with_report:
        columns.append(drift_runs.c.report_html)
    query = select(*columns).where(drift_runs.c.model_name == model_name)
    if model_version is not None:
        query = query.where(drift_runs.c.model_version == model_version)
    query = query.order_by(drift_runs.c.checked_at.desc(), drift_runs.c.id.desc()).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).mappings().first()
    if row is None:
        return None
    out = {"run_id": row["id"], "checked_at_iso": row["checked_at"].isoformat(),
           "summary": row["summary"]}
    if with_report:
        out["report_html"] = row["report_html"]
    return out
