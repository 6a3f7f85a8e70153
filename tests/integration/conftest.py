"""Fixtures shared by the integration tests: the editors' app over HTTP, and a second SQLite
store beside the parametrized one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.demo.feedserver import FeedServer
from aggregator.store import Store
from tests.support import databases
from tests.support.browser import Workbench, workbench
from tests.support.webserver import serve_app


@pytest.fixture
def bench(sqlite_store: Store, feed_server: FeedServer, tmp_path: Path) -> Iterator[Workbench]:
    """The newsroom polled into a fresh SQLite store, with the editors' app over it."""
    with workbench(sqlite_store, feed_server, tmp_path / "config") as bench:
        yield bench


@pytest.fixture
def base(bench: Workbench) -> Iterator[str]:
    """The base URL of ``bench``'s app, served on loopback."""
    with serve_app(bench.app) as base:
        yield base


@pytest.fixture
def other(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    """A second SQLite store beside the parametrized one."""
    store = databases.migrated_sqlite(sqlite_template, tmp_path / "other.db")
    yield store
    store.close()
