"""The store: the only home of SQLModel/SQLAlchemy and Alembic.

``open_store(url)`` builds an engine (SQLite in WAL mode by default, PostgreSQL via psycopg 3),
``migrate`` upgrades the schema, and ``Store`` holds every query the pipeline and the web need.
The names below load on first use, so ``store.idle`` answers an idle poll without SQLAlchemy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.store.engine import make_engine
    from aggregator.store.entries import GrowthLimits
    from aggregator.store.migrate import (
        current_revision,
        head_revision,
        is_known_revision,
        upgrade,
    )
    from aggregator.store.repository import PollSave, Store, open_store

__all__ = [
    "GrowthLimits",
    "PollSave",
    "Store",
    "current_revision",
    "head_revision",
    "is_known_revision",
    "make_engine",
    "open_store",
    "upgrade",
]

_HOMES = {
    "make_engine": "aggregator.store.engine",
    "GrowthLimits": "aggregator.store.entries",
    "current_revision": "aggregator.store.migrate",
    "head_revision": "aggregator.store.migrate",
    "is_known_revision": "aggregator.store.migrate",
    "upgrade": "aggregator.store.migrate",
    "PollSave": "aggregator.store.repository",
    "Store": "aggregator.store.repository",
    "open_store": "aggregator.store.repository",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value
