"""Engines for the store's two databases, tuned so that a database that is down or slow
costs the writer thread time, never the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from store.config import check_url

# Seconds: a PostgreSQL that does not answer fails the attempt (and the writer retries)
# instead of hanging the writer thread on a half-open TCP connection.
CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_MS = 5_000
# numpy scalars as numbers; keys that are not strings as strings, as json.dumps does.
ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_dumps(value: Any) -> str:
    """The JSON columns' serialiser: orjson, about 5x json.dumps. It runs in the writer
    thread, which shares the GIL with the request path."""
    return orjson.dumps(value, option=ORJSON_OPTIONS).decode()


def json_loads(value: Any) -> Any:
    # SQLite gives a bare JSON number back as a number (the JSON column's NUMERIC affinity).
    return value if isinstance(value, int | float) else orjson.loads(value)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = check_url(url)
    kwargs = {"json_serializer": json_dumps, "json_deserializer": json_loads} | kwargs
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "tabular-store"}
    # pre_ping: pooled connections die with a PostgreSQL restart; test them before use.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (history, drift) never block the writer, and each API worker process
    # writes through its own connection; busy_timeout waits for a lock instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()
