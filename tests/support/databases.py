"""Fresh databases for tests: an SQLite file per test, or a PostgreSQL database per test.

Migrated ones are cloned from a template migrated once per session (a file copy on SQLite,
``CREATE DATABASE … TEMPLATE`` on PostgreSQL), much faster than migrating each one. Without a
reachable server the PostgreSQL tests skip, except in CI where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from tests.support.shared import in_ci

if TYPE_CHECKING:
    from aggregator.store import Store

PG_ADMIN_URL = os.environ.get("AGGREGATOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


def create_sqlite_template(path: Path) -> Path:
    """A migrated SQLite file that per-test stores are copies of."""
    from aggregator.store import open_store, upgrade

    store = open_store(f"sqlite:///{path}")
    try:
        upgrade(store.engine)
    finally:
        store.close()
    # Closing the last connection checkpoints the WAL into the file; a copy of the file alone
    # would miss whatever a leftover WAL still held.
    for suffix in ("-wal", "-shm"):
        leftover = path.with_name(path.name + suffix)
        assert not leftover.exists() or leftover.stat().st_size == 0, leftover
    return path


def migrated_sqlite(template: Path, path: Path) -> Store:
    """A store on a copy of ``template`` at ``path``: the same schema as a fresh migration."""
    from aggregator.store import open_store

    shutil.copyfile(template, path)
    return open_store(f"sqlite:///{path}")


def drop(name: str) -> None:
    with _admin() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _create(template: str | None) -> str:
    name = f"aggtest_{uuid.uuid4().hex[:12]}"
    with _admin() as connection:
        if template:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


# Used databases waiting for their drop before a test waits for one (each is about 8 MB).
MAX_PENDING_DROPS = 8


class Clones:
    """Per-test databases made one ahead and dropped behind on threads of their own, so a test
    waits for neither ``CREATE DATABASE`` nor ``DROP DATABASE`` (each up to a second or two on
    a busy server). Each database is still used by one test only; a failed drop fails
    ``close``."""

    def __init__(self) -> None:
        # Drops on a thread of their own, so that making the next clone never waits for one.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-clones")
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drops")
        self._ready: dict[str | None, Future[str]] = {}
        self._dropping: list[Future[None]] = []
        self._errors: list[BaseException] = []

    def take(self, template: str | None) -> str:
        ready = self._ready.pop(template, None) or self._executor.submit(_create, template)
        name = ready.result()
        self._ready[template] = self._executor.submit(_create, template)
        return name

    def give_back(self, name: str) -> None:
        self._dropping = [f for f in self._dropping if not f.done()]
        # A run of quick PostgreSQL tests outpaces the drops: bound the databases left behind.
        while len(self._dropping) >= MAX_PENDING_DROPS:
            self._dropping.pop(0).result()
        self._dropping.append(self._dropper.submit(self._drop, name))

    def discard(self, template: str | None) -> None:
        """Drop the database made ahead from ``template`` (before the template itself goes)."""
        ready = self._ready.pop(template, None)
        if ready is None:
            return
        try:
            name = ready.result()
        except Exception as exc:  # reported by close
            self._errors.append(exc)
            return
        self._drop(name)

    def close(self) -> None:
        for template in list(self._ready):
            self.discard(template)
        self._executor.shutdown(wait=True)
        self._dropper.shutdown(wait=True)
        if self._errors:
            raise RuntimeError(
                f"{len(self._errors)} test databases could not be made or "
                f"dropped; the first: {self._errors[0]!r}"
            )

    def _drop(self, name: str) -> None:
        try:
            drop(name)
        except Exception as exc:  # reported by close
            self._errors.append(exc)


_clones: Clones | None = None


@contextmanager
def clones() -> Iterator[Clones]:
    """The session's ``Clones``, which ``fresh_postgres`` uses while it is open."""
    global _clones  # noqa: PLW0603 - one per test process, like the session it serves
    _clones = Clones()
    try:
        yield _clones
    finally:
        current, _clones = _clones, None
        current.close()


@contextmanager
def fresh_postgres(template: str | None) -> Iterator[str]:
    """A database of its own for one test: a clone of ``template``, or empty without one."""
    pool = _clones
    name = pool.take(template) if pool is not None else _create(template)
    try:
        yield database_url(name)
    finally:
        if pool is not None:
            pool.give_back(name)
        else:
            drop(name)
