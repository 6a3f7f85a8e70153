"""Table models of the store (DESIGN §4): sources, entries, stories, entry categories, and the
clustering stage's own tables (entry features, language centering, editors' overrides), and
what workers share (retention tombstones, host holds, output change marks).

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

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # On SQLite, one step instead of two (``process_bind_param``, then SQLite DATETIME's
        # own processor): a poll binds about seven per entry. The text is DATETIME's storage
        # format, so what is stored does not change.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r} given to the store; use aware UTC")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return (
                f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
                f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
            )

        return process


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
    # From the editors' ``public_only``: fetch only from public addresses (API/admin sources).
    public_only: bool = Field(default=False)
    # From the editors' ``full_text``: the full-text stage fetches the article pages.
    full_text: bool = Field(default=False)
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
    # Entries of the last poll with a new id but content the source already had.
    last_repeated_entries: int | None = None
    # What the last stored poll showed about the feed's growth (rotating ids, caps reached);
    # kept through not-modified answers, replaced by the next poll that stores.
    warning: str | None = Field(default=None, max_length=1000)
    publish_interval_seconds: float | None = None
    # The feed's <ttl> / sy:updatePeriod: applied after 304s and unchanged bodies too.
    feed_ttl_seconds: int | None = None
    error_count: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=2000)
    last_error_kind: str | None = Field(default=None, max_length=32)
    lease_owner: str | None = Field(default=None, max_length=128)
    leased_until: datetime | None = _dt(index=True)
    created_at: datetime | None = _dt()


# Stories an output may list (live and settled), newest first: the outputs walk it for a
# category's newest stories (``Store.category_stories``). The same text in migration 0017.
LISTED_STORIES = "coalesce(merged_into_id, 0) = 0 AND settled_at IS NOT NULL"
# Stories merged away (few), by when: the webhook detector asks for those merged since a
# moment at every look (``WebhookStore.merged_since``). The same text in migration 0018.
MERGED_STORIES = "merged_at IS NOT NULL"


class Story(SQLModel, table=True):
    __tablename__ = "stories"
    __table_args__ = (
        sa.Index(
            "ix_stories_listed",
            "published_at",
            sqlite_where=sa.text(LISTED_STORIES),
            postgresql_where=sa.text(LISTED_STORIES),
        ),
        sa.Index(
            "ix_stories_merged_at",
            "merged_at",
            sqlite_where=sa.text(MERGED_STORIES),
            postgresql_where=sa.text(MERGED_STORIES),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Stable public identity: item ids in output feeds derive from it and never change.
    uid: str = Field(max_length=32, unique=True)
    title: str = Field(max_length=1000)
    first_seen_at: datetime = _dt(nullable=False, index=True)
    published_at: datetime = _dt(nullable=False, index=True)
    updated_at: datetime = _dt(nullable=False)
    entry_count: int = Field(default=0)
    # Set when an editor or a bridging entry merges this story into another one.
    merged_into_id: int | None = Field(default=None, foreign_key="stories.id", index=True)
    # "cluster" or "editor": re-clustering undoes only the machine's merges.
    merged_by: str | None = Field(default=None, max_length=16)
    merged_at: datetime | None = _dt()
    # When its first clustering batch (or an editor's split) fixed its uid; until then the
    # story is the write path's provisional grouping and no output shows it.
    settled_at: datetime | None = _dt()


# Entries the clustering stage has not handled yet, by time (``clustering.pending_entries``):
# each of its batches reads the first few hundred through this index instead of sorting every
# pending entry, which made a first poll's stage quadratic in the entries stored. Only the
# time: the stage's tie-breakers (source, identity key, id) are sorted among equal times only,
# and a short key keeps the index cheap to write while a first poll leaves everything pending.
# ``clustered_at`` leads so SQLite prefers it to ix_entries_clustered_at and both databases
# read it in order. The same text in migration 0020.
PENDING_ENTRIES = "clustered_at IS NULL"
PENDING_ORDER = ("clustered_at", "published_at", "source_id", "identity_key", "id")


class Entry(SQLModel, table=True):
    __tablename__ = "entries"
    __table_args__ = (
        sa.UniqueConstraint("source_id", "identity_key", name="uq_entry_identity"),
        sa.Index(
            "ix_entries_pending",
            *PENDING_ORDER[:2],
            sqlite_where=sa.text(PENDING_ENTRIES),
            postgresql_where=sa.text(PENDING_ENTRIES),
        ),
    )

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
    # The entry's picture (types.MediaImage as a JSON object); NULL when it has none.
    image: dict[str, Any] | None = Field(default=None, sa_column=Column(sa.JSON, nullable=True))
    content_hash: str = Field(max_length=64, index=True)
    published_at: datetime = _dt(nullable=False, index=True)
    updated_at: datetime = _dt(nullable=False)
    # Where published_at came from: feed, feed-localized, first-seen or backlog
    # (NormalizedEntry.date_source); NULL for entries stored before it was recorded.
    date_source: str | None = Field(default=None, max_length=16)
    first_seen_at: datetime = _dt(nullable=False)
    # Indexed for the webhook detector, which looks for entries rewritten since its last look.
    fetched_at: datetime = _dt(nullable=False, index=True)
    story_id: int | None = Field(default=None, foreign_key="stories.id", index=True)
    # Why the entry is in its story: "new", "url", "content_hash" when written; the clustering
    # stage may replace it with the signal that carried its decision ("embedding", "minhash",
    # "editor_pin"...).
    story_signal: str | None = Field(default=None, max_length=32)
    story_score: float | None = None
    story_matched_entry_id: int | None = None
    # The story the entry was written into; re-clustering starts again from it.
    origin_story_id: int | None = Field(default=None, foreign_key="stories.id", index=True)
    # The clustering stage's decision: new, join, merge or kept, the score's parts as JSON,
    # and when. ``clustered_at`` NULL marks an entry the stage has not handled yet.
    story_decision: str | None = Field(default=None, max_length=16)
    story_evidence: dict[str, Any] | None = Field(
        default=None, sa_column=Column(sa.JSON, nullable=True)
    )
    story_decided_at: datetime | None = _dt()
    clustered_at: datetime | None = _dt(index=True)


class EntryFullText(SQLModel, table=True):
    """The article page of an entry whose source has ``full_text = true`` (``polling.fulltext``):
    the last check's time and outcome (``FullTextOutcome``), the page's validators and body
    hash so an unchanged page is neither fetched again nor re-extracted, and the sanitized
    main text. ``entry_hash`` is the entry's ``content_hash`` when checked: a changed entry is
    checked again."""

    __tablename__ = "entry_full_texts"

    entry_id: int = Field(foreign_key="entries.id", primary_key=True)
    source_id: str = Field(max_length=64, index=True)
    url: str = Field(max_length=2048)
    outcome: str = Field(max_length=16)
    error_kind: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, max_length=2000)
    content_html: str = Field(default="", sa_column=Column(sa.Text, nullable=False))
    text: str = Field(default="", sa_column=Column(sa.Text, nullable=False))
    etag: str | None = Field(default=None, max_length=1024)
    last_modified: str | None = Field(default=None, max_length=128)
    body_hash: str | None = Field(default=None, max_length=64)
    entry_hash: str = Field(max_length=64)
    # Failed checks in a row: the stage retries a failure later, and gives up after a few.
    failures: int = Field(default=0)
    checked_at: datetime = _dt(nullable=False)
    extracted_at: datetime | None = _dt()


class EntryCategory(SQLModel, table=True):
    __tablename__ = "entry_categories"

    entry_id: int = Field(foreign_key="entries.id", primary_key=True)
    category_id: str = Field(primary_key=True, max_length=64, index=True)
    score: float = 1.0
    reason: str = Field(max_length=500)
    origin: str = Field(default="rules", max_length=16)


class EntryFeatureRecord(SQLModel, table=True):
    """What the clustering stage computed for one entry (``dedup.features.EntryFeatures``)."""

    __tablename__ = "entry_features"

    entry_id: int = Field(foreign_key="entries.id", primary_key=True)
    lang: str | None = Field(default=None, max_length=35)
    title_lang: str | None = Field(default=None, max_length=35)
    body_lang: str | None = Field(default=None, max_length=35)
    lang_confidence: float = 0.0
    # The entry's time as the clusterer used it; the window query ranges over it.
    published: datetime | None = _dt(index=True)
    # float16, 768 bytes for 384 dimensions; MinHash 64 × uint32.
    embedding: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    minhash: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    evidence: str = Field(sa_column=Column(sa.Text, nullable=False))
    # Embeddings of different models are not comparable; the name tells them apart.
    model: str = Field(max_length=64)
    computed_at: datetime = _dt(nullable=False)


class LanguageCenter(SQLModel, table=True):
    """Running sum of embeddings per language (``LanguageCentering.to_state``)."""

    __tablename__ = "language_centering"

    lang: str = Field(primary_key=True, max_length=35)
    count: int = 0
    vector_sum: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    updated_at: datetime = _dt(nullable=False)


class ClusteringState(SQLModel, table=True):
    """One row: a counter bumped by every committed clustering batch, override or reset, so a
    process knows whether the clusterer it keeps in memory still matches the store."""

    __tablename__ = "clustering_state"

    id: int = Field(primary_key=True)
    version: int = 0
    updated_at: datetime | None = _dt()


class StoryOverride(SQLModel, table=True):
    """An editor's correction: kept after it is undone (``undone_at``), for the record.

    kinds: ``merge`` (story → other story), ``split`` and ``pin`` (entry → story),
    ``must_link`` and ``cannot_link`` (entry, other entry), ``hide`` (story, in ``category``
    or everywhere when it is NULL), ``category_pin`` (story listed first in ``category``).
    """

    __tablename__ = "story_overrides"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    entry_id: int | None = Field(default=None, foreign_key="entries.id")
    other_entry_id: int | None = Field(default=None, foreign_key="entries.id")
    story_id: int | None = Field(default=None, foreign_key="stories.id")
    other_story_id: int | None = Field(default=None, foreign_key="stories.id")
    # Scopes a hide or a category pin to one category; NULL hides everywhere.
    category: str | None = Field(default=None, max_length=64, index=True)
    # What the correction changed (a merge's moved entries, a split's former story), so undo
    # restores it at once instead of waiting for a re-clustering.
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(sa.JSON, nullable=True))
    note: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=128)
    created_at: datetime = _dt(nullable=False)
    undone_at: datetime | None = _dt()
    undone_by: str | None = Field(default=None, max_length=128)


class Tombstone(SQLModel, table=True):
    """An entry removed by retention: while it is here, a feed still listing the entry does not
    bring it back. ``seen_at`` is the last time a feed still listed it; tombstones expire a
    while after that (``store.retention``)."""

    __tablename__ = "tombstones"

    source_id: str = Field(primary_key=True, max_length=64)
    identity_key: str = Field(primary_key=True, max_length=512)
    pruned_at: datetime = _dt(nullable=False, index=True)
    seen_at: datetime | None = _dt()


class HostHold(SQLModel, table=True):
    """A host that asked us to wait (Retry-After): no worker claims its sources before
    ``not_before`` (``store.leases``)."""

    __tablename__ = "host_holds"

    host: str = Field(primary_key=True, max_length=255)
    not_before: datetime = _dt(nullable=False)
    reason: str | None = Field(default=None, max_length=500)


class OutputMark(SQLModel, table=True):
    """The digest of a category's outputs as last announced (WebSub), so that of many workers
    seeing the same change only the first announces it (``store.leases``)."""

    __tablename__ = "output_marks"

    category_id: str = Field(primary_key=True, max_length=64)
    digest: str = Field(max_length=64)
    changed_at: datetime = _dt(nullable=False)


class EditorAccount(SQLModel, table=True):
    """An editor's own access: a role and a token kept only as a scrypt hash. ``token_key``
    is the token's public prefix, so a request finds its row without trying every hash; a
    rotation replaces both, a revocation sets ``revoked_at`` (the row stays, for the record)."""

    __tablename__ = "editors"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    token_key: str = Field(max_length=32, unique=True)
    token_hash: str = Field(max_length=255)
    created_at: datetime = _dt(nullable=False)
    created_by: str = Field(max_length=128)
    rotated_at: datetime | None = _dt()
    revoked_at: datetime | None = _dt()
    revoked_by: str | None = Field(default=None, max_length=128)


class AuditRecord(SQLModel, table=True):
    """One editor's edit of a source, a category's rules, a story correction or an account:
    who, when, what (``action`` on ``target``) and the change itself (``detail``)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _dt(nullable=False, index=True)
    editor: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    action: str = Field(max_length=32)
    target: str = Field(max_length=200)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(sa.JSON, nullable=True))


