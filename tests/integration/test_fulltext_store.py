"""The full-text rows in a real store (SQLite and PostgreSQL): which entries are due a check,
the text handed to the clustering stage, and retention removing entries that have one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from aggregator.clustering import ClusteringStage
from aggregator.runtime.retention import prune
from aggregator.store import Store, open_store
from aggregator.store.fulltext import FullTextRecord
from aggregator.types import FullTextOutcome, NormalizedEntry
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source

LONG_AGO = NOW - timedelta(days=400)


def _save(store: Store, *items: NormalizedEntry) -> None:
    store.save_poll(
        "a",
        fetched(),
        body_hash=None,
        feed_title="F",
        feed_link=None,
        entries=[(i, [match("news")]) for i in items],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )


def _ids(store: Store) -> dict[str, int]:
    # Read from the table: the outputs show only stories the clustering stage has settled.
    with store.engine.connect() as connection:
        return {
            title: int(entry_id)
            for title, entry_id in connection.execute(sa.text("SELECT title, id FROM entries"))
        }


def _record(
    entry_id: int, outcome: FullTextOutcome, entry_hash: str, **extra: Any
) -> FullTextRecord:
    return FullTextRecord(
        entry_id=entry_id,
        source_id="a",
        url="https://news.example/x",
        outcome=outcome,
        entry_hash=entry_hash,
        checked_at=NOW,
        **extra,
    )


def _due(store: Store) -> list[int]:
    return [
        t.entry_id
        for t in store.full_text_due(
            ["a"],
            since=NOW - timedelta(days=7),
            retry_before=NOW - timedelta(hours=1),
            max_failures=3,
            limit=50,
        )
    ]


def test_due_pages_new_changed_and_failed_ones_newest_first(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    fresh, done, old = (
        entry("fresh", published_at=NOW),
        entry("done", published_at=NOW),
        entry("old", published_at=LONG_AGO, updated_at=LONG_AGO),
    )
    _save(store, fresh, done, old)
    ids = _ids(store)
    assert set(_due(store)) == {ids["Title fresh"], ids["Title done"]}  # "old" is too old
    store.save_full_text(
        _record(
            ids["Title done"],
            FullTextOutcome.EXTRACTED,
            done.content_hash,
            text="x",
            content_html="<p>x</p>",
        )
    )
    store.save_full_text(
        _record(
            ids["Title fresh"],
            FullTextOutcome.FAILED,
            fresh.content_hash,
            error_kind="timeout",
            failures=1,
        )
    )
    # A failure checked at NOW is retried an hour later, not before.
    assert _due(store) == []
    # The feed changes "done": its page is due again.
    _save(store, entry("done", published_at=NOW, text="A corrected body.", content_hash="c" * 32))
    assert _due(store) == [ids["Title done"]]


def test_clustering_reads_the_full_text_only_when_extracted(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    first, second = entry("one"), entry("two")
    _save(store, first, second)
    ids = _ids(store)
    store.save_full_text(
        _record(
            ids["Title one"],
            FullTextOutcome.EXTRACTED,
            first.content_hash,
            text="The whole article.",
            content_html="<p>The whole article.</p>",
        )
    )
    store.save_full_text(_record(ids["Title two"], FullTextOutcome.EMPTY, second.content_hash))
    pending = {p.id: p for p in store.pending_entries(10)}
    assert pending[ids["Title one"]].full_text == "The whole article."
    assert pending[ids["Title two"]].full_text is None
    settle(store)
    shown = {e.title: e for s in store.category_stories("news", 10) for e in s.entries}
    assert shown["Title one"].full_html == "<p>The whole article.</p>"
    assert shown["Title two"].full_html is None


def test_one_worker_at_a_time_has_the_turn(store: Store) -> None:
    with store.full_text_turn() as mine:
        assert mine is True
        if store.engine.dialect.name == "postgresql":
            other = open_store(store.engine.url.render_as_string(hide_password=False))
            try:
                with other.full_text_turn() as theirs:
                    assert theirs is False
            finally:
                other.close()
    with store.full_text_turn() as again:
        assert again is True


def test_prune_removes_entries_with_their_full_text(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    old = entry("old", published_at=LONG_AGO, updated_at=LONG_AGO)
    _save(store, old)
    entry_id = _ids(store)["Title old"]
    store.save_full_text(
        _record(
            entry_id, FullTextOutcome.EXTRACTED, old.content_hash, text="t", content_html="<p>t</p>"
        )
    )
    ClusteringStage(store, semantic=False).run()
    assert prune(store, days=365, now=NOW).entries == 1
    assert store.full_text(entry_id) is None
    # A check that ends after its entry was pruned stores nothing.
    assert store.save_full_text(_record(entry_id, FullTextOutcome.EMPTY, old.content_hash)) is False
