"""Fresh databases for tests: an SQLite file per test, or a PostgreSQL database per test.

PostgreSQL databases are cloned from a template migrated once per session, which is much faster
than migrating each one. Without a reachable server the tests skip, except in CI where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from tests.support.shared import in_ci

PG_ADMIN_URL = os.environ.get(
    "AGGREGATOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def require_postgres() -> None:
    try:
        with _admin() as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def database_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


def create_template() -> str:
    """A migrated database that per-test databases are cloned from."""
    from aggregator.store import open_store, upgrade

    name = f"aggtpl_{uuid.uuid4().hex[:12]}"
    with _admin() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    store = open_store(database_url(name))
    try:
        upgrade(store.engine)
    finally:
        store.close()
    return name


def drop(name: str) -> None:
    with _admin() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def fresh_postgres(template: str | None) -> Iterator[str]:
    name = f"aggtest_{uuid.uuid4().hex[:12]}"
    with _admin() as connection:
        if template:
            connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        else:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(name)
    finally:
        drop(name)
