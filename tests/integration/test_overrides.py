"""Editors' corrections in the store (SQLite and PostgreSQL), without the model: each is recorded
with who and when, applied at once, undone at once (kept, marked undone), and re-clustering keeps
editors' merges; category pins and hides decide what the outputs select."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from aggregator.clustering import ClusteringStage
from aggregator.publishing.outputs import Outputs
from aggregator.store import Store
from aggregator.types import NormalizedEntry
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source


def _save(store: Store, source_id: str, *entries: NormalizedEntry) -> None:
    store.save_poll(
        source_id,
        fetched(),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(e, [match("news")]) for e in entries],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    settle(store)


def _stories(store: Store) -> dict[str, tuple[int, str]]:
    """entry title → (story id, story uid) as the outputs show them."""
    return {
        e.title: (s.story_id, s.uid) for s in store.category_stories("news", 50) for e in s.entries
    }


def _ids(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT title, id FROM entries")).all())


@pytest.fixture
def filled(store: Store) -> Store:
    store.sync_sources(catalog(source("a"), source("b")), NOW)
    _save(
        store,
        "a",
        entry("1", title="Old story", published_at=NOW - timedelta(hours=2)),
        entry("2", title="New story"),
    )
    _save(store, "b", entry("3", title="Copy of old", url="https://news.example/1"))
    return store


def test_merge_keeps_the_older_story_and_survives_reclustering(filled: Store) -> None:
    before = _stories(filled)
    old_id, old_uid = before["Old story"]
    new_id, _ = before["New story"]
    override = filled.add_override(
        "merge", by="ed", now=NOW, story_id=old_id, other_story_id=new_id, note="same event"
    )
    after = _stories(filled)
    assert after["New story"] == after["Old story"] == (old_id, old_uid)
    assert after["Copy of old"] == (old_id, old_uid)
    [row] = filled.overrides()
    assert (row.id, row.kind, row.created_by, row.note) == (override, "merge", "ed", "same event")
    assert row.as_json()["created_at"] == NOW.isoformat()

    assert filled.reset_clustering(NOW) == 3  # the three entries wait for the stage again
    assert _stories(filled)["New story"] == (old_id, old_uid)
    with filled.engine.connect() as connection:
        merged = connection.execute(
            sa.text("SELECT merged_into_id, merged_by, entry_count FROM stories WHERE id = :id"),
            {"id": new_id},
        ).one()
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


# -- corrections editors make from the CLI, the API and the admin pages ----------------------


def _two_categories(store: Store) -> dict[str, int]:
    """Stories in "news" (every source) and "tech" (source t only); title → entry id."""
    store.sync_sources(
        catalog(
            source("a"), source("b"), source("t", categories=("tech",)), categories=("news", "tech")
        ),
        NOW,
    )
    hours = iter(range(10, 0, -1))

    def save(source_id: str, category: str, *entries: NormalizedEntry) -> None:
        store.save_poll(
            source_id,
            fetched(),
            body_hash=None,
            feed_title="Feed",
            feed_link=None,
            entries=[(e, [match(category, f"rule of {category}")]) for e in entries],
            next_check_at=NOW + timedelta(minutes=30),
            now=NOW,
        )

    def at(key: str, title: str, **fields: object) -> NormalizedEntry:
        return entry(key, title=title, published_at=NOW - timedelta(hours=next(hours)), **fields)

    save("a", "news", at("1", "Storm"), at("2", "Election"), at("3", "Strike"))
    save(
        "b",
        "news",
        at("4", "Storm copy", url="https://news.example/1"),
        at("5", "Election copy", url="https://news.example/2"),
    )
    save("t", "tech", at("6", "Chips"))
    settle(store)
    return _ids(store)


def _listing(store: Store, category: str) -> list[tuple[str, ...]]:
    """The category's stories in output order, each as its entries' titles."""
    return [tuple(sorted(e.title for e in s.entries)) for s in store.category_stories(category, 50)]


def _story_rows(store: Store) -> dict[int, tuple[str, int | None, int]]:
    with store.engine.connect() as connection:
        return {
            row.id: (row.uid, row.merged_into_id, row.entry_count)
            for row in connection.execute(
                sa.text("SELECT id, uid, merged_into_id, entry_count FROM stories")
            )
        }


def _entry_rows(store: Store) -> dict[int, tuple[int, int, str | None]]:
    with store.engine.connect() as connection:
        return {
            row.id: (row.story_id, row.origin_story_id, row.story_signal)
            for row in connection.execute(
                sa.text("SELECT id, story_id, origin_story_id, story_signal FROM entries")
            )
        }


def test_undoing_a_merge_gives_the_merged_story_back_at_once(store: Store) -> None:
    ids = _two_categories(store)
    stories_before, entries_before = _story_rows(store), _entry_rows(store)
    storm = entries_before[ids["Storm"]][0]
    election = entries_before[ids["Election"]][0]
    assert storm < election

    override = store.merge_stories(election, storm, by="ed", now=NOW, note="one event")
    assert ("Election", "Election copy", "Storm", "Storm copy") in _listing(store, "news")
    assert _story_rows(store)[election][1:] == (storm, 0)
    with pytest.raises(ValueError, match="already one story"):
        store.merge_stories(storm, election, by="ed", now=NOW)

    assert store.undo_override(override, by="ed2", now=NOW + timedelta(minutes=1))
    # Same ids, uids and members as before the merge: the output items are the same again.
    assert {k: v[:2] for k, v in _story_rows(store).items()} == {
        k: v[:2] for k, v in stories_before.items()
    }
    assert _story_rows(store)[election][2] == 2
    assert _entry_rows(store) == entries_before
    assert ("Election", "Election copy") in _listing(store, "news")
    [row] = store.overrides(include_undone=True)
    assert (row.kind, row.undone_by) == ("merge", "ed2")

    # A re-clustering afterwards reaches the same state.
    undone = _story_rows(store)
    store.reset_clustering(NOW)
    ClusteringStage(store, semantic=False).run()
    assert _story_rows(store) == undone
    assert {k: v[:2] for k, v in _entry_rows(store).items()} == {
        k: v[:2] for k, v in entries_before.items()
    }


def test_undoing_nested_merges_in_any_order_restores_every_story(store: Store) -> None:
    ids = _two_categories(store)
    before = _entry_rows(store)
    storm, election, strike = (before[ids[t]][0] for t in ("Storm", "Election", "Strike"))
    first = store.merge_stories(storm, election, by="ed", now=NOW)
    second = store.merge_stories(strike, storm, by="ed", now=NOW)
    assert {_entry_rows(store)[i][0] for i in ids.values() if i != ids["Chips"]} == {storm}
    assert store.undo_override(first, by="ed", now=NOW)  # the older one first
    assert _entry_rows(store)[ids["Election"]][0] == election
    assert _entry_rows(store)[ids["Strike"]][0] == storm
    assert store.undo_override(second, by="ed", now=NOW)
    assert _entry_rows(store) == before
    assert all(merged is None for _, merged, _ in _story_rows(store).values())


def test_split_entry_and_its_undo(store: Store) -> None:
    ids = _two_categories(store)
    before = _entry_rows(store)
    storm = before[ids["Storm"]][0]
    new_story = store.split_entry(ids["Storm copy"], by="ed", now=NOW, note="other storm")
    assert _entry_rows(store)[ids["Storm copy"]] == (new_story, new_story, "editor_pin")
    assert ("Storm copy",) in _listing(store, "news")
    assert ("Storm",) in _listing(store, "news")
    with pytest.raises(ValueError, match="only entry of story"):
        store.split_entry(ids["Storm copy"], by="ed", now=NOW)
    with pytest.raises(ValueError, match="no entry 999999"):
        store.split_entry(999_999, by="ed", now=NOW)

    [split] = store.overrides()
    assert store.undo_override(split.id, by="ed", now=NOW)
    assert _entry_rows(store) == before
    assert _entry_rows(store)[ids["Storm copy"]][0] == storm
    assert _story_rows(store)[new_story][2] == 0
    assert ("Storm", "Storm copy") in _listing(store, "news")


def test_pin_and_hide_in_a_category(store: Store) -> None:
    ids = _two_categories(store)
    entries = _entry_rows(store)
    strike, storm = entries[ids["Strike"]][0], entries[ids["Storm"]][0]
    assert ("Strike",) not in _listing(store, "tech")  # no rule of tech took it

    pin = store.pin_story(strike, "tech", by="ed", now=NOW)
    assert _listing(store, "tech") == [("Strike",), ("Chips",)]  # included, and first
    assert store.pin_story(strike, "tech", by="ed", now=NOW) == pin  # nothing new recorded
    hide = store.hide_story(storm, "news", by="ed", now=NOW)
    assert ("Storm", "Storm copy") not in _listing(store, "news")
    store.pin_story(storm, "tech", by="ed", now=NOW)
    assert ("Storm", "Storm copy") in _listing(store, "tech")  # hidden in news only
    everywhere = store.hide_story(storm, None, by="ed", now=NOW)
    assert ("Storm", "Storm copy") not in _listing(store, "tech")  # a hide beats a pin
    assert [o.category for o in store.overrides() if o.kind == "hide"] == ["news", None]

    detail = store.story_detail(storm)
    assert detail is not None
    assert (detail.pinned_in, detail.hidden_in, detail.hidden_everywhere) == (
        ("tech",),
        ("news",),
        True,
    )

    for override in (everywhere, hide, pin):
        assert store.undo_override(override, by="ed", now=NOW)
    assert ("Storm", "Storm copy") in _listing(store, "news")
    assert ("Strike",) not in _listing(store, "tech")

    with pytest.raises(ValueError, match="no story 999999"):
        store.pin_story(999_999, "tech", by="ed", now=NOW)
    with pytest.raises(ValueError, match="category is empty"):
        store.hide_story(storm, " ", by="ed", now=NOW)


def test_a_hidden_story_follows_the_story_that_absorbed_it(store: Store) -> None:
    ids = _two_categories(store)
    entries = _entry_rows(store)
    storm, election = entries[ids["Storm"]][0], entries[ids["Election"]][0]
    store.hide_story(election, "news", by="ed", now=NOW)
    store.merge_stories(storm, election, by="ed", now=NOW)
    assert not [s for s in _listing(store, "news") if "Storm" in s]


def test_story_detail_explains_entries_categories_and_corrections(store: Store) -> None:
    ids = _two_categories(store)
    storm = _entry_rows(store)[ids["Storm"]][0]
    election = _entry_rows(store)[ids["Election"]][0]
    merge = store.merge_stories(storm, election, by="ed", now=NOW, note="same")
    pin = store.pin_story(storm, "tech", by="ed", now=NOW)
    detail = store.story_detail(storm)
    assert detail is not None
    assert [e.title for e in detail.entries] == ["Storm", "Election", "Storm copy", "Election copy"]
    copy = next(e for e in detail.entries if e.title == "Storm copy")
    assert (copy.signal, copy.matched_entry_id) == ("url", ids["Storm"])
    assert [c.as_json() for c in copy.categories] == [
        {"category": "news", "score": 1.0, "reason": "rule of news"}
    ]
    assert [c.id for c in detail.corrections] == [merge, pin]
    data = detail.as_json()
    assert data["pinned_in"] == ["tech"]
    assert data["corrections"][0]["note"] == "same"
    assert data["entries"][2]["categories"][0]["reason"] == "rule of news"

    gone = store.story_detail(election)
    assert gone is not None
    assert (gone.merged_into_id, gone.entries) == (storm, ())
    assert store.story_detail(999_999) is None


def test_a_refused_correction_leaves_nothing_behind(store: Store) -> None:
    ids = _two_categories(store)
    before = (_story_rows(store), _entry_rows(store))
    storm = before[1][ids["Storm"]][0]
    with pytest.raises(ValueError, match="no story 999999"):
        store.merge_stories(storm, 999_999, by="ed", now=NOW)
    with pytest.raises(ValueError, match="applies to every category"):
        store.add_override(
            "merge", by="ed", now=NOW, story_id=storm, other_story_id=storm, category="news"
        )
    assert not store.undo_override(999_999, by="ed", now=NOW)
    assert (_story_rows(store), _entry_rows(store)) == before
    assert store.overrides(include_undone=True) == []


def test_outputs_rerender_and_the_open_archive_page_lets_hidden_stories_go(store: Store) -> None:
    ids = _two_categories(store)
    strike = _entry_rows(store)[ids["Strike"]][0]
    cat = catalog(
        source("a"), source("b"), source("t", categories=("tech",)), categories=("news", "tech")
    )
    outputs = Outputs(
        store=store,
        catalog=cat,
        base_url="https://agg.example",
        tag_authority="agg.example",
        feed_size=2,
    )
    first = outputs.document("feeds/news.json")
    assert first is not None
    pages = outputs.archives.page_count("news")
    hide = store.hide_story(strike, "news", by="ed", now=NOW)
    hidden = outputs.document("feeds/news.json")
    assert hidden is not None
    assert hidden.etag != first.etag
    assert b"Strike" not in hidden.body
    # The hidden story left the open page: it is not frozen into an archive page.
    assert outputs.archives.page_count("news") == pages
    for page in range(outputs.archives.page_count("news")):
        assert all(
            s.uid != _story_rows(store)[strike][0]
            for s in outputs.archives.page("news", page) or ()
        )
    store.undo_override(hide, by="ed", now=NOW)
    again = outputs.document("feeds/news.json")
    assert again is not None
    assert again.etag == first.etag

    tech = outputs.document("feeds/tech.json")
    store.pin_story(strike, "tech", by="ed", now=NOW)
    pinned = outputs.document("feeds/tech.json")
    assert tech is not None
    assert pinned is not None
    assert pinned.etag != tech.etag
    assert pinned.body.index(b"Strike") < pinned.body.index(b"Chips")


def test_splitting_out_the_entry_a_story_grew_from_keeps_the_story(store: Store) -> None:
    ids = _two_categories(store)
    entries = _entry_rows(store)
    storm, election = entries[ids["Storm"]][0], entries[ids["Election"]][0]
    store.merge_stories(storm, election, by="ed", now=NOW)
    before = _entry_rows(store)
    # Storm and its copy out: what is left was written into the merged-away story, so it
    # becomes the survivor's own (a re-clustering rebuilds the survivor, not the other one).
    new_story = store.split_story([ids["Storm"], ids["Storm copy"]], by="ed", now=NOW)
    after = _entry_rows(store)
    assert {after[ids[t]][:2] for t in ("Election", "Election copy")} == {(storm, storm)}
    assert {after[ids[t]][:2] for t in ("Storm", "Storm copy")} == {(new_story, new_story)}
    with store.engine.connect() as connection:
        details = [
            json.loads(d) if isinstance(d, str) else d
            for d in connection.execute(
                sa.text("SELECT detail FROM story_overrides WHERE kind = 'split' ORDER BY id")
            ).scalars()
        ]
    # Split together, kept apart from what they left only.
    assert [sorted(d["apart"]) for d in details] == [
        sorted([ids["Election"], ids["Election copy"]])
    ] * 2

    store.reset_clustering(NOW)
    ClusteringStage(store, semantic=False).run()
    assert {k: v[:2] for k, v in _entry_rows(store).items()} == {k: v[:2] for k, v in after.items()}

    for override in reversed(store.overrides()):
        if override.kind == "split":
            assert store.undo_override(override.id, by="ed", now=NOW)
    assert {k: v[:2] for k, v in _entry_rows(store).items()} == {
        k: v[:2] for k, v in before.items()
    }


def test_newest_first_walk_lists_what_the_membership_query_lists(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outputs' listing found by walking the newest stories (``_newest_in_category``)
    and by reading the category's membership are the same stories in the same order, with
    pins, hides, a merge, unsettled stories, equal publication times and a small category."""
    store.sync_sources(catalog(source("a"), source("b"), categories=("news", "tech", "rare")), NOW)
    entries = []
    for i in range(24):
        # Pairs share a publication time, so the order between them is the story id's.
        cats = (
            [match("news")]
            + ([match("tech")] if i % 3 == 0 else [])
            + ([match("rare")] if i == 7 else [])
        )
        entries.append(
            (
                entry(
                    f"w{i}",
                    title=f"Story {i} about things number {i}",
                    published_at=NOW - timedelta(hours=i // 2),
                ),
                cats,
            )
        )
    store.save_poll(
        "a",
        fetched(),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=entries,
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    settle(store)
    # Stored after the stage ran: their stories stay unsettled, in no listing.
    store.save_poll(
        "b",
        fetched(),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(entry("late", title="Not decided yet"), [match("news")])],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    story = {title: entry_story for title, (entry_story, _) in _entry_titles(store).items()}
    store.pin_story(story["Story 20 about things number 20"], "tech", by="ed", now=NOW)
    store.pin_story(story["Story 5 about things number 5"], "news", by="ed", now=NOW)
    store.hide_story(story["Story 3 about things number 3"], "tech", by="ed", now=NOW)
    store.hide_story(story["Story 2 about things number 2"], None, by="ed", now=NOW)
    store.merge_stories(
        story["Story 4 about things number 4"],
        story["Story 9 about things number 9"],
        by="ed",
        now=NOW,
    )

    def listing(category: str, limit: int) -> list[int]:
        return [s.story_id for s in store.category_stories(category, limit)]

    with Session(store.engine) as session:  # the walk answers for a category this full
        assert Store._newest_in_category(session, "news", 7) is not None
    walked: dict[tuple[str, int, int], list[int]] = {}
    for factor in (1, 4):
        monkeypatch.setattr("aggregator.store.repository.NEWEST_PAGE_FACTOR", factor)
        for category in ("news", "tech", "rare", "none"):
            for limit in (1, 2, 3, 7, 50):
                walked[category, limit, factor] = listing(category, limit)
    monkeypatch.setattr("aggregator.store.repository.NEWEST_PAGES", 0)  # membership only
    for (category, limit, _), found in walked.items():
        assert found == listing(category, limit), (category, limit)
    assert walked["news", 50, 4][0] == story["Story 5 about things number 5"]
    assert len(walked["news", 50, 4]) == 22  # 24 stories, one merged away, one hidden
    assert walked["rare", 50, 4] == [story["Story 7 about things number 7"]]


def _entry_titles(store: Store) -> dict[str, tuple[int, int]]:
    """entry title → (story id, entry id)."""
    with store.engine.connect() as connection:
        return {
            row.title: (row.story_id, row.id)
            for row in connection.execute(sa.text("SELECT title, story_id, id FROM entries"))
        }
