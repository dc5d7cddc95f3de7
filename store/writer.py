"""Batched writes of predictions, off the request path.

`submit()` turns the record into its row's parameters (the JSON columns through orjson, a
few microseconds) and appends them to an in-memory buffer; it never blocks on the
database and never raises. A background thread takes up to `batch_size` rows at a time
(or whatever is there after `flush_interval_s`) and inserts them in one transaction, 100
rows per statement. It runs little but the driver, which releases the GIL: Python work
there competed with the request path for the GIL (the event loop waits for each switch)
and cost more than the work itself. While the database is down or slow the thread keeps
its batch and retries with exponential backoff; records keep arriving into the buffer,
which holds at most `buffer_size` records in all (the batch in hand included); past
that, new records are dropped and counted. `close()` writes out everything accepted,
giving up after a timeout only if the database stays down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from store.engine import json_dumps
from store.models import predictions

logger = logging.getLogger("tabular.store")
LOG_EVERY_S = 10.0
# Kept in columns of their own; not repeated in each row's answer JSON.
ANSWER_DROPPED_KEYS = frozenset(("model_name", "model_version"))
# One prediction's INSERT parameters, in InsertStatement.COLUMNS order.
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    request_id: str
    timestamp: datetime  # UTC-aware
    model_name: str
    model_version: str
    endpoint: str  # e.g. "predict", "predict_batch", "v2"
    features: Mapping[str, Any]
    answer: Mapping[str, Any]  # {"prediction": ..., "probabilities": {...}, ...}


@dataclass(frozen=True)
class WriterStats:
    submitted: int  # submit() calls
    written: int  # rows the database acknowledged
    dropped: int  # refused at submit(): buffer full, or writer closed
    rejected: int  # not storable (not JSON, a naive time) or refused by the database
    lost: int  # accepted but still unwritten when close() gave up
    pending: int  # accepted, not yet written (the buffer and the batch in hand)
    failed_attempts: int  # batch writes that failed and were retried


class RateLimitedLog:
    """A warning at most every `every_s` seconds, with how many were suppressed between."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._last = -float("inf")
        self._suppressed = 0

    def warning(self, message: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} similar in the last {self.every_s:.0f} s)" \
            if self._suppressed else ""
        self._last, self._suppressed = now, 0
        logger.warning(message + suffix, *args, exc_info=exc_info)


# Rows per INSERT statement: the driver runs one statement per call to the database and,
# in SQLite's case, hands the GIL back and forth around each one; a multi-row VALUES list
# makes that once per 100 rows instead of once per row (7 parameters a row: 700 in all,
# within both databases' limits).
ROWS_PER_STATEMENT = 100


