"""The prediction store: predictions, ground-truth feedback and drift runs in SQLite (the
default, a local file) or PostgreSQL (shared by every replica), through SQLAlchemy 2 with
Alembic migrations. The public API is re-exported here."""

from store.config import DEFAULT_URL, URL_ENV, StoreConfig, resolve_url
from store.feedback import Feedback, FeedbackResult
from store.history import HistoryPage, InvalidCursor
from store.migrate import head_revision, upgrade
from store.performance import VersionPerformance
from store.retention import CleanupResult
from store.store import PredictionStore
from store.writer import PredictionRecord, StoreWriter, WriterStats

__all__ = [
    "DEFAULT_URL", "URL_ENV", "CleanupResult", "Feedback", "FeedbackResult", "HistoryPage",
    "InvalidCursor", "PredictionRecord", "PredictionStore", "StoreConfig", "StoreWriter",
    "VersionPerformance", "WriterStats", "head_revision", "resolve_url", "upgrade",
]
