"""The store on SQLite and PostgreSQL: sources, entries, stories, categories, migrations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import aggregator.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from aggregator.errors import StoreError
from aggregator.store import (
    PollSave,
    Store,
    current_revision,
    head_revision,
    leases,
    open_store,
    upgrade,
)
from aggregator.store.search import is_search_object
from aggregator.types import NormalizedEntry, PollOutcome
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source


def _save(
    store: Store,
    source_id: str,
    *entries: NormalizedEntry,
    category: str = "news",
    etag: str = '"v1"',
) -> PollOutcome:
    outcome = store.save_poll(
        source_id,
        fetched(etag=etag),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(e, [match(category)]) for e in entries],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    settle(store)
    return outcome


def test_migrated_schema_matches_models(store: Store) -> None:
    with store.engine.connect() as connection:
        # Only the search index's own objects (migration 0013) are not in the models;
        # tests/integration/test_search.py checks them.
        context = MigrationContext.configure(connection, opts={"include_name": is_search_object})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
    assert current_revision(store.engine) == head_revision()


def test_upgrade_is_idempotent_and_refuses_unknown_revision(database_url: str) -> None:
    store = open_store(database_url)
    try:
        assert current_revision(store.engine) is None
        upgrade(store.engine)
        upgrade(store.engine)
        assert current_revision(store.engine) == head_revision()
        with store.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'future999'")
        with pytest.raises(StoreError, match="newer"):
            upgrade(store.engine)
    finally:
        store.close()


def test_sync_sources_creates_updates_and_retires(store: Store) -> None:
    store.sync_sources(catalog(source("a"), source("b", enabled=False)), NOW)
    states = {s.id: s.state for s in store.sources()}
    assert states == {"a": "active", "b": "paused"}
    assert [s.id for s in store.due_sources(NOW)] == ["a"]
    store.sync_sources(catalog(source("b")), NOW)
    states = {s.id: s.state for s in store.sources()}
    assert states == {"a": "removed", "b": "active"}


def test_url_change_forgets_validators(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    _save(store, "a", entry("1"))
    assert store.sources()[0].etag == '"v1"'
    store.sync_sources(catalog(source("a", url="https://elsewhere.example/feed")), NOW)
    status = store.sources()[0]
    assert status.etag is None
    assert status.url == "https://elsewhere.example/feed"


def test_save_poll_is_idempotent_and_updates_changed_entries(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    first = _save(store, "a", entry("1"), entry("2"))
    assert (first.new_entries, first.updated_entries) == (2, 0)
    again = _save(store, "a", entry("1"), entry("2"))
    assert (again.new_entries, again.updated_entries, again.result) == (0, 0, "unchanged")
    changed = _save(store, "a", entry("1", title="Corrected title", text="New body"))
    assert (changed.new_entries, changed.updated_entries) == (0, 1)
    assert store.counts()["entries"] == 2
    titles = sorted(s.representative.title for s in store.category_stories("news", 10))
    assert titles == ["Corrected title", "Title 2"]


def test_same_canonical_url_in_two_sources_is_one_story(store: Store) -> None:
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    _save(store, "a", entry("x", url="https://wire.example/story"))
    _save(
        store,
        "b",
        entry(
            "y",
            url="https://wire.example/story",
            title="Other headline",
            text="Different text entirely",
        ),
    )
    stories = store.category_stories("news", 10)
    assert len(stories) == 1
    assert {e.source_id for e in stories[0].entries} == {"a", "b"}
    evidence = store.story_evidence(stories[0].story_id)
    assert [row["signal"] for row in evidence] == ["new", "url"]
    assert evidence[1]["matched_entry_id"] == evidence[0]["entry_id"]


def test_same_content_hash_is_one_story(store: Store) -> None:
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    _save(store, "a", entry("x", url="https://one.example/a", content_hash="same"))
    _save(store, "b", entry("y", url="https://two.example/b", content_hash="same"))
    stories = store.category_stories("news", 10)
    assert len(stories) == 1
    assert [row["signal"] for row in store.story_evidence(stories[0].story_id)] == [
        "new",
        "content_hash",
    ]


def test_different_stories_stay_apart_and_newest_first(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    _save(store, "a", entry("old", published_at=NOW - timedelta(days=1)), entry("new"))
    stories = store.category_stories("news", 10)
    assert [s.representative.title for s in stories] == ["Title new", "Title old"]
    assert store.category_stories("news", 1)[0].representative.title == "Title new"
    assert store.category_stories("other", 10) == []


def test_story_uid_is_stable_and_dates_are_aware(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    _save(store, "a", entry("1"))
    story = store.category_stories("news", 10)[0]
    assert len(story.uid) == 20
    assert story.first_seen.tzinfo is not None
    assert story.entries[0].published_at == NOW


def test_errors_are_recorded_and_cleared(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    store.save_error(
        "a",
        message="HTTP 500",
        kind="http",
        status=500,
        next_check_at=NOW + timedelta(hours=1),
        now=NOW,
    )
    status = store.sources()[0]
    assert (status.error_count, status.last_error, status.last_status) == (1, "HTTP 500", 500)
    assert store.due_sources(NOW) == []
    assert [s.id for s in store.due_sources(NOW, everything=True)] == ["a"]
    _save(store, "a", entry("1"))
    status = store.sources()[0]
    assert (status.error_count, status.last_error) == (0, None)


def test_unknown_source_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="not in the store"):
        _save(store, "ghost", entry("1"))


def test_long_identity_keys_are_hashed_not_truncated(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    long_a = entry("a", identity_key="guid:" + "x" * 600 + "a")
    long_b = entry("b", identity_key="guid:" + "x" * 600 + "b")
    assert _save(store, "a", long_a, long_b).new_entries == 2
    assert _save(store, "a", long_a, long_b).new_entries == 0


def test_iter_stories_pages_through_everything(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    _save(store, "a", *[entry(str(i), url=f"https://n.example/{i}") for i in range(7)])
    assert len(list(store.iter_stories())) == 7


def test_copies_inside_one_feed_share_a_story(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    first = entry(
        "1",
        url="https://wire.example/x",
        link="https://wire.example/x",
        published_at=NOW - timedelta(hours=1),
    )
    # Republished under a new guid: the same link and text.
    again = entry(
        "2",
        url="https://wire.example/x",
        link="https://wire.example/x",
        content_hash=first.content_hash,
    )
    # The same text (with a body) listed under another link.
    twin = entry("3", url="https://other.example/y", content_hash=first.content_hash)
    assert _save(store, "a", again, twin, first).new_entries == 3
    stories = store.category_stories("news", 10)
    assert len(stories) == 1
    evidence = {row["title"]: row for row in store.story_evidence(stories[0].story_id)}
    founder = evidence["Title 1"]
    assert founder["signal"] == "new"
    assert evidence["Title 2"]["signal"] == "url"
    assert evidence["Title 2"]["matched_entry_id"] == founder["entry_id"]
    assert evidence["Title 3"]["signal"] == "content_hash"
    assert evidence["Title 3"]["matched_entry_id"] == founder["entry_id"]
    assert [s.entries[0].title for s in stories] == ["Title 1"]


def test_distinct_items_of_one_feed_never_share_a_story(store: Store) -> None:
    """Issue 14: a feed's own distinct items stay apart even when an exact signal matches.
    Episodes linking to the home page (other guids, other text), title-only entries repeating
    a title under other links, and the same through a story another feed founded."""
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    home = "https://pod.example/"
    _save(store, "b", entry("b1", url=home, link=home, title="Episode 1"))
    episodes = [
        entry(
            f"ep{i}",
            url=home,
            link=home,
            title=f"Episode {i}",
            published_at=NOW - timedelta(days=i),
        )
        for i in range(1, 4)
    ]
    talks = [
        entry(
            f"talk{i}",
            url=f"https://talks.example/{i}",
            link=f"https://talks.example/{i}",
            title="Same talk",
            text="Same talk",
            content_hash="t" * 32,
        )
        for i in range(3)
    ]
    assert _save(store, "a", *episodes, *talks).new_entries == 6
    with store.engine.connect() as connection:
        import sqlalchemy as sa

        rows = connection.execute(
            sa.text("SELECT story_id FROM entries WHERE source_id = 'a'")
        ).all()
    assert len({row.story_id for row in rows}) == 6


def test_a_match_into_a_merged_story_joins_the_survivor(store: Store) -> None:
    import sqlalchemy as sa

    store.sync_sources(catalog(source("a"), source("b")), NOW)
    _save(store, "a", entry("1", url="https://x.example/1"), entry("2", url="https://x.example/2"))
    ids = sorted(s.story_id for s in store.category_stories("news", 10))
    with store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE stories SET merged_into_id = :keep WHERE id = :gone"),
            {"keep": ids[0], "gone": ids[1]},
        )
    _save(store, "b", entry("b2", url="https://x.example/2"))
    with store.engine.connect() as connection:
        story_of_b = connection.execute(
            sa.text("SELECT story_id FROM entries WHERE source_id = 'b'")
        ).scalar_one()
    assert story_of_b == ids[0]


def _stored(store: Store, source_id: str) -> dict[str, tuple[Any, ...]]:
    import sqlalchemy as sa

    from aggregator.store.tables import ENTRIES

    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                ENTRIES.c.identity_key,
                ENTRIES.c.published_at,
                ENTRIES.c.date_source,
                ENTRIES.c.story_id,
            ).where(ENTRIES.c.source_id == source_id)
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_rows_under_a_legacy_key_are_adopted_not_duplicated(store: Store) -> None:
    """After the upgrade that kept fragments (issue 14), the row the old key merged a page's
    posts into becomes the first post's; the others are new; nothing is stored twice."""
    store.sync_sources(catalog(source("a")), NOW)
    legacy = "url:https://blog.example/awesome"
    old = entry(
        "p1",
        identity_key=legacy,
        guid=None,
        url="https://blog.example/awesome",
        link="https://blog.example/awesome#p1",
    )
    assert _save(store, "a", old).new_entries == 1
    posts = [
        entry(
            f"p{i}",
            identity_key=f"{legacy}#p{i}",
            legacy_key=legacy,
            guid=None,
            url="https://blog.example/awesome",
            link=f"https://blog.example/awesome#p{i}",
        )
        for i in (1, 2, 3)
    ]
    outcome = _save(store, "a", *posts, etag='"v2"')
    assert (outcome.new_entries, outcome.updated_entries) == (2, 0)
    stored = _stored(store, "a")
    assert sorted(stored) == [f"{legacy}#p{i}" for i in (1, 2, 3)]
    assert len({row[2] for row in stored.values()}) == 3  # three stories
    assert _save(store, "a", *posts, etag='"v3"').new_entries == 0


