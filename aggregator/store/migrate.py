"""Schema migrations with Alembic, driven from code (no alembic.ini on the user's side).

``upgrade`` brings a database to head; ``current_revision``/``head_revision`` let entry points
refuse a database newer than the code. Checking a database at head costs one query and no
Alembic import (half a second of a command's start-up): Alembic loads only to upgrade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StoreError
from aggregator.store.marks import MIGRATIONS_DIR, declared_head, declared_revisions

if TYPE_CHECKING:
    from alembic.config import Config

# The files' folder and declared chain live in ``marks`` (no SQLAlchemy) and are read here too.
__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "current_revision",
    "declared_revisions",
    "head_revision",
    "is_known_revision",
    "upgrade",
]

# Alembic's own table (``env.py`` keeps its default name) and its one query.
VERSION_TABLE = "alembic_version"
_READ_REVISION = text("SELECT version_num FROM alembic_version")


def _config(engine: Engine | None = None) -> Config:
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = declared_head()
    if head is not None:
        return head
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise StoreError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, None for an empty database; one query once the table exists."""
    try:
        with engine.connect() as connection:
            try:
                rows = connection.execute(_READ_REVISION).all()
            except SQLAlchemyError:
                connection.rollback()
                if inspect(connection).has_table(VERSION_TABLE):
                    raise
                return None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the schema revision: {exc}") from exc
    if len(rows) > 1:
        raise StoreError(
            f"the database has {len(rows)} schema revisions (branches); this aggregator expects one"
        )
    return str(rows[0][0]) if rows else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade to ``revision``; refuses a database whose revision this code does not know."""
    current = current_revision(engine)
    if current is not None and not is_known_revision(current):
        raise StoreError(
            f"the database is at schema revision {current}, which this version of the "
            "aggregator does not know (it is newer); upgrade the aggregator"
        )
    from alembic import command  # noqa: PLC0415

    try:
        command.upgrade(_config(engine), revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"migration failed: {exc}") from exc


def is_known_revision(revision: str) -> bool:
    chain = declared_revisions()
    if chain is not None:
        return revision in chain
    from alembic.script import ScriptDirectory  # noqa: PLC0415
    from alembic.util import CommandError  # noqa: PLC0415

    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except CommandError:
        return False
