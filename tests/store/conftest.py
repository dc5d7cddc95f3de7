"""Fixtures for the prediction store's tests: every store test runs against an SQLite file
and (marked slow, it needs a server) a real PostgreSQL from tests/postgres.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store import PredictionRecord, PredictionStore
from tests.postgres import postgres_server, postgres_url  # noqa: F401  (fixtures)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[PredictionStore]:
    opened = PredictionStore.from_url(store_url)
    yield opened
    opened.close()


def record(i: int, *, at: datetime | None = None, version: str = "1",
           model: str = "m", features: dict[str, Any] | None = None,
           answer: dict[str, Any] | None = None) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"req-{i}", timestamp=at or T0 + timedelta(seconds=i), model_name=model,
        model_version=version, endpoint="predict",
        features=features if features is not None else {"x": float(i), "c": "a"},
        answer=answer if answer is not None else {"prediction": "yes",
                                                  "probabilities": {"no": 0.2, "yes": 0.8}})


def write_all(store: PredictionStore, records: Sequence[PredictionRecord],
              **options: Any) -> None:
    """Through the real writer; every record must be written."""
    writer = store.writer(**({"flush_interval_s": 0.05} | options))
    for item in records:
        assert writer.submit(item)
    stats = writer.close()
    assert (stats.written, stats.dropped, stats.rejected, stats.pending) == \
        (len(records), 0, 0, 0)