def test_a_key_still_in_use_is_not_adopted(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    legacy = "url:https://blog.example/page"
    plain = entry(
        "x",
        identity_key=legacy,
        guid=None,
        url="https://blog.example/page",
        link="https://blog.example/page",
    )
    _save(store, "a", plain)
    part = entry(
        "y",
        identity_key=f"{legacy}#part",
        legacy_key=legacy,
        guid=None,
        url="https://blog.example/page",
        link="https://blog.example/page#part",
    )
    assert _save(store, "a", part, plain, etag='"v2"').new_entries == 1
    assert sorted(_stored(store, "a")) == [legacy, f"{legacy}#part"]


def test_undated_entries_of_a_first_poll_are_backlog_not_today(store: Store) -> None:
    """A feed's undated backlog, seen on its first poll, is dated below the feed's oldest
    dated entry (and at least BACKLOG_AGE before the poll), in feed order; undated entries
    that appear later keep the time first seen, and an edit does not move either."""
    from aggregator.store.entries import BACKLOG_AGE

    store.sync_sources(catalog(source("a"), source("b")), NOW)
    dated = entry("d", published_at=NOW - timedelta(days=2), updated_at=NOW - timedelta(days=2))
    undated = [entry(f"u{i}", date_source="first-seen") for i in (1, 2)]
    _save(store, "a", undated[0], dated, undated[1])
    stored = _stored(store, "a")
    oldest = NOW - timedelta(days=2) - BACKLOG_AGE
    assert stored["guid:u1"][:2] == (oldest, "backlog")
    assert stored["guid:u2"][:2] == (oldest - timedelta(seconds=1), "backlog")
    assert stored["guid:d"][:2] == (NOW - timedelta(days=2), "feed")
    top = store.category_stories("news", 1)
    assert [s.entries[0].title for s in top] == ["Title d"]

    # Only undated entries: dated BACKLOG_AGE before the poll.
    _save(store, "b", entry("only", date_source="first-seen"))
    assert _stored(store, "b")["guid:only"][:2] == (NOW - BACKLOG_AGE, "backlog")

    later = NOW + timedelta(hours=1)
    fresh = entry("u3", date_source="first-seen", published_at=later, updated_at=later)
    edited = entry(
        "u1", date_source="first-seen", published_at=later, updated_at=later, text="Edited body"
    )
    store.save_poll(
        "a",
        fetched(etag='"v2"'),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(fresh, [match("news")]), (edited, [match("news")])],
        next_check_at=later + timedelta(minutes=30),
        now=later,
    )
    stored = _stored(store, "a")
    assert stored["guid:u3"][:2] == (later, "first-seen")
    assert stored["guid:u1"][:2] == (oldest, "backlog")


