"""Issue 6, acceptance 2: editors' corrections (merge, split, hide, pin) survive a full re-poll
and a re-clustering, in the store and in the output feeds; undoing each ends its effect at
once, and a re-clustering afterwards reaches the same state.

A real store (SQLite and PostgreSQL) filled by polling a loopback feed server, the real
clustering model (loaded once per session), the real outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aggregator.catalog import Catalog, load_catalog
from aggregator.clustering import ClusteringStage, Models
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.publishing.outputs import Outputs
from aggregator.runtime.service import Service
from aggregator.settings import Settings
from aggregator.store import Store
from tests.support.feeds import rss, toml_tables, write_config
from tests.support.outputchecks import json_feed
from tests.support.stories import (
    AI_ACT_DE,
    AI_ACT_EN,
    AI_ACT_FR,
    DAY0,
    FERRY_EN,
    FERRY_FR,
    KOREA_EN,
    RAIL_EN,
    STAGE_NOW,
    item,
    rfc822,
)

CATEGORIES = toml_tables(
    "category",
    {"id": "news", "title": "News", "languages": ["en", "fr"]},
    {"id": "tech", "title": "Tech", "languages": ["en"], "include": ["artificial intelligence"]},
)
# source id → (language, categories)
SOURCES = {
    "wire": ("en", ("news", "tech")),
    "journal": ("fr", ("news",)),
    "coast": ("en", ("news",)),
    "port": ("fr", ("news",)),
}
# The French ferry report comes first: the story grows from it, so splitting it out leaves the
# story without the entry it was founded on (its id and uid must stay all the same).
FERRY_FR_FIRST = {**FERRY_FR, "date": rfc822(DAY0 + timedelta(days=3.9))}
# What the copy's feed lists before the copy (an empty feed is a poll error).
JAZZ_FR = item(
    "jazz-fr",
    "Le festival de jazz de Marciac dévoile sa programmation",
    "Quarante concerts en trois semaines sous le chapiteau, dont une soirée "
    "consacrée aux musiciens de la région.",
    day=3.5,
    site="port",
)
FIRST_POLL = {
    "wire": [AI_ACT_EN, RAIL_EN, KOREA_EN],
    "journal": [AI_ACT_FR, FERRY_FR_FIRST],
    "coast": [FERRY_EN],
    "port": [JAZZ_FR],
}
# The full re-poll: two entries changed at their source, and new ones, among them a copy of
# the French ferry report (same link) that must follow it into the story it was split into.
# The copy comes from a feed of its own: one feed's distinct items never share a story.
FERRY_FR_COPY = {
    **item("ferry-fr-copy", FERRY_FR["title"], FERRY_FR["body"], day=4.2),
    "link": FERRY_FR["link"],
}
SECOND_POLL = {
    "wire": [AI_ACT_EN, RAIL_EN, {**KOREA_EN, "title": KOREA_EN["title"] + " (updated)"}],
    "journal": [
        AI_ACT_FR,
        {**FERRY_FR_FIRST, "body": FERRY_FR["body"] + " Mis à jour à 14 h."},
        AI_ACT_DE,
    ],
    "coast": [FERRY_EN],
    "port": [JAZZ_FR, FERRY_FR_COPY],
}


@dataclass
class Newsroom:
    store: Store
    server: FeedServer
    catalog: Catalog
    models: Models

    def poll(self, feeds: dict[str, list[dict[str, str]]]) -> None:
        """Serve ``feeds`` and poll every source (``poll --all``), then cluster."""
        for source_id, items in feeds.items():
            self.server.set(
                f"/{source_id}.xml", Resource(body=rss(source_id, items, SOURCES[source_id][0]))
            )
        settings = Settings.from_env({}).with_overrides(
            database_url="sqlite://", host_delay=0.0, poll_processes=0
        )
        service = Service(settings, self.store, self.catalog, models=self.models)
        try:
            summary = service.poll()
        finally:
            service.close()
        assert not summary.errors
        self.cluster()

    def cluster(self) -> None:
        ClusteringStage(
            self.store, models=self.models, max_age=timedelta(days=7), clock=lambda: STAGE_NOW
        ).run()

    def redo(self) -> None:
        """``aggregator cluster --redo``: forget every decision, make them all again."""
        self.store.reset_clustering(STAGE_NOW)
        self.cluster()

    def stories(self) -> dict[str, int]:
        """guid → story id of every entry."""
        with self.store.engine.connect() as connection:
            return dict(connection.execute(sa.text("SELECT guid, story_id FROM entries")).all())

    def entry(self, guid: str) -> int:
        with self.store.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text("SELECT id FROM entries WHERE guid = :g"), {"g": guid}
                ).scalar_one()
            )

    def feed(self, category: str) -> list[dict[str, Any]]:
        """The category's JSON feed items, as a fresh process would render them."""
        outputs = Outputs(
            store=self.store,
            catalog=self.catalog,
            base_url="https://agg.example",
            tag_authority="agg.example",
            feed_size=20,
        )
        document = outputs.document(f"feeds/{category}.json")
        assert document is not None
        return list(json_feed(document.body)["items"])

    def item_ids(self, category: str) -> dict[str, str]:
        """guid of each entry the category's feed shows → the id of the item showing it."""
        shown = {
            feed_item["id"].rsplit("story/", 1)[1]: feed_item["id"]
            for feed_item in self.feed(category)
        }
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT e.guid, s.uid FROM entries e JOIN stories s ON s.id = e.story_id")
            )
            return {guid: shown[uid] for guid, uid in rows if uid in shown}


