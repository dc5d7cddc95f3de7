"""PredictionStore: one engine and everything the service, the drift job and the cleanup
job do with the store.

    store = PredictionStore.from_url(resolve_url(config.url))   # migrates to head
    writer = store.writer(buffer_size=..., exclude_features=[...])
    writer.submit(PredictionRecord(...))     # request path: O(1), never blocks or raises
    store.history(since=..., limit=100); store.get("req-1")
    store.feedback([Feedback("req-1", "malignant")]); store.performance("model-name")
    writer.close()                            # shutdown: flush
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from store import drift_runs, retention
from store.engine import make_engine
from store.feedback import Feedback, FeedbackResult, record_feedback
from store.history import HistoryPage, get_prediction
from store.history import history as read_history
from store.performance import VersionPerformance
from store.performance import performance as online_performance
from store.writer import StoreWriter


class PredictionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, *, migrate_schema: bool = True) -> PredictionStore:
        """An engine for `url` (sqlite:///..., postgresql+psycopg://...); by default the
        schema is upgraded to the newest revision first (safe from many replicas at once).
        A database that is down at this point raises: start-up decides what to do."""
        store = cls(make_engine(url))
        if migrate_schema:
            # Imported here: `python -m store.migrate` must not find itself already imported.
            from store.migrate import upgrade

            upgrade(store.engine)
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def writer(self, **options: Any) -> StoreWriter:
        """A background writer (see StoreWriter for the options)."""
        return StoreWriter(self.engine, **options)

    def history(self, **filters: Any) -> HistoryPage:
        """Keyword filters: model_name, model_version, since, until, limit, cursor."""
        return read_history(self.engine, **filters)

    def get(self, request_id: str) -> dict[str, Any] | None:
        return get_prediction(self.engine, request_id)

    def feedback(self, items: Sequence[Feedback],
                 received_at: datetime | None = None) -> list[FeedbackResult]:
        return record_feedback(self.engine, items, received_at)

    def performance(self, model_name: str, **options: Any) -> list[VersionPerformance]:
        """Options: window, model_version, classes."""
        return online_performance(self.engine, model_name, **options)

    def cleanup(self, retention_days: float, **options: Any) -> retention.CleanupResult:
        return retention.cleanup(self.engine, retention_days, **options)

    def recent_features(self, model_name: str, *, limit: int,
                        model_version: str | None = None) -> pd.DataFrame:
        return drift_runs.recent_features(self.engine, model_name, limit=limit,
                                          model_version=model_version)

    def save_drift_run(self, summary: dict[str, Any], report_html: str | None = None) -> int:
        return drift_runs.save_drift_run(self.engine, summary, report_html)

    def latest_drift_run(self, model_name: str, model_version: str | None = None, *,
                         with_report: bool = False) -> dict[str, Any] | None:
        return drift_runs.latest_drift_run(self.engine, model_name, model_version,
                                           with_report=with_report)

    def close(self) -> None:
        self.engine.dispose()
