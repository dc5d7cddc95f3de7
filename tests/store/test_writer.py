"""The writer: batches, flushes on close, keeps features out, never blocks or raises into
the caller when the database is unreachable, and counts what it had to drop."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from store import PredictionStore
from store.engine import make_engine
from store.models import predictions
from store.writer import ROWS_PER_STATEMENT, sqlite_time
from tests.store.conftest import record, write_all


def _count(store: PredictionStore) -> int:
    with store.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(predictions)).scalar()


def test_batches_and_flush_on_close(store: PredictionStore) -> None:
    batches: list[int] = []
    # A flush interval longer than the test: only full batches and close() write.
    writer = store.writer(batch_size=50, flush_interval_s=60, on_written=batches.append)
    for i in range(120):
        assert writer.submit(record(i))
    deadline = time.monotonic() + 10
    while sum(batches) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batches == [50, 50]  # the 20 left wait for a full batch or the interval
    assert _count(store) == 100
    stats = writer.close()
    assert batches == [50, 50, 20] and _count(store) == 120
    assert (stats.submitted, stats.written, stats.dropped, stats.pending) == (120, 120, 0, 0)
    assert not writer.submit(record(999))  # after close: refused and counted
    assert writer.stats.dropped == 1


def test_partial_batch_written_after_the_flush_interval(store: PredictionStore) -> None:
    writer = store.writer(batch_size=500, flush_interval_s=0.1)
    writer.submit(record(1))
    deadline = time.monotonic() + 10
    while writer.stats.written < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _count(store) == 1
    writer.close()


def test_excluded_features_never_reach_the_database(store: PredictionStore) -> None:
    write_all(store, [record(1, features={"x": 1.0, "ssn": "123", "c": "a"})],
              exclude_features=["ssn"])
    stored = store.get("req-1")
    assert stored["features"] == {"x": 1.0, "c": "a"}
    assert stored["answer"] == {"prediction": "yes", "probabilities": {"no": 0.2, "yes": 0.8}}


def test_a_repeated_request_id_is_stored_once(store: PredictionStore) -> None:
    writer = store.writer(flush_interval_s=0.05)
    writer.submit(record(1))
    writer.submit(record(1, features={"x": -1.0}))
    writer.submit(record(2))
    stats = writer.close()
    assert stats.rejected == 0 and _count(store) == 2
    assert store.get("req-1")["features"]["x"] == 1.0  # the first one stays


def test_a_batch_over_several_statements_keeps_every_row_and_the_first_of_a_repeat(
        store: PredictionStore) -> None:
    # 250 rows in one batch: INSERTs of ROWS_PER_STATEMENT rows and a shorter last one; a
    # repeated id inside one statement is stored once, as across batches.
    records = [record(i) for i in range(ROWS_PER_STATEMENT * 2 + 50)]
    records.insert(10, record(5, features={"x": -5.0}))
    writer = store.writer(batch_size=len(records), flush_interval_s=60)
    for item in records:
        assert writer.submit(item)
    assert writer.close().rejected == 0
    assert _count(store) == ROWS_PER_STATEMENT * 2 + 50
    assert store.get("req-5")["features"]["x"] == 5.0
    assert store.get("req-249")["features"]["x"] == 249.0
    assert store.get("req-100")["timestamp"] == records[101].timestamp.isoformat()


def test_a_bad_record_is_rejected_alone(store: PredictionStore) -> None:
    writer = store.writer(flush_interval_s=0.05)
    writer.submit(record(1))
    writer.submit(record(2, at=datetime(2025, 1, 1)))  # naive time: refused by the type
    writer.submit(record(3, features={"x": object()}))  # not JSON
    writer.submit(record(4))
    stats = writer.close()
    assert (stats.written, stats.rejected) == (2, 2)
    assert store.get("req-1") and store.get("req-4") and not store.get("req-2")


def test_unreachable_database_never_blocks_and_overflow_is_counted(tmp_path) -> None:
    # A PostgreSQL URL on a port nothing listens on: every write attempt fails at once.
    store = PredictionStore(sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:9/none", pool_pre_ping=True,
        connect_args={"connect_timeout": 2}))
    dropped: list[int] = []
    writer = store.writer(buffer_size=100, batch_size=10, flush_interval_s=0.01,
                          retry_initial_s=0.01, retry_max_s=0.05, on_dropped=dropped.append)
    slowest = 0.0
    started_all = time.perf_counter()
    for i in range(1000):
        started = time.perf_counter()
        writer.submit(record(i))
        slowest = max(slowest, time.perf_counter() - started)
    # Bounds far below one connection attempt (up to 2 s here) yet far above scheduling
    # noise on 2 busy cores: a submit that waited for the database would take seconds.
    assert slowest < 0.5 and time.perf_counter() - started_all < 1.0
    stats = writer.stats
    assert (stats.submitted, stats.pending, stats.dropped) == (1000, 100, 900)
    assert sum(dropped) == 900
    deadline = time.monotonic() + 10
    while writer.stats.failed_attempts < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    stats = writer.close(timeout=0.5)
    assert time.monotonic() - started < 3
    assert (stats.written, stats.lost, stats.pending) == (0, 100, 0)


def test_a_slow_database_slows_only_the_writer(store: PredictionStore) -> None:
    def slow(*_args) -> None:
        time.sleep(0.1)  # every statement of the writer's engine takes 0.1 s more

    sa.event.listen(store.engine, "before_cursor_execute", slow)
    writer = store.writer(batch_size=100, flush_interval_s=0.01)
    started = time.perf_counter()
    for i in range(1000):
        writer.submit(record(i))
    assert time.perf_counter() - started < 0.5  # ten slow batches take over 1 s
    stats = writer.close()
    sa.event.remove(store.engine, "before_cursor_execute", slow)
    assert (stats.written, stats.dropped) == (1000, 0) and _count(store) == 1000


def test_the_writers_sqlite_time_is_what_the_column_type_binds() -> None:
    engine = make_engine("sqlite:///:memory:")
    bind = predictions.c.timestamp.type.dialect_impl(engine.dialect).bind_processor(
        engine.dialect)
    ahead = timezone(timedelta(hours=5, minutes=30))
    for value in (datetime(2026, 11, 23, 7, 0, 0, tzinfo=UTC),  # no microseconds
                  datetime(2026, 11, 23, 7, 0, 0, 123456, tzinfo=UTC),
                  datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=ahead),
                  datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=-8)))):
        assert sqlite_time(value) == bind(value), value  # UTCDateTime's conversion included
    with pytest.raises(ValueError, match="naive"):
        sqlite_time(datetime(2026, 1, 1))
