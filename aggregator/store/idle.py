"""Whether a poll of due sources would find nothing to do, asked of a SQLite file with the
standard library's driver, so ``aggregator poll`` can say so before it imports SQLAlchemy,
the pipeline and the clustering stage. Any doubt answers False, and the caller then takes
its normal path, which decides."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from aggregator.store.marks import SOURCES_MARK

# The SQLite file URLs this check reads; a URL with options, a memory database or another
# driver goes the normal way.
_SQLITE_FILE = re.compile(r"^sqlite(?:\+pysqlite)?:///([^?#%]+)$")
# SQLAlchemy's SQLite DATETIME text, which the store's times are kept and compared as.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"

# No source due: the store's ``due_sources`` condition.
_DUE = (
    "SELECT 1 FROM sources WHERE state = 'active' "
    "AND (next_check_at IS NULL OR next_check_at <= ?) LIMIT 1"
)
_WAITING = (
    # An entry waiting for the clustering stage (``clustered_at`` NULL).
    "SELECT 1 FROM entries WHERE clustered_at IS NULL LIMIT 1",
    # A subscriber from webhooks.toml that a sync with no file would deactivate.
    "SELECT 1 FROM webhook_subscribers WHERE origin = 'file' AND active LIMIT 1",
)


def sqlite_file(url: str) -> Path | None:
    """The existing SQLite file a plain ``sqlite:///path`` URL names, else None."""
    match = _SQLITE_FILE.match(url)
    if match is None or match.group(1) in {":memory:", ""}:
        return None
    path = Path(match.group(1)).expanduser()
    return path if path.is_file() else None


def nothing_to_do(
    url: str, *, head: str, digest: str, now: datetime, mark: str = SOURCES_MARK
) -> bool:
    """True when the database at ``url`` is a SQLite file in WAL mode at schema ``head``,
    its ``catalog_marks`` row ``mark`` holds ``digest`` (the sources were synced with that
    catalog), no active source is due at ``now``, no entry waits for clustering and no file
    subscriber is active."""
    path = sqlite_file(url)
    if path is None or now.tzinfo is None:
        return False
    moment = now.astimezone(UTC).replace(tzinfo=None).strftime(_SQLITE_DATETIME)
    try:
        # Read-only: this check never creates, migrates or writes a database.
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return False
    try:
        if connection.execute("PRAGMA journal_mode").fetchone() != ("wal",):
            return False
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if revisions != [(head,)]:
            return False
        found = connection.execute(
            "SELECT digest FROM catalog_marks WHERE name = ?", (mark,)
        ).fetchone()
        if found != (digest,):
            return False
        if connection.execute(_DUE, (moment,)).fetchone() is not None:
            return False
        return all(connection.execute(query).fetchone() is None for query in _WAITING)
    except sqlite3.Error:
        return False
    finally:
        connection.close()