class SigningKey(SQLModel, table=True):
    """The random key admin sessions are signed with when no shared admin token is set, kept
    here so every worker sharing the database accepts the others' sessions."""

    __tablename__ = "signing_keys"

    name: str = Field(primary_key=True, max_length=32)
    secret: str = Field(max_length=128)


class WebhookSubscriber(SQLModel, table=True):
    """A downstream site that receives webhook events. Those from ``webhooks.toml`` (origin
    ``file``) are synced from it; those added through the API or admin have origin ``api``.
    ``secret_env`` names the environment variable holding the secret instead of ``secret``.
    Empty filters take everything; a removed subscriber stays for its delivery log."""

    __tablename__ = "webhook_subscribers"

    id: str = Field(primary_key=True, max_length=64)
    url: str = Field(max_length=2048)
    secret: str | None = Field(default=None, max_length=512)
    secret_env: str | None = Field(default=None, max_length=128)
    categories: list[str] = _json_list()
    languages: list[str] = _json_list()
    events: list[str] = _json_list()
    origin: str = Field(default="api", max_length=16)
    active: bool = Field(default=True)
    created_at: datetime = _dt(nullable=False)


class WebhookEvent(SQLModel, table=True):
    """The outbox: one event, its JSON body's data and its idempotency ``key`` (unique, so the
    same change noticed twice is one event)."""

    __tablename__ = "webhook_events"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    kind: str = Field(max_length=32, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(sa.JSON, nullable=False))
    created_at: datetime = _dt(nullable=False, index=True)