def test_story_detail_says_where_each_date_came_from(store: Store) -> None:
    from aggregator.cli.stories import date_line

    store.sync_sources(catalog(source("a")), NOW)
    _save(
        store,
        "a",
        entry("undated", date_source="first-seen"),
        entry("local", date_source="feed-localized", published_at=NOW - timedelta(days=1)),
    )
    [story] = [s for s in store.category_stories("news", 10) if s.entries[0].title == "Title local"]
    detail = store.story_detail(story.story_id)
    assert detail is not None
    [member] = detail.entries
    assert member.as_json()["date_source"] == "feed-localized"
    assert "localized month names" in date_line(member.published_at, member.date_source)
    assert "first poll" in date_line(NOW, "backlog")
    assert "before date sources were kept" in date_line(NOW, None)


def _poll_save(source_id: str, *entries: NormalizedEntry, etag: str = '"v1"') -> PollSave:
    return PollSave(
        source_id,
        fetched(etag=etag),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(e, [match("news")]) for e in entries],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )


def _everything(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "entries": "SELECT id, source_id, identity_key, story_id, origin_story_id, story_signal,"
        " story_matched_entry_id, published_at, date_source FROM entries ORDER BY id",
        "stories": "SELECT id, uid, entry_count, published_at, updated_at FROM stories ORDER BY id",
        "categories": "SELECT entry_id, category_id FROM entry_categories"
        " ORDER BY entry_id, category_id",
        "sources": "SELECT id, etag, last_new_entries, last_updated_entries, error_count"
        " FROM sources ORDER BY id",
    }
    with store.engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.execute(sa.text(query))]
            for name, query in tables.items()
        }


