"""Alembic environment: runs migrations on the engine handed over by ``migrate.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import aggregator.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from aggregator.store.search import is_search_object

target_metadata = SQLModel.metadata

engine = context.config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through `aggregator db upgrade`")

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild a table (copy, drop, rename); with foreign keys enforced,
        # dropping one that other rows point at fails on a store with data. The pragma is a
        # no-op inside a transaction, hence the raw connection before anything begins.
        connection.connection.cursor().execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        # The search index's FTS5 tables and expression index are not in the models.
        include_name=is_search_object,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left dangling references: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            connection.connection.cursor().execute("PRAGMA foreign_keys=ON")
