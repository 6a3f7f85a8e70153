"""Engine construction: URL normalization, SQLite pragmas (WAL), PostgreSQL via psycopg 3.

An SQLite file URL gets its parent folder created, WAL journal with ``synchronous=NORMAL`` (one
fsync per checkpoint instead of per commit) and a busy timeout so a reader never fails a writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from aggregator.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Prepared statements each SQLite connection keeps (the sqlite3 module's default is 128). The
# saves' INSERTs and IN lists differ by their row and value counts, so most of those 128 are
# one-off statements of 20–150 KB each: 4 MB per connection, three or four connections in the
# service. The few statements every save repeats still fit.
SQLITE_CACHED_STATEMENTS = 32
PG_CONNECT_TIMEOUT_S = 10
# Execution option marking a connection that will write (see _on_begin).
WRITE_OPTION = "aggregator_write"


def normalize_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and pick the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """Build an engine for ``url``; nothing connects until first use."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database URL {url!r} is not valid: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.database, url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S}
        )
    raise StoreError(f"database URL {url!r}: only sqlite and postgresql are supported")


def _sqlite_engine(database: str | None, url: str) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "cached_statements": SQLITE_CACHED_STATEMENTS},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN; take control so writes lock early.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the lock at BEGIN (IMMEDIATE) so two writers queue on busy_timeout
        # instead of failing on lock upgrade; readers stay deferred and never block in WAL.
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
