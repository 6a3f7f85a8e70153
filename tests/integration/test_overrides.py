"""Editors' corrections in the store (SQLite and PostgreSQL), without the model: each is recorded
with who and when, applied at once, kept when undone, and re-clustering keeps editors' merges."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from aggregator.store import Store
from tests.support.builders import NOW, catalog, entry, fetched, match, source


def _save(store: Store, source_id: str, *entries: object) -> None:
    store.save_poll(source_id, fetched(), body_hash=None, feed_title="Feed", feed_link=None,
                    entries=[(e, [match("news")]) for e in entries],
                    next_check_at=NOW + timedelta(minutes=30), now=NOW)


def _stories(store: Store) -> dict[str, tuple[int, str]]:
    """entry title → (story id, story uid) as the outputs show them."""
    return {e.title: (s.story_id, s.uid) for s in store.category_stories("news", 50)
            for e in s.entries}


def _ids(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT title, id FROM entries")).all())


@pytest.fixture
def filled(store: Store) -> Store:
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    _save(store, "a", entry("1", title="Old story", published_at=NOW - timedelta(hours=2)),
          entry("2", title="New story"))
    _save(store, "b", entry("3", title="Copy of old", url="https://news.example/1"))
    return store


def test_merge_keeps_the_older_story_and_survives_reclustering(filled: Store) -> None:
    before = _stories(filled)
    old_id, old_uid = before["Old story"]
    new_id, _ = before["New story"]
    override = filled.add_override("merge", by="ed", now=NOW, story_id=old_id,
                                   other_story_id=new_id, note="same event")
    after = _stories(filled)
    assert after["New story"] == after["Old story"] == (old_id, old_uid)
    assert after["Copy of old"] == (old_id, old_uid)
    [row] = filled.overrides()
    assert (row.id, row.kind, row.created_by, row.note) == (override, "merge", "ed", "same event")
    assert row.as_json()["created_at"] == NOW.isoformat()

    assert filled.reset_clustering(NOW) == 0  # nothing was clustered, nothing to redo
    assert _stories(filled)["New story"] == (old_id, old_uid)
    with filled.engine.connect() as connection:
        merged = connection.execute(sa.text(
            "SELECT merged_into_id, merged_by, entry_count FROM stories WHERE id = :id"),
            {"id": new_id}).one()
    assert tuple(merged) == (old_id, "editor", 0)


def test_split_moves_entries_to_a_story_of_their_own(filled: Store) -> None:
    before = _stories(filled)
    ids = _ids(filled)
    new_story = filled.split_story([ids["Copy of old"]], by="ed", now=NOW)
    after = _stories(filled)
    assert after["Copy of old"][0] == new_story
    assert after["Copy of old"][1] not in {uid for _, uid in before.values()}
    assert after["Old story"] == before["Old story"]
    [row] = filled.overrides()
    assert (row.kind, row.entry_id, row.story_id) == ("split", ids["Copy of old"], new_story)


def test_hide_takes_a_story_out_until_undone(filled: Store) -> None:
    story_id, _ = _stories(filled)["New story"]
    hide = filled.add_override("hide", by="ed", now=NOW, story_id=story_id)
    assert "New story" not in _stories(filled)
    assert filled.undo_override(hide, by="ed2", now=NOW)
    assert not filled.undo_override(hide, by="ed2", now=NOW)
    assert "New story" in _stories(filled)
    [row] = filled.overrides(include_undone=True)
    assert (row.undone_by, row.undone_at) == ("ed2", NOW)
    assert filled.overrides() == []


def test_bad_overrides_are_refused(filled: Store) -> None:
    ids = _ids(filled)
    with pytest.raises(ValueError, match="unknown override kind"):
        filled.add_override("delete", by="ed", now=NOW, story_id=1)
    with pytest.raises(ValueError, match="two entries"):
        filled.add_override("cannot_link", by="ed", now=NOW, entry_id=ids["New story"])
    with pytest.raises(ValueError, match="no entry"):
        filled.add_override("pin", by="ed", now=NOW, entry_id=999_999, story_id=1)
    assert filled.overrides() == []
