"""The store: the only home of SQLModel/SQLAlchemy and Alembic.

``open_store(url)`` builds an engine (SQLite in WAL mode by default, PostgreSQL via psycopg 3),
``migrate`` upgrades the schema, and ``Store`` holds every query the pipeline and the web need.
"""

from aggregator.store.engine import make_engine
from aggregator.store.entries import GrowthLimits
from aggregator.store.migrate import current_revision, head_revision, is_known_revision, upgrade
from aggregator.store.repository import Store, open_store

__all__ = [
    "GrowthLimits",
    "Store",
    "current_revision",
    "head_revision",
    "is_known_revision",
    "make_engine",
    "open_store",
    "upgrade",
]
