"""Table models of the store (DESIGN §4): sources, entries, stories, entry categories.

Table models only; API input/output shapes live with the web layer. Datetimes are stored as UTC
and always come back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Column, Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out; SQLite has no time zones, so it stores naive UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _dt(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(sa.JSON, nullable=False))


class Source(SQLModel, table=True):
    __tablename__ = "sources"

    id: str = Field(primary_key=True, max_length=64)
    # ``url`` is what we fetch; it follows confirmed permanent redirects and autodiscovery,
    # while ``configured_url`` remembers the editors' value to notice when they change it.
    url: str = Field(max_length=2048)
    configured_url: str | None = Field(default=None, max_length=2048)
    redirect_url: str | None = Field(default=None, max_length=2048)
    redirect_count: int = Field(default=0)
    site_url: str | None = Field(default=None, max_length=2048)
    title: str | None = Field(default=None, max_length=512)
    feed_title: str | None = Field(default=None, max_length=512)
    language: str | None = Field(default=None, max_length=35)
    categories: list[str] = _json_list()
    # active, paused (disabled by an editor), gone (410 or removed), removed (not in config)
    state: str = Field(default="active", max_length=16, index=True)
    interval_seconds: int = Field(default=1800)
    etag: str | None = Field(default=None, max_length=1024)
    last_modified: str | None = Field(default=None, max_length=128)
    body_hash: str | None = Field(default=None, max_length=64)
    next_check_at: datetime | None = _dt(index=True)
    last_checked_at: datetime | None = _dt()
    last_success_at: datetime | None = _dt()
    last_status: int | None = None
    last_duration_ms: int | None = None
    last_bytes: int | None = None
    last_new_entries: int | None = None
    last_updated_entries: int | None = None
    publish_interval_seconds: float | None = None
    error_count: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=2000)
    last_error_kind: str | None = Field(default=None, max_length=32)
    lease_owner: str | None = Field(default=None, max_length=128)
    leased_until: datetime | None = _dt()
    created_at: datetime | None = _dt()


class Story(SQLModel, table=True):
    __tablename__ = "stories"

    id: int | None = Field(default=None, primary_key=True)
    # Stable public identity: item ids in output feeds derive from it and never change.
    uid: str = Field(max_length=32, unique=True)
    title: str = Field(max_length=1000)
    first_seen_at: datetime = _dt(nullable=False, index=True)
    published_at: datetime = _dt(nullable=False, index=True)
    updated_at: datetime = _dt(nullable=False)
    entry_count: int = Field(default=0)
    # Set when an editor or a bridging entry merges this story into another one.
    merged_into_id: int | None = Field(default=None, foreign_key="stories.id")


class Entry(SQLModel, table=True):
    __tablename__ = "entries"
    __table_args__ = (sa.UniqueConstraint("source_id", "identity_key", name="uq_entry_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="sources.id", max_length=64, index=True)
    identity_key: str = Field(max_length=512)
    guid: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048, index=True)
    link: str | None = Field(default=None, max_length=2048)
    title: str = Field(max_length=1000)
    summary_html: str = Field(default="", sa_column=Column(sa.Text, nullable=False))
    content_html: str = Field(default="", sa_column=Column(sa.Text, nullable=False))
    text: str = Field(default="", sa_column=Column(sa.Text, nullable=False))
    language: str | None = Field(default=None, max_length=35)
    author: str | None = Field(default=None, max_length=512)
    tags: list[str] = _json_list()
    enclosures: list[dict[str, Any]] = _json_list()
    content_hash: str = Field(max_length=64, index=True)
    published_at: datetime = _dt(nullable=False, index=True)
    updated_at: datetime = _dt(nullable=False)
    first_seen_at: datetime = _dt(nullable=False)
    fetched_at: datetime = _dt(nullable=False)
    story_id: int | None = Field(default=None, foreign_key="stories.id", index=True)
    # Why the entry is in its story: "new", "url", "content_hash" (later: embeddings, editor).
    story_signal: str | None = Field(default=None, max_length=32)
    story_score: float | None = None
    story_matched_entry_id: int | None = None


class EntryCategory(SQLModel, table=True):
    __tablename__ = "entry_categories"

    entry_id: int = Field(foreign_key="entries.id", primary_key=True)
    category_id: str = Field(primary_key=True, max_length=64, index=True)
    score: float = 1.0
    reason: str = Field(max_length=500)
