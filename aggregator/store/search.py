"""Full-text search of stored entries, on SQLite (FTS5, trigram tokenizer) and PostgreSQL
(``pg_trgm`` GIN index, ``ILIKE``): the query's terms, the SQL condition that finds entries
holding all of them, and the search page of entries with their live story.

Trigrams rather than words, on both databases, because Chinese and Japanese have no spaces to
cut words at: a term is found anywhere in the title or text, case-insensitively. PostgreSQL
keeps its index itself (migration 0013). On SQLite, triggers queue new entries in
``entry_search_pending`` and ``index_pending`` indexes the queue in one statement (migration
0016): the store calls it before every read of the index, so a search never misses an entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.tables import ENTRIES, OVERRIDES, STORIES
from aggregator.types import CorrectionKind

MAX_QUERY_LENGTH: Final = 200
MAX_TERMS: Final = 8
# The trigram tokenizer indexes runs of three characters; shorter terms are matched by LIKE.
_TRIGRAM: Final = 3
_TERM_RE: Final = re.compile(r'"([^"]*)"|(\S+)')
# Objects migration 0013 makes that the table models cannot declare (an FTS5 table and its
# shadow tables, an expression index): schema comparisons leave them out.
SEARCH_OBJECTS: Final = frozenset(
    {
        "entry_search",
        "entry_search_data",
        "entry_search_idx",
        "entry_search_docsize",
        "entry_search_config",
        "ix_entries_search_trgm",
        "entry_search_pending",
    }
)
# Entries written but not yet in the SQLite index, moved into it by ``index_pending``.
_INDEX_PENDING: Final = (
    "INSERT INTO entry_search(rowid, title, text) SELECT id, title, text FROM entries "
    "WHERE id IN (SELECT entry_id FROM entry_search_pending)",
    "DELETE FROM entry_search_pending",
)


class BadQuery(ValueError):
    """A search query that cannot be run; the message says why."""


def is_search_object(name: str | None, _type: str, _parents: Any) -> bool:
    """Alembic ``include_name`` hook: False for the search index's own objects."""
    return name not in SEARCH_OBJECTS


def parse_query(text: str) -> tuple[str, ...]:
    """The terms of ``text``: words, or "quoted phrases"; every one must be found."""
    if len(text) > MAX_QUERY_LENGTH:
        raise BadQuery(f"longer than {MAX_QUERY_LENGTH} characters")
    if any(ord(c) < 32 and not c.isspace() for c in text):
        # PostgreSQL text cannot hold NUL, and no title holds a control character.
        raise BadQuery("contains a control character")
    terms: list[str] = []
    for match in _TERM_RE.finditer(text):
        term = " ".join((match[1] if match[1] is not None else match[2]).split())
        if term and term.casefold() not in (t.casefold() for t in terms):
            terms.append(term)
    if not terms:
        raise BadQuery("give at least one word to search for")
    if len(terms) > MAX_TERMS:
        raise BadQuery(f"more than {MAX_TERMS} words")
    return tuple(terms)


def has_pending(connection: Connection) -> bool:
    """Whether entries wait to be indexed (never on PostgreSQL, whose index is kept live)."""
    if connection.dialect.name != "sqlite":
        return False
    return (
        connection.exec_driver_sql("SELECT 1 FROM entry_search_pending LIMIT 1").first() is not None
    )