def _newsroom(store: Store, server: FeedServer, tmp_path: Path, models: Models) -> Newsroom:
    sources = toml_tables(
        "source",
        *(
            {
                "id": source_id,
                "url": server.url(f"/{source_id}.xml"),
                "language": language,
                "categories": categories,
            }
            for source_id, (language, categories) in SOURCES.items()
        ),
    )
    catalog = load_catalog(write_config(tmp_path / "config", sources, CATEGORIES))
    return Newsroom(store, server, catalog, models)


def test_corrections_survive_repoll_and_reclustering_and_undo_at_once(
    store: Store, feed_server: FeedServer, tmp_path: Path, models: Models
) -> None:
    room = _newsroom(store, feed_server, tmp_path, models)
    room.poll(FIRST_POLL)
    machine = room.stories()
    ai, ferry, rail, korea = (machine[g] for g in ("ai-act-en", "ferry-en", "rail-en", "korea-en"))
    assert machine["ai-act-fr"] == ai
    assert machine["ferry-fr"] == ferry
    assert len({ai, ferry, rail, korea}) == 4
    korea_item = room.item_ids("tech")["korea-en"]
    assert "rail-en" not in room.item_ids("tech")  # no rule of tech takes the strike

    # One of each correction.
    merge = store.merge_stories(korea, ai, by="ed", now=STAGE_NOW, note="one AI story")
    survivor = min(ai, korea)
    split_story = store.split_entry(room.entry("ferry-fr"), by="ed", now=STAGE_NOW)
    hide = store.hide_story(ferry, "news", by="ed", now=STAGE_NOW)
    pin = store.pin_story(rail, "tech", by="ed", now=STAGE_NOW)
    [split] = [o.id for o in store.overrides() if o.kind == "split"]

    def corrections_hold() -> None:
        stories = room.stories()
        assert stories["ai-act-en"] == stories["ai-act-fr"] == stories["korea-en"] == survivor
        assert stories["ferry-fr"] == split_story
        assert stories["ferry-en"] == ferry
        news, tech = room.item_ids("news"), room.item_ids("tech")
        assert news["korea-en"] == news["ai-act-fr"] == news["ai-act-en"]
        assert "ferry-en" not in news  # hidden in news
        assert "ferry-fr" in news  # the split-off report is a story of its own, not hidden
        assert "rail-en" in news
        assert room.feed("tech")[0]["url"] == RAIL_EN["link"]  # pinned: first
        assert tech["korea-en"] == tech["ai-act-en"]

    corrections_hold()
    room.poll(SECOND_POLL)  # changed entries and new ones
    corrections_hold()
    stories = room.stories()
    assert stories["ferry-fr-copy"] == split_story  # the copy followed the split entry
    room.redo()
    corrections_hold()
    assert room.stories() == stories
    assert [o.id for o in store.overrides()] == [merge, split, hide, pin]
    detail = store.story_detail(survivor)
    assert detail is not None
    assert {
        e.signal
        for e in detail.entries
        if e.entry_id in {room.entry("korea-en"), room.entry("ai-act-fr")}
    } == {"editor_pin"}
    assert [c.id for c in detail.corrections] == [merge]

    # Undo each: the effect ends at once...
    for override in (merge, split, hide, pin):
        assert store.undo_override(override, by="ed2", now=STAGE_NOW)

    def corrections_gone() -> dict[str, int]:
        stories = room.stories()
        assert stories["korea-en"] == korea  # its old id back...
        assert stories["ai-act-en"] == stories["ai-act-fr"] == ai
        assert room.item_ids("tech")["korea-en"] == korea_item  # ...and its item id
        assert stories["ferry-fr"] == stories["ferry-fr-copy"] == ferry
        news = room.item_ids("news")
        assert news["ferry-en"] == news["ferry-fr"]
        assert "rail-en" not in room.item_ids("tech")
        return stories

    at_once = corrections_gone()
    assert store.overrides() == []
    # ...and a re-clustering reaches the same stories.
    room.redo()
    assert corrections_gone() == at_once