class WebhookDelivery(SQLModel, table=True):
    """One event owed to one subscriber, and how sending it went. ``next_attempt_at`` is both
    the back-off and the claim: a sender pushes it past its own timeout before posting, so a
    crash mid-post leaves the row due again later."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "subscriber_id", name="uq_delivery_event_subscriber"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="webhook_events.id", index=True)
    subscriber_id: str = Field(max_length=64, index=True)
    state: str = Field(default="pending", max_length=16, index=True)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = _dt(index=True)
    last_attempt_at: datetime | None = _dt()
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    delivered_at: datetime | None = _dt()


class WebhookMark(SQLModel, table=True):
    """What the event detector last saw of one subject (``story:<id>``, ``source:<id>``, or a
    cursor), so each change becomes one event however often it looks."""

    __tablename__ = "webhook_marks"

    subject: str = Field(primary_key=True, max_length=128)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(sa.JSON, nullable=False))
    updated_at: datetime = _dt(nullable=False)


class CatalogMark(SQLModel, table=True):
    """The digest of the catalog the source rows were last synced with, so a process starting
    on unchanged editorial files skips the sync (``store.sourcerows``)."""

    __tablename__ = "catalog_marks"

    name: str = Field(primary_key=True, max_length=32)
    digest: str = Field(max_length=64)
    synced_at: datetime = _dt(nullable=False)
