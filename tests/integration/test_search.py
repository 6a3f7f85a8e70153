"""Full-text search of stored entries on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm): every
language by a word of its title, words of scripts without spaces, and an index that follows
inserts, updates, deletes and retention, whether they come before or after the batch that
indexes new entries on SQLite (migration 0016)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.catalog import load_catalog
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.runtime.service import Service
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.store.search import BadQuery, parse_query
from aggregator.types import NormalizedEntry
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source
from tests.support.feeds import rss, write_config

# (key, language, title, a word of the title to search for)
TITLES = [
    ("en", "en", "Parliament approves the artificial intelligence act", "parliament"),
    ("fr", "fr", "Le Sénat adopte la loi sur l'intelligence artificielle", "Sénat"),
    ("de", "de", "Bundestag beschließt Gesetz über künstliche Intelligenz", "beschließt"),
    ("ru", "ru", "Госдума приняла закон об искусственном интеллекте", "Госдума"),
    ("zh", "zh", "全国人大通过人工智能法草案", "人工智能"),
    ("ja", "ja", "国会で人工知能の規制法案が可決された", "規制法案"),
    ("ar", "ar", "البرلمان يقر قانون الذكاء الاصطناعي", "البرلمان"),
]


def _save(store: Store, *entries: NormalizedEntry, etag: str = '"v1"') -> None:
    store.save_poll(
        "a",
        fetched(etag=etag),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(e, [match("news")]) for e in entries],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    settle(store)


def _found(store: Store, query: str) -> list[str]:
    hits, _ = store.search(parse_query(query), 50)
    return sorted(h.source_id + ":" + h.title for h in hits)


def _keys(store: Store, query: str) -> set[str]:
    hits, _ = store.search(parse_query(query), 50)
    return {h.url.rsplit("/", 1)[-1] for h in hits if h.url}


@pytest.fixture
def filled(store: Store) -> Store:
    store.sync_sources(catalog(source("a")), NOW)
    _save(
        store,
        *(
            entry(
                key,
                title=title,
                language=lang,
                text=f"{title}.",
                published_at=NOW - timedelta(hours=i),
            )
            for i, (key, lang, title, _) in enumerate(TITLES)
        ),
    )
    return store


@pytest.mark.parametrize(("key", "word"), [(k, w) for k, _, _, w in TITLES])
def test_each_language_is_found_by_a_word_of_its_title(filled: Store, key: str, word: str) -> None:
    assert _keys(filled, word) == {key}


def test_case_is_ignored_and_short_words_of_scripts_without_spaces_are_found(filled: Store) -> None:
    assert _keys(filled, "PARLIAMENT") == {"en"}
    assert _keys(filled, "госдума") == {"ru"}
    # Two characters: below a trigram, still found (LIKE on SQLite, ILIKE on PostgreSQL).
    assert _keys(filled, "国会") == {"ja"}
    assert _keys(filled, "人工") == {"zh", "ja"}
    # Every term must be found; a phrase in quotes is one term.
    assert _keys(filled, "intelligence artificielle") == {"fr"}
    assert _keys(filled, '"artificial intelligence"') == {"en"}
    assert _keys(filled, '"intelligence artificial"') == set()
    assert _keys(filled, "100%") == set()


def test_the_index_follows_updates_deletes_and_retention(filled: Store) -> None:
    _save(
        filled,
        entry(
            "en",
            title="Parliament rejects the budget",
            language="en",
            text="Parliament rejects the budget.",
            updated_at=NOW + timedelta(hours=1),
        ),
        etag='"v2"',
    )
    assert _keys(filled, "budget") == {"en"}
    assert _keys(filled, "artificial") == set()
    removed, _ = filled.prune_entries(NOW - timedelta(minutes=90), NOW, 100)
    assert removed > 0
    # Retention removed the entries published before the cutoff: zh (4 h), ja (5 h) and others.
    assert _keys(filled, "人工") == set()
    assert _keys(filled, "parliament") == {"en"}


def _pending(store: Store) -> int:
    if store.engine.dialect.name != "sqlite":
        return 0
    with store.engine.connect() as connection:
        return int(
            connection.execute(sa.text("SELECT count(*) FROM entry_search_pending")).scalar_one()
        )


def _index_is_sound(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        # FTS5 compares its index with the entries' text and raises on any difference.
        with store.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO entry_search(entry_search, rank) VALUES ('integrity-check', 1)"
                )
            )


def test_edits_and_deletes_before_and_after_the_batch_index_keep_it_right(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    store.save_poll(
        "a",
        fetched(),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[
            (entry(k, title=f"{k} original headline", text=f"{k} first text"), [match("news")])
            for k in ("early", "late", "gone", "kept")
        ],
        next_check_at=NOW,
        now=NOW,
    )
    if store.engine.dialect.name == "sqlite":
        assert _pending(store) == 4  # written, not yet indexed
    # "early" changes and "gone" leaves while both wait for the batch.
    store.save_poll(
        "a",
        fetched(etag='"v2"'),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[
            (
                entry("early", title="early edited headline", text="early second text"),
                [match("news")],
            )
        ],
        next_check_at=NOW,
        now=NOW,
    )
    with store.engine.begin() as connection:
        connection.execute(
            sa.text(
                "DELETE FROM entry_categories WHERE entry_id IN "
                "(SELECT id FROM entries WHERE guid = 'gone')"
            )
        )
        connection.execute(sa.text("DELETE FROM entries WHERE guid = 'gone'"))
    assert _keys(store, "edited") == {"early"}  # the search indexes the backlog first
    assert _keys(store, "original") == {"late", "kept"}
    assert _pending(store) == 0
    _index_is_sound(store)
    # Now indexed: "late" changes and "kept" leaves.
    store.save_poll(
        "a",
        fetched(etag='"v3"'),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[
            (
                entry("late", title="late rewritten headline", text="late second text"),
                [match("news")],
            )
        ],
        next_check_at=NOW,
        now=NOW,
    )
    with store.engine.begin() as connection:
        connection.execute(
            sa.text(
                "DELETE FROM entry_categories WHERE entry_id IN "
                "(SELECT id FROM entries WHERE guid = 'kept')"
            )
        )
        connection.execute(sa.text("DELETE FROM entries WHERE guid = 'kept'"))
    assert _keys(store, "headline") == {"early", "late"}
    assert _keys(store, "original") == set()
    assert _keys(store, "rewritten") == {"late"}
    _index_is_sound(store)


def test_pages_newest_first_without_gaps(filled: Store) -> None:
    terms = parse_query("a")  # a letter of most Latin-script titles
    every, last = filled.search(terms, 50)
    assert last is None
    seen = []
    after = None
    while True:
        page, after = filled.search(terms, 2, after=after)
        seen += [h.entry_id for h in page]
        if after is None:
            break
    assert seen == [h.entry_id for h in every]
    assert [h.published_at for h in every] == sorted((h.published_at for h in every), reverse=True)


def test_hits_name_their_live_story_and_hidden_stories_are_for_editors(filled: Store) -> None:
    hits, _ = filled.search(parse_query("Госдума"), 10)
    story_id = hits[0].story_id
    assert story_id is not None
    assert hits[0].story_title == TITLES[3][2]
    filled.hide_story(story_id, None, by="ed", now=NOW)
    assert filled.search(parse_query("Госдума"), 10)[0] == []
    assert [
        h.story_id for h in filled.search(parse_query("Госдума"), 10, include_hidden=True)[0]
    ] == [story_id]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "at least one word"),
        ("   ", "at least one word"),
        ('""', "at least one word"),
        ("x" * 201, "longer than 200"),
        (" ".join("abcdefghi"), "more than 8"),
        ("nul\x00byte", "control character"),
    ],
)
def test_bad_queries_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(BadQuery, match=problem):
        parse_query(text)


def test_a_poll_leaves_what_it_saved_indexed(sqlite_store: Store, tmp_path: Path) -> None:
    with FeedServer() as server:
        server.set(
            "/a.xml",
            Resource(
                body=rss(
                    "Feed",
                    [
                        {
                            "title": f"Harbour strike day {n}",
                            "link": f"https://site.example/{n}",
                            "guid": f"g{n}",
                        }
                        for n in range(3)
                    ],
                )
            ),
        )
        config = write_config(
            tmp_path / "config",
            f'[[source]]\nid = "a"\nurl = "{server.url("/a.xml")}"\ncategories = ["news"]\n',
            '[[category]]\nid = "news"\ntitle = "News"\n',
        )
        service = Service(
            Settings.from_env({"AGGREGATOR_CLUSTERING": "exact"}),
            sqlite_store,
            load_catalog(config),
        )
        try:
            assert service.poll().errors == 0
        finally:
            service.close()
    assert _pending(sqlite_store) == 0
    _index_is_sound(sqlite_store)
    settle(sqlite_store)
    assert len(_keys(sqlite_store, "harbour")) == 3


def _config(connection: sa.Connection, key: str) -> int | None:
    value = connection.execute(
        sa.text("SELECT v FROM entry_search_config WHERE k = :key"), {"key": key}
    ).scalar()
    return None if value is None else int(value)


def _hashsize(connection: sa.Connection) -> int | None:
    return _config(connection, "hashsize")


def test_segments_merge_sixteen_at_a_time_and_answer_alike(sqlite_store: Store) -> None:
    """Migration 0021: FTS5 merges a level's segments once 16 wait (its default: 4). Many
    small batches then leave more segments, and every search answers as after a full merge."""
    with sqlite_store.engine.connect() as connection:
        assert _config(connection, "automerge") == 16
    sqlite_store.sync_sources(catalog(source("a")), NOW)
    for n in range(12):
        # One entry indexed at a time: a segment each.
        _save(
            sqlite_store,
            entry(
                f"m{n}",
                title=f"Harbour report {n}",
                text=f"crane{n} dock strike day {n} harbour",
                published_at=NOW - timedelta(minutes=n),
            ),
            etag=f'"v{n}"',
        )
        settle(sqlite_store)
    queries = ["harbour", "crane3", "dock strike", "report 11"]
    before = {q: _keys(sqlite_store, q) for q in queries}
    assert len(before["harbour"]) == 12
    assert before["crane3"] == {"m3"}
    _index_is_sound(sqlite_store)
    with sqlite_store.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO entry_search(entry_search) VALUES ('optimize')"))
    assert {q: _keys(sqlite_store, q) for q in queries} == before
    _index_is_sound(sqlite_store)


def test_a_batch_indexed_in_large_segments_answers_as_in_small_ones(sqlite_store: Store) -> None:
    """Migration 0019 lets FTS5 gather 8 MiB of a batch before writing a segment (its default:
    1 MiB): a batch is written as fewer, larger segments, and answers as in small ones."""
    with sqlite_store.engine.connect() as connection:
        assert _hashsize(connection) == 8 * 1024 * 1024
    sqlite_store.sync_sources(catalog(source("a")), NOW)
    words = [f"w{n:03d}{chr(0x3B1 + n % 24)}" for n in range(240)]
    # About 1 MB of trigram positions in one batch: one segment at 8 MiB, many at 64 KiB.
    entries = [
        entry(
            f"k{n}",
            title=f"{words[n]} headline {n}",
            text=" ".join(words[(n * 7 + i) % 240] + f"x{i}" for i in range(400)),
            published_at=NOW - timedelta(minutes=n),
        )
        for n in range(120)
    ]
    _save(sqlite_store, *entries)
    queries = [*words[:120:13], "headline", "w00", "x39", "x399", f"{words[3]}x1"]
    large = {q: _keys(sqlite_store, q) for q in queries}
    assert all(large.values())
    _index_is_sound(sqlite_store)
    segments = "SELECT count(DISTINCT segid) FROM entry_search_idx"
    with sqlite_store.engine.begin() as connection:
        in_large = connection.execute(sa.text(segments)).scalar_one()
        connection.execute(
            sa.text("INSERT INTO entry_search(entry_search, rank) VALUES ('hashsize', 65536)")
        )
        connection.execute(sa.text("INSERT INTO entry_search(entry_search) VALUES ('rebuild')"))
        in_small = connection.execute(sa.text(segments)).scalar_one()
    assert in_small > in_large
    assert {q: _keys(sqlite_store, q) for q in queries} == large
    _index_is_sound(sqlite_store)
