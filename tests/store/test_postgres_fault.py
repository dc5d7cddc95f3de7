"""PostgreSQL stopped mid-stream (pg_ctl stop -m fast) and started again: submit() never
blocks or raises, what the buffer held is written after the restart, the rest is counted
as dropped, and nothing is written twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from store import PredictionStore
from store.models import predictions
from tests.postgres import PostgresServer
from tests.store.conftest import record

BUFFER = 2_000


@pytest.fixture
def private_server() -> Iterator[PostgresServer]:
    """Its own server: stopping the session's would break every other test."""
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


def _submit(writer, numbers: range) -> float:
    """Submit each record; the slowest submit() in seconds. None may wait for the
    database (a connection attempt or a retry takes 50 ms to seconds here)."""
    slowest = 0.0
    started_all = time.perf_counter()
    for i in numbers:
        started = time.perf_counter()
        writer.submit(record(i))
        slowest = max(slowest, time.perf_counter() - started)
    assert time.perf_counter() - started_all < 0.5e-3 * len(numbers) + 1
    return slowest


def _wait(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_postgres_stopped_and_restarted_mid_stream(private_server: PostgresServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    url = private_server.create_database()
    store = PredictionStore.from_url(url)
    dropped: list[int] = []
    writer = store.writer(buffer_size=BUFFER, batch_size=200, flush_interval_s=0.05,
                          retry_initial_s=0.05, retry_max_s=0.5, on_dropped=dropped.append)

    # 1. Up: 1,000 records, all written.
    slowest_up = _submit(writer, range(1_000))
    _wait(lambda: writer.stats.written == 1_000)

    # 2. Down: 5,000 more. The buffer holds 2,000; the other 3,000 are dropped, counted.
    private_server.stop("fast")
    with caplog.at_level(logging.WARNING, logger="tabular.store"):
        slowest_down = _submit(writer, range(1_000, 6_000))
        _wait(lambda: writer.stats.failed_attempts >= 2)
    down = writer.stats
    assert down.written == 1_000
    assert (down.pending, down.dropped) == (BUFFER, 3_000)
    assert sum(dropped) == 3_000
    overflow_logs = [r for r in caplog.records if "buffer full" in r.getMessage()]
    assert len(overflow_logs) == 1  # 3,000 drops within 10 s: one warning, not 3,000

    # 3. Up again: the buffered 2,000 are written; new records flow again.
    private_server.start()
    _wait(lambda: writer.stats.pending == 0)
    slowest_after = _submit(writer, range(6_000, 6_500))
    stats = writer.close()

    with store.engine.connect() as connection:
        ids = connection.execute(sa.select(predictions.c.request_id)).scalars().all()
    assert len(ids) == len(set(ids)) == stats.written == 1_000 + BUFFER + 500
    assert (stats.submitted, stats.dropped, stats.lost, stats.rejected) == (6_500, 3_000, 0, 0)
    # What the buffer kept are the records that came first while the database was down.
    assert {f"req-{i}" for i in range(1_000, 1_000 + BUFFER)} <= set(ids)
    for slowest in (slowest_up, slowest_down, slowest_after):
        # Far above scheduling noise on 2 busy cores, far below a blocked call (seconds).
        assert slowest < 0.5
    print(f"\nfault test: submitted {stats.submitted}, written {stats.written}, dropped "
          f"{stats.dropped}, failed write attempts {stats.failed_attempts}; slowest submit "
          f"{max(slowest_up, slowest_down, slowest_after) * 1e3:.2f} ms")
    store.close()