def _feeds() -> list[PollSave]:
    # b repeats a's story by URL and by content hash, c copies b within its own feed, and a
    # comes back with one entry changed: each save must see what the ones before it wrote.
    return [
        _poll_save("a", entry("1", url="https://wire.example/1"), entry("2")),
        _poll_save(
            "b",
            entry("x", url="https://wire.example/1", title="Other"),
            entry("y", url="https://two.example/y", content_hash=entry("2").content_hash),
        ),
        _poll_save("c", entry("c1"), entry("c2", url="https://news.example/c1")),
        _poll_save(
            "a", entry("1", url="https://wire.example/1", title="Changed"), entry("2"), etag='"v2"'
        ),
    ]


def test_a_batch_of_saves_stores_what_saves_one_by_one_store(database_url: str) -> None:
    stores = [open_store(database_url.replace("store.db", f"store{n}.db")) for n in (1, 2)]
    if not database_url.startswith("sqlite"):
        stores[1].close()
        stores = stores[:1]
    try:
        for store in stores:
            upgrade(store.engine)
            store.sync_sources(catalog(source("a"), source("b"), source("c")), NOW)
        one_by_one = [stores[0].save_polls([save])[0] for save in _feeds()]
        expected = _everything(stores[0])
        if len(stores) == 1:
            # One PostgreSQL database: start it afresh for the batch.
            with stores[0].engine.begin() as connection:
                for table in ("entry_categories", "entries", "stories"):
                    connection.execute(sa.text(f"DELETE FROM {table}"))
            stores[0].sync_sources(catalog(source("a"), source("b"), source("c")), NOW)
            expected = {k: v for k, v in expected.items() if k != "sources"}
        batch = stores[-1].save_polls(_feeds())
        got = _everything(stores[-1])
        if len(stores) == 1:
            got = {k: v for k, v in got.items() if k != "sources"}
            # Fresh ids continue from where the first run left them on PostgreSQL.
            assert [len(v) for v in got.values()] == [len(v) for v in expected.values()]
        else:
            assert got == expected
        assert batch == one_by_one
        assert [(o.new_entries, o.updated_entries) for o in batch] == [
            (2, 0),
            (2, 0),
            (2, 0),
            (0, 1),
        ]
    finally:
        for store in stores:
            store.close()


