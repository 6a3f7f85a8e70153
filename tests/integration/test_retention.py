"""Retention on SQLite and PostgreSQL: old entries and the stories they leave go in batches,
tombstones keep feeds from bringing them back, editors' corrections naming them are closed
without breaking anything, and ``aggregator prune`` does it from the command line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.clustering import ClusteringStage
from aggregator.runtime.retention import TOMBSTONE_MIN_DAYS, prune
from aggregator.store import Store
from aggregator.types import NormalizedEntry
from tests.support.builders import NOW, catalog, entry, fetched, match, source
from tests.support.feeds import aggregator, cli_env, write_config

DAYS = 365
OLD = NOW - timedelta(days=DAYS + 10)
RECENT = NOW - timedelta(days=3)


def _item(key: str, when: Any, **overrides: Any) -> NormalizedEntry:
    return entry(key, published_at=when, updated_at=when, **overrides)


def _save(store: Store, source_id: str, *items: NormalizedEntry, now: Any = NOW) -> Any:
    return store.save_poll(
        source_id,
        fetched(),
        body_hash=None,
        feed_title="F",
        feed_link=None,
        entries=[(i, [match("news")]) for i in items],
        next_check_at=now + timedelta(minutes=30),
        now=now,
    )


def _rows(store: Store, query: str) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.text(query)))


def _count(store: Store, table: str) -> int:
    return int(_rows(store, f"SELECT count(*) FROM {table}")[0][0])


def _feed(store: Store) -> list[NormalizedEntry]:
    """A source that lists five old entries and one recent one; another old entry shares the
    recent one's story (same URL)."""
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    items = [_item(f"old{n}", OLD) for n in range(5)] + [_item("new", RECENT)]
    _save(store, "a", *items)
    _save(store, "b", _item("copy", OLD, url="https://news.example/new"))
    return items


def test_prune_removes_old_entries_in_batches_and_the_stories_they_leave(store: Store) -> None:
    items = _feed(store)
    ClusteringStage(store, semantic=False).run()
    before = store.prune_preview(NOW - timedelta(days=DAYS), NOW)
    assert (before.entries, before.stories) == (6, 5)
    summary = prune(store, days=DAYS, now=NOW, batch=2)
    assert (summary.entries, summary.stories, summary.corrections) == (6, 5, 0)
    assert summary.batches >= 3 + 3
    assert [key for (key,) in _rows(store, "SELECT identity_key FROM entries")] == ["guid:new"]
    # The story of the recent entry stays, recounted; its old copy's categories went too.
    assert _rows(store, "SELECT entry_count FROM stories") == [(1,)]
    assert _count(store, "entry_categories") == 1
    assert _count(store, "tombstones") == 6
    # A poll that still lists them brings none back, and adds what is new.
    outcome = _save(store, "a", *items, _item("newer", RECENT))
    assert (outcome.new_entries, outcome.updated_entries) == (1, 0)
    assert sorted(k for (k,) in _rows(store, "SELECT identity_key FROM entries")) == [
        "guid:new",
        "guid:newer",
    ]
    # Nothing left to prune.
    assert prune(store, days=DAYS, now=NOW).entries == 0


def test_tombstones_expire_only_after_their_feed_stopped_listing_them(store: Store) -> None:
    items = _feed(store)
    prune(store, days=DAYS, now=NOW)
    ttl = timedelta(days=max(DAYS, TOMBSTONE_MIN_DAYS))
    # Still listed by source a just before the tombstones would go: a's stay alive.
    listed_at = NOW + ttl - timedelta(days=1)
    _save(store, "a", *items, now=listed_at)
    later = NOW + ttl + timedelta(days=1)
    summary = prune(store, days=DAYS, now=later)
    assert summary.tombstones == 1  # b's copy, not listed since
    # (By then the recent entry is old too: pruned, with a tombstone of its own.)
    assert sorted(k for (k,) in _rows(store, "SELECT identity_key FROM tombstones")) == [
        "guid:new",
        *(f"guid:old{n}" for n in range(5)),
    ]


