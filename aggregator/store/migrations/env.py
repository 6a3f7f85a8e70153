"""Alembic environment: runs migrations on the engine handed over by ``migrate.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import aggregator.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata

engine = context.config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through `aggregator db upgrade`")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