class InsertStatement:
    """INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING for n predictions, in the
    driver's parameter style, and the bind processor of the timestamp column."""

    COLUMNS = ("request_id", "timestamp", "model_name", "model_version", "endpoint",
               "features", "answer")

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        insert = (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(
            predictions).on_conflict_do_nothing(index_elements=["request_id"])
        compiled = insert.values({c: bindparam(c) for c in self.COLUMNS}).compile(
            dialect=dialect)
        sql = str(compiled).split(" RETURNING ")[0]  # PostgreSQL's implicit id: not read
        # SQLite's driver takes ? already; psycopg's %(name)s become %s, in column order.
        if dialect.paramstyle == "pyformat":
            for column in self.COLUMNS:
                sql = sql.replace(f"%({column})s", "%s")
        head, values_and_tail = sql.split(" VALUES ", 1)
        close = values_and_tail.index(")") + 1
        self._head, self._row, self._tail = head, values_and_tail[:close], \
            values_and_tail[close:]
        if self._row.count("?") + self._row.count("%s") != len(self.COLUMNS):
            raise RuntimeError(f"unexpected INSERT for {dialect.name}: {sql}")
        self._sql: dict[int, str] = {}
        processor = predictions.c.timestamp.type.dialect_impl(dialect).bind_processor(dialect)
        self.bind_time: Callable[[datetime], Any] = processor or (lambda value: value)
        if dialect.name == "sqlite":  # the same text, at 40% of the cost (tests/store)
            self.bind_time = sqlite_time

    def sql(self, rows: int) -> str:
        if rows not in self._sql:
            self._sql[rows] = f"{self._head} VALUES {', '.join([self._row] * rows)}{self._tail}"
        return self._sql[rows]


def sqlite_time(value: datetime) -> str:
    """What UTCDateTime binds on SQLite (naive UTC in SQLAlchemy's DATETIME storage format,
    microseconds always written), without its two conversions and format string."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store takes UTC-aware times")
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # less "+00:00"


def _transient(exc: BaseException) -> bool:
    """A failure of the connection or server (retry the batch), not of the rows."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class StoreWriter:
    def __init__(
        self, engine: Engine, *, buffer_size: int = 10_000, batch_size: int = 500,
        flush_interval_s: float = 1.0, exclude_features: Iterable[str] = (),
        on_dropped: Callable[[int], None] | None = None,
        on_written: Callable[[int], None] | None = None,
        retry_initial_s: float = 0.2, retry_max_s: float = 10.0,
    ) -> None:
        self.engine = engine
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.exclude = frozenset(exclude_features)
        self.on_dropped = on_dropped
        self.on_written = on_written
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._buffer: deque[Row] = deque()
        self._in_hand = 0
        self._lock = threading.Lock()  # counters and the buffer bound; held for O(1) only
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._abort = threading.Event()
        self._submitted = self._written = self._dropped = self._rejected = self._lost = 0
        self._failed_attempts = 0
        self._overflow_log = RateLimitedLog()
        self._error_log = RateLimitedLog()
        self._insert = InsertStatement(engine)
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    # -- the caller's side -------------------------------------------------------------

    def submit(self, record: PredictionRecord) -> bool:
        """Queue one record; False if it was dropped (buffer full or writer closed) or
        rejected (not storable)."""
        try:
            row = self._row(record)
        except Exception:  # e.g. features that are not JSON: this record only
            with self._lock:
                self._submitted += 1
                self._rejected += 1
            self._error_log.warning("prediction store: malformed record %r", record,
                                    exc_info=True)
            return False
        with self._lock:
            self._submitted += 1
            full = len(self._buffer) + self._in_hand >= self.buffer_size
            if full or self._closing.is_set():
                self._dropped += 1
                dropped = self._dropped
            else:
                self._buffer.append(row)
                dropped = 0
        if dropped:
            if self.on_dropped is not None:
                self.on_dropped(1)
            self._overflow_log.warning(
                "prediction store: buffer full (%d records waiting for the database); "
                "%d dropped so far", self.buffer_size, dropped)
            return False
        if len(self._buffer) >= self.batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def submit_many(self, records: Iterable[PredictionRecord]) -> int:
        return sum(self.submit(record) for record in records)

    @property
    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(self._submitted, self._written, self._dropped, self._rejected,
                               self._lost, len(self._buffer) + self._in_hand,
                               self._failed_attempts)

    def close(self, timeout: float = 30.0) -> WriterStats:
        """Write out every accepted record; after `timeout` s of a database that stays down,
        give up and count the rest as lost. Idempotent."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort.set()  # stop retrying; a write already running cannot be interrupted
            self._thread.join(min(timeout, 5.0))
        stats = self.stats
        if stats.lost or stats.pending:
            logger.error("prediction store: %d accepted records not written at close",
                         stats.lost + stats.pending)
        return stats

    # -- the writer thread -------------------------------------------------------------

    def _take(self) -> list[Row]:
        with self._lock:
            batch = [self._buffer.popleft()
                     for _ in range(min(self.batch_size, len(self._buffer)))]
            self._in_hand = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            if len(self._buffer) < self.batch_size and not self._closing.is_set():
                self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            batch = self._take()
            if not batch:
                if self._closing.is_set():
                    return
                continue
            self._write_with_retry(batch)
            if self._abort.is_set():
                with self._lock:
                    self._lost += self._in_hand + len(self._buffer)
                    self._buffer.clear()
                    self._in_hand = 0
                return

    def _write_with_retry(self, rows: list[Row]) -> None:
        delay = self.retry_initial_s
        while not self._abort.is_set():
            try:
                self._insert_rows(rows)
                self._done(len(rows), rejected=0)
                return
            except Exception as exc:  # the writer thread must survive anything
                if not _transient(exc):
                    self._write_one_by_one(rows)
                    return
                with self._lock:
                    self._failed_attempts += 1
                self._error_log.warning(
                    "prediction store unavailable (%s); %d records waiting, retrying",
                    type(exc).__name__, self.stats.pending)
            self._abort.wait(delay)
            delay = min(delay * 2, self.retry_max_s)

    def _write_one_by_one(self, rows: list[Row]) -> None:
        """A batch the database refused for its content: keep the good rows, count the bad."""
        rejected = 0
        for row in rows:
            try:
                self._insert_rows([row])
            except (SQLAlchemyError, TypeError, ValueError) as exc:
                rejected += 1
                self._error_log.warning("prediction store refused record %s: %s",
                                        row[0], exc)
        self._done(len(rows) - rejected, rejected=rejected)

    def _insert_rows(self, rows: list[Row]) -> None:
        insert = self._insert
        with self.engine.begin() as connection:
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start:start + ROWS_PER_STATEMENT]
                connection.exec_driver_sql(insert.sql(len(chunk)),
                                           tuple(chain.from_iterable(chunk)))

    def _done(self, written: int, *, rejected: int) -> None:
        with self._lock:
            self._written += written
            self._rejected += rejected
            self._in_hand = max(0, self._in_hand - written - rejected)
        if written and self.on_written is not None:
            self.on_written(written)

    def _row(self, record: PredictionRecord) -> Row:
        """The INSERT's parameters for one record (InsertStatement.COLUMNS), made here and
        not by SQLAlchemy's per-row bind processing: types as the models'
        (store/coltypes.py), the time through the column type's own bind processor, JSON
        through the engine's serialiser."""
        features = record.features  # never changed after submit(): no copy unless filtered
        if self.exclude:
            features = {k: v for k, v in features.items() if k not in self.exclude}
        answer = {k: v for k, v in record.answer.items() if k not in ANSWER_DROPPED_KEYS}
        return (record.request_id, self._insert.bind_time(record.timestamp),
                record.model_name, record.model_version, record.endpoint,
                json_dumps(features), json_dumps(answer))