def test_corrections_naming_pruned_entries_are_closed_and_nothing_breaks(store: Store) -> None:
    _feed(store)
    ClusteringStage(store, semantic=False).run()
    ids = dict(_rows(store, "SELECT guid, id FROM entries"))
    stories = dict(_rows(store, "SELECT guid, story_id FROM entries"))
    store.add_override(
        "must_link", by="ed", now=NOW, entry_id=ids["old0"], other_entry_id=ids["old1"]
    )
    store.add_override("pin", by="ed", now=NOW, entry_id=ids["old2"], story_id=stories["new"])
    hide = store.add_override("hide", by="ed", now=NOW, story_id=stories["old3"])
    kept = store.add_override("hide", by="ed", now=NOW, story_id=stories["new"])
    summary = prune(store, days=DAYS, now=NOW)
    assert summary.corrections == 3
    listed = {o.id: o for o in store.overrides(include_undone=True)}
    assert len(listed) == 4
    assert listed[hide].undone_by == "retention"
    assert listed[hide].story_id is None
    assert listed[kept].undone_at is None  # its story is still there
    assert [o.id for o in store.overrides()] == [kept]
    assert not store.undo_override(hide, by="ed", now=NOW)
    # Reading, clustering and a redo all still work.
    assert store.category_stories("news", 10) == []  # the one left is hidden
    assert store.undo_override(kept, by="ed", now=NOW)
    assert [s.representative.title for s in store.category_stories("news", 10)] == ["Title new"]
    store.reset_clustering(NOW)
    assert ClusteringStage(store, semantic=False).run().entries == 1


def test_dry_run_and_retention_off_change_nothing(store: Store) -> None:
    _feed(store)
    assert prune(store, days=0, now=NOW).entries == 0
    preview = prune(store, days=DAYS, now=NOW, dry_run=True)
    assert (preview.dry_run, preview.entries) == (True, 6)
    assert _count(store, "entries") == 7
    assert _count(store, "tombstones") == 0


def test_a_merged_story_and_its_survivor_both_go(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    _save(store, "a", _item("x", OLD), _item("y", OLD, text="Other"))
    first, second = sorted(s for (s,) in _rows(store, "SELECT id FROM stories"))
    store.add_override("merge", by="ed", now=NOW, story_id=first, other_story_id=second)
    summary = prune(store, days=DAYS, now=NOW)
    # Both rows go; the count is of live stories, so the merged-away one is not one of them.
    assert (summary.entries, summary.stories) == (2, 1)
    assert _count(store, "stories") == 0


@pytest.mark.slow
def test_prune_command(tmp_path: Path) -> None:
    from aggregator.store import open_store, upgrade

    database = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(database)
    try:
        upgrade(store.engine)
        _feed(store)
    finally:
        store.close()
    config = write_config(tmp_path / "config", "", "")
    options = ["--config", str(config), "--database", database]
    env = cli_env(AGGREGATOR_RETENTION_DAYS=str(DAYS))
    dry = aggregator("prune", "--dry-run", *options, env=env).stdout
    assert "would prune" in dry
    off = aggregator("prune", *options, env=cli_env()).stdout
    assert "retention is off" in off
    done = aggregator("prune", "--days", "1", *options, env=cli_env()).stdout
    assert "pruned 7 entries" in done


def test_merged_away_stories_are_not_counted_as_stories(store: Store) -> None:
    _feed(store)
    ClusteringStage(store, semantic=False).run()
    stories = dict(_rows(store, "SELECT guid, story_id FROM entries"))
    assert store.counts()["stories"] == 6
    store.merge_stories(stories["old0"], stories["old1"], by="ed", now=NOW)
    # The admin overview's figure: one story fewer, though its row stays as history.
    assert store.counts()["stories"] == 5
    assert _count(store, "stories") == 6
    preview = prune(store, days=DAYS, now=NOW, dry_run=True)
    assert preview.stories == 4
    assert prune(store, days=DAYS, now=NOW).stories == preview.stories
    assert _count(store, "stories") == 1