def test_a_bad_save_in_a_batch_costs_only_itself(store: Store) -> None:
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    saves = [
        _poll_save("a", entry("1")),
        _poll_save("ghost", entry("2")),
        _poll_save("b", entry("3")),
    ]
    with pytest.raises(StoreError, match="ghost"):
        store.save_polls(saves)
    # The feed before the bad one is stored with its validators, as separate saves would
    # have stored it; the bad one and what came after it are not.
    assert store.counts()["entries"] == 1
    etags = {s.id: s.etag for s in store.sources()}
    assert etags == {"a": '"v1"', "b": None}


def test_postgresql_batches_stay_under_the_story_lock_bound(store: Store) -> None:
    """Over ``MAX_STORY_LOCKS`` story keys a transaction's locks fold into buckets every other
    worker's saves wait on: on PostgreSQL a batch is split below that bound."""
    feeds = [_poll_save(f"s{n}", *[entry(f"{n}-{i}") for i in range(40)]) for n in range(8)]
    groups = store._transactions(feeds)
    assert [save for group in groups for save in group] == feeds
    if store.engine.dialect.name == "sqlite":
        assert len(groups) == 1
        return
    for group in groups:
        keys = leases.story_keys(
            (e.url for s in group for e, _ in s.entries),
            (e.content_hash for s in group for e, _ in s.entries),
        )
        assert len(keys) <= leases.MAX_STORY_LOCKS
    assert len(groups) == 3  # 80 keys a feed: three to a transaction (240 keys), 3 + 3 + 2


def test_sqlite_connections_keep_few_prepared_statements(tmp_path: Any) -> None:
    """The saves prepare statements that differ by their row counts; each connection keeps only
    the last few (``engine.SQLITE_CACHED_STATEMENTS``), not the sqlite3 module's 128."""
    store = open_store(f"sqlite:///{tmp_path / 'statements.db'}")
    try:
        with store.engine.connect() as connection:
            for count in range(1, 101):
                connection.execute(
                    sa.text("SELECT 1 WHERE 1 IN (" + ", ".join(["1"] * count) + ")")
                ).all()
            kept = connection.exec_driver_sql("SELECT count(*) FROM sqlite_stmt").scalar_one()
    finally:
        store.close()
    assert kept <= 33  # the cache, and the statement counting it


def _plan(store: Store, read: Any) -> str:
    """The query plan of the one SELECT ``read`` runs, as text (sorts and indexes named)."""
    statements: list[tuple[str, Any]] = []

    def noted(
        _conn: object,
        _cursor: object,
        statement: str,
        parameters: Any,
        _context: object,
        _many: bool,
    ) -> None:
        statements.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", noted)
    try:
        read()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", noted)
    [(statement, parameters)] = [s for s in statements if s[0].lstrip().startswith("SELECT")]
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return " / ".join(row[-1] for row in rows)
        # A few rows cost less to scan and sort whole; the question is whether a path exists
        # that sorts no more than the entries of equal time.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_sort = off")
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        return " / ".join(row[0] for row in rows)


def test_the_clustering_batches_read_pending_entries_in_order_without_sorting_them(
    store: Store,
) -> None:
    """Each batch of the stage reads the first pending entries: sorting every pending entry
    for each batch made a first poll's clustering quadratic in its entries (issue 19)."""
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    for source_id in ("b", "a"):
        store.save_poll(
            source_id,
            fetched(),
            body_hash=None,
            feed_title="Feed",
            feed_link=None,
            entries=[
                (
                    entry(
                        f"{source_id}{n}",
                        published_at=NOW - timedelta(hours=n),
                        content_hash=f"{source_id}{n}".ljust(32, "0"),
                    ),
                    [match("news")],
                )
                for n in range(4)
            ],
            next_check_at=NOW,
            now=NOW,
        )
    pending = store.pending_entries(5)
    assert [p.identity_key for p in pending] == [
        "guid:a3",
        "guid:b3",
        "guid:a2",
        "guid:b2",
        "guid:a1",
    ]
    assert [p.identity_key for p in store.unfeatured_entries(3)] == [
        "guid:b0",
        "guid:a0",
        "guid:b1",
    ]
    for read in (lambda: store.pending_entries(5), lambda: store.unfeatured_entries(3)):
        plan = _plan(store, read)
        assert "ix_entries_pending" in plan, plan
        # Only entries of equal time are sorted (SQLite: "RIGHT PART OF ORDER BY"; PostgreSQL:
        # "Incremental Sort"), never every pending entry.
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
        assert not re.search(r"(^|->)\s*Sort\s+\(", plan), plan
