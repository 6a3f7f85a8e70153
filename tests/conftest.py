"""Shared fixtures: fresh databases on SQLite and PostgreSQL, a loopback feed server, and the
clustering models loaded once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aggregator.store import Store, open_store, upgrade

if TYPE_CHECKING:
    from aggregator.clustering import Models
    from aggregator.demo.feedserver import FeedServer
from tests.support import databases


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    databases.require_postgres()
    name = databases.create_template()
    yield name
    databases.drop(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An EMPTY database (no schema) on each engine; each test gets its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    databases.require_postgres()
    with databases.fresh_postgres(template=None) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each engine; PostgreSQL ones are cloned from a migrated template."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        upgrade(store.engine)
        yield store
        store.close()
        return
    template = request.getfixturevalue("pg_template")
    with databases.fresh_postgres(template=template) as url:
        store = open_store(url)
        yield store
        store.close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    from aggregator.demo.feedserver import FeedServer

    with FeedServer() as server:
        yield server


@pytest.fixture(scope="session")
def models() -> Models:
    """The real language detector and embedding model, shared by every test (loaded on first
    use: about two seconds)."""
    from aggregator.clustering import Models

    return Models()
