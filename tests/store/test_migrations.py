"""Migrations: an empty database and one at the previous revision (rows kept) reach head,
and the migrated schema is what the models declare."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store import Feedback, PredictionStore
from store.engine import make_engine
from store.migrate import current_revision, head_revision, upgrade
from store.models import Base


def _schema_diff(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_empty_database_upgrades_to_head_matching_the_models(store_url: str) -> None:
    assert upgrade(store_url) == head_revision() == "0003"
    engine = make_engine(store_url)
    assert _schema_diff(engine) == []
    assert upgrade(store_url) == "0003"  # again: nothing to do, no error
    engine.dispose()


def test_previous_revision_upgrades_with_rows_preserved(store_url: str) -> None:
    assert upgrade(store_url, "0001") == "0001"
    engine = make_engine(store_url)
    old = sa.Table("predictions", sa.MetaData(), autoload_with=engine)
    assert "actual" not in old.c  # really the previous schema
    rows = [{"request_id": f"old-{i}", "timestamp": datetime(2025, 1, 1, i, tzinfo=UTC),
             "model_name": "m", "model_version": "1", "endpoint": "predict",
             "features": {"x": i}, "answer": {"prediction": "yes"}} for i in range(5)]
    with engine.begin() as connection:
        connection.execute(sa.insert(old), rows)

    assert upgrade(store_url) == "0003"
    assert current_revision(engine) == "0003"
    assert _schema_diff(engine) == []
    store = PredictionStore.from_url(store_url)
    page = store.history(limit=10)
    assert [item["request_id"] for item in page.items] == [f"old-{i}" for i in range(4, -1, -1)]
    assert page.items[0]["features"] == {"x": 4} and page.items[0]["feedback"] is None
    assert page.items[0]["timestamp"] == "2025-01-01T04:00:00+00:00"
    # the new columns work on the old rows
    assert store.feedback([Feedback("old-1", "no")])[0].status == "stored"
    assert store.get("old-1")["feedback"]["actual"] == "no"
    store.close()
    engine.dispose()


def test_concurrent_upgrades_wait_for_each_other(store_url: str) -> None:
    """Every API worker and replica migrates at start-up, possibly at the same moment."""
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(upgrade(store_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and results == ["0003"] * 4