def index_pending(connection: Connection) -> None:
    """Index the entries queued since the last call, in one statement (SQLite; a no-op on
    PostgreSQL). Run inside the caller's write transaction."""
    if connection.dialect.name != "sqlite":
        return
    for statement in _INDEX_PENDING:
        connection.exec_driver_sql(statement)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(dialect: str, terms: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """A condition on ``entries`` true for the entries whose title or text holds every term."""
    if dialect == "sqlite":
        conditions: list[sa.ColumnElement[bool]] = []
        long = [t for t in terms if len(t) >= _TRIGRAM]
        if long:
            expression = " AND ".join('"' + t.replace('"', '""') + '"' for t in long)
            conditions.append(
                ENTRIES.c.id.in_(
                    sa.select(sa.literal_column("rowid"))
                    .select_from(sa.table("entry_search"))
                    .where(
                        sa.text("entry_search MATCH :expression").bindparams(expression=expression)
                    )
                )
            )
        for term in terms:
            if len(term) < _TRIGRAM:
                pattern = _like(term)
                conditions.append(
                    sa.or_(
                        ENTRIES.c.title.like(pattern, escape="\\"),
                        ENTRIES.c.text.like(pattern, escape="\\"),
                    )
                )
        return sa.and_(*conditions)
    # The very expression of the pg_trgm index, so the planner can use it.
    document = ENTRIES.c.title.concat(sa.literal_column("' '")).concat(ENTRIES.c.text)
    return sa.and_(*(document.ilike(_like(t), escape="\\") for t in terms))


@dataclass(frozen=True)
class SearchHit:
    """An entry that matched, with the live story it belongs to (None before clustering)."""

    entry_id: int
    source_id: str
    title: str
    url: str | None
    language: str | None
    published_at: datetime
    story_id: int | None
    story_title: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "source_id": self.source_id,
            "title": self.title,
            "url": self.url,
            "language": self.language,
            "published_at": self.published_at.isoformat(),
            "story_id": self.story_id,
            "story_title": self.story_title,
        }


def search(
    connection: Connection,
    terms: tuple[str, ...],
    limit: int,
    *,
    after: tuple[datetime, int] | None = None,
    include_hidden: bool = False,
) -> tuple[list[SearchHit], tuple[datetime, int] | None]:
    """Entries holding every term, newest published first, a page of ``limit`` strictly after
    the (published_at, entry id) ``after``; and where the next page starts (None: last page).
    Without ``include_hidden``, entries of stories an editor hid everywhere are left out."""
    story = STORIES.alias("story")
    live = STORIES.alias("live")
    live_id = sa.func.coalesce(story.c.merged_into_id, story.c.id)
    conditions = [matching(connection.dialect.name, terms)]
    if after is not None:
        published, entry_id = after
        conditions.append(
            sa.or_(
                ENTRIES.c.published_at < published,
                sa.and_(ENTRIES.c.published_at == published, ENTRIES.c.id < entry_id),
            )
        )
    if not include_hidden:
        hidden_story = STORIES.alias("hidden_story")
        hidden = (
            sa.select(sa.func.coalesce(hidden_story.c.merged_into_id, hidden_story.c.id))
            .select_from(OVERRIDES.join(hidden_story, hidden_story.c.id == OVERRIDES.c.story_id))
            .where(
                OVERRIDES.c.kind == CorrectionKind.HIDE,
                OVERRIDES.c.undone_at.is_(None),
                OVERRIDES.c.category.is_(None),
            )
        )
        conditions.append(sa.or_(story.c.id.is_(None), live_id.not_in(hidden)))
    query = (
        sa.select(
            ENTRIES.c.id,
            ENTRIES.c.source_id,
            ENTRIES.c.title,
            ENTRIES.c.url,
            ENTRIES.c.link,
            ENTRIES.c.language,
            ENTRIES.c.published_at,
            live.c.id.label("story_id"),
            live.c.title.label("story_title"),
        )
        .select_from(
            ENTRIES.outerjoin(story, story.c.id == ENTRIES.c.story_id).outerjoin(
                live, live.c.id == live_id
            )
        )
        .where(*conditions)
        .order_by(ENTRIES.c.published_at.desc(), ENTRIES.c.id.desc())
        .limit(limit)
    )
    hits = [
        SearchHit(
            entry_id=row.id,
            source_id=row.source_id,
            title=row.title,
            url=row.url or row.link,
            language=row.language,
            published_at=row.published_at,
            story_id=row.story_id,
            story_title=row.story_title,
        )
        for row in connection.execute(query)
    ]
    if len(hits) < limit:
        return hits, None
    return hits, (hits[-1].published_at, hits[-1].entry_id)
