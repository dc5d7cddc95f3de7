"""Schema migrations, run from code: `upgrade(url)` brings an empty database or one at any
earlier revision to the newest (Alembic revisions in store/migrations/versions/).

    python -m store.migrate [--url URL] [--revision head]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine, make_url

from store.config import check_url, redact, resolve_url
from store.engine import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: the PostgreSQL advisory lock that serialises replicas migrating at once.
ADVISORY_LOCK_ID = 0x7AB5_0001


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> str:
    """Migrate to `revision`; returns the revision the database is at afterwards. Safe to
    call from every replica and worker at start-up: concurrent callers wait for each other."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with _exclusive(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Held to the end of this transaction; PostgreSQL's DDL is transactional, so
                # the next replica sees either nothing or the whole migration.
                connection.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_ID)))
            command.upgrade(alembic_config(connection), revision)
        return current_revision(engine) or ""
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    """For an SQLite file, an exclusive lock on a file beside it (two API workers starting
    together would both try to create the tables); PostgreSQL locks in the transaction."""
    database = make_url(engine.url).database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Migrate the prediction store's schema")
    parser.add_argument("--url", help="default: PREDICTION_STORE_URL, else the SQLite file")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args(argv)
    url = check_url(args.url) if args.url else resolve_url()
    print(f"{redact(url)}: at revision {upgrade(url, args.revision)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
