"""``Service.apply_catalog``: a reloaded catalog reaches the store's sources, the rendered
outputs (renamed categories re-rendered, removed ones gone) and the refresher."""

from __future__ import annotations

from pathlib import Path

from aggregator.catalog import load_catalog
from aggregator.runtime.service import Service, make_outputs
from aggregator.settings import Settings
from aggregator.store import Store
from tests.support.feeds import toml_tables, write_config

SOURCES = toml_tables(
    "source",
    {"id": "one", "url": "https://one.example/feed", "categories": ["a"]},
    {"id": "two", "url": "https://two.example/feed", "categories": ["b"]},
)
CATEGORIES = toml_tables("category", {"id": "a", "title": "A"}, {"id": "b", "title": "B"})


def test_apply_catalog(tmp_path: Path, store: Store) -> None:
    config = write_config(tmp_path / "config", SOURCES, CATEGORIES)
    settings = Settings.from_env(
        {"AGGREGATOR_POLL_PROCESSES": "0", "AGGREGATOR_FEED_RECHECK_SECONDS": "3600"}
    )
    service = Service(settings, store, load_catalog(config))
    try:
        outputs = service.outputs = make_outputs(settings, store, service.catalog)
        assert outputs.document("feeds/b.atom") is not None
        before = outputs.document("feeds/a.atom")
        assert before is not None
        assert outputs.cached("feeds/a.atom") is before

        write_config(
            config,
            SOURCES.split("\n\n", maxsplit=1)[0] + "\n",
            CATEGORIES.split("\n\n", maxsplit=1)[0].replace('"A"', '"A renamed"') + "\n",
        )
        old_refresher = service.refresher
        service.apply_catalog(load_catalog(config))

        assert outputs.cached("feeds/b.atom") is None
        assert outputs.document("feeds/b.atom") is None
        after = outputs.document("feeds/a.atom")
        assert after is not None
        assert b"<title>A renamed</title>" in after.body
        assert {s.id: s.state for s in store.sources()} == {"one": "active", "two": "removed"}
        # Not serving: no poll can be under way, so the refresher is replaced at once.
        assert service.refresher is not old_refresher
        assert set(service.refresher.categories) == {"a"}
        assert service.clustering.catalog is service.catalog
    finally:
        service.close()
