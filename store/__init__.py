"""The prediction store: predictions, ground-truth feedback and drift runs in SQLite (the
default, a local file) or PostgreSQL (shared by every replica), through SQLAlchemy 2 with
Alembic migrations. The public API is re-exported here; migrations: store.migrate
(`upgrade(url)`, `python -m store.migrate`), kept out of this module so that the command
runs without a double import."""

from store.config import DEFAULT_URL, URL_ENV, StoreConfig, resolve_url
from store.feedback import Feedback, FeedbackResult
from store.history import HistoryPage, InvalidCursor
from store.performance import VersionPerformance
from store.retention import CleanupResult
from store.store import PredictionStore
from store.writer import PredictionRecord, StoreWriter, WriterStats

__all__ = [
    "DEFAULT_URL", "URL_ENV", "CleanupResult", "Feedback", "FeedbackResult", "HistoryPage",
    "InvalidCursor", "PredictionRecord", "PredictionStore", "StoreConfig", "StoreWriter",
    "VersionPerformance", "WriterStats", "resolve_url",
]
