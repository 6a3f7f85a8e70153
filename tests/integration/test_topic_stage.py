"""The topic match inside the clustering stage, on a real store (SQLite and PostgreSQL) filled by
a real poll, with the real model: what the keyword rules left out at fetch time is taken once
the entry is embedded, with its score and reason stored beside the keyword decisions."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig, parse_rule
from aggregator.clustering import ClusteringStage, Models
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.runtime.service import Service
from aggregator.settings import Settings
from aggregator.store import Store
from tests.support.feeds import rss
from tests.support.stories import (
    AI_ACT_DE,
    AI_ACT_EN,
    AI_ACT_FR,
    FERRY_EN,
    FERRY_FR,
    RAIL_EN,
    STAGE_NOW,
)

FEEDS = {
    "wire": ("en", [AI_ACT_EN, FERRY_EN, RAIL_EN]),
    "journal": ("fr", [AI_ACT_FR, FERRY_FR]),
    "zeitung": ("de", [AI_ACT_DE]),
}
# With a centering that has seen only these six entries the AI Act reports score 0.14 to 0.38
# and the others 0.0 or less (tests/unit/test_topic_match.py); the default threshold assumes
# a store that has seen far more.
AI = CategoryConfig(
    id="ai-policy",
    title="AI regulation",
    description="Laws, regulation and oversight of artificial intelligence.",
    include=(parse_rule("Artificial Intelligence Act"),),
    exclude=(parse_rule("Black Friday"),),
    topic=True,
    topic_threshold=0.1,
)


def poll(
    store: Store,
    server: FeedServer,
    tmp_path: Path,
    feeds: dict[str, tuple[str, list[dict[str, str]]]] = FEEDS,
) -> Catalog:
    sources = []
    for source_id, (language, items) in feeds.items():
        server.set(f"/{source_id}.xml", Resource(body=rss(source_id, items, language)))
        # The German paper's own rule keeps out whatever names Breton, topic or not.
        exclude = (parse_rule("Breton"),) if source_id == "zeitung" else ()
        sources.append(
            SourceConfig(
                id=source_id,
                url=server.url(f"/{source_id}.xml"),
                categories=("ai-policy",),
                language=language,
                exclude=exclude,
            )
        )
    catalog = Catalog(sources=tuple(sources), categories=(AI,))
    settings = Settings.from_env({}).with_overrides(
        database_url="sqlite://", config_dir=str(tmp_path), host_delay=0.0, poll_processes=0
    )
    service = Service(settings, store, catalog)
    try:
        service.poll()
    finally:
        service.close()
    return catalog


def stage(store: Store, models: Models, catalog: Catalog, **options: Any) -> ClusteringStage:
    return ClusteringStage(
        store,
        models=models,
        clock=lambda: STAGE_NOW,
        max_age=timedelta(days=7),
        catalog=catalog,
        **options,
    )


def decisions(store: Store) -> dict[str, tuple[float, str]]:
    """guid → (score, reason) of every entry the category took."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT e.guid, c.score, c.reason FROM entry_categories c "
                "JOIN entries e ON e.id = c.entry_id WHERE c.category_id = 'ai-policy'"
            )
        )
        return {guid: (score, reason) for guid, score, reason in rows}


def test_topic_match_takes_what_keywords_missed(
    store: Store, feed_server: FeedServer, tmp_path: Path, models: Models
) -> None:
    catalog = poll(store, feed_server, tmp_path)
    keyword = "include 'Artificial Intelligence Act' matched in text"
    assert decisions(store) == {"ai-act-en": (0.5, keyword)}

    # A young store (fewer entries embedded than the stage asks for) matches nothing yet.
    assert stage(store, models, catalog, topic_min_entries=1000).run().entries == 6
    assert decisions(store) == {"ai-act-en": (0.5, keyword)}

    # Clustering again (``cluster --redo``) with a store old enough: the French report, which
    # no keyword found, is taken by the topic match; the German one is on topic too but its
    # source excludes it; the ferry and rail news stay out.
    store.reset_clustering(STAGE_NOW)
    assert stage(store, models, catalog, topic_min_entries=6).run().entries == 6
    found = decisions(store)
    assert set(found) == {"ai-act-en", "ai-act-fr"}
    assert found["ai-act-en"] == (0.5, keyword)
    score, reason = found["ai-act-fr"]
    assert 0.1 <= score <= 1.0
    assert reason == f"topic similarity {score:.2f} >= 0.10 to the category description"

    # Editors see the reason with the story's explanation.
    with store.engine.connect() as connection:
        story = connection.execute(
            sa.text("SELECT story_id FROM entries WHERE guid = 'ai-act-fr'")
        ).scalar_one()
    [row] = [r for r in store.story_evidence(story) if r["title"] == AI_ACT_FR["title"]]
    assert row["categories"] == [{"category": "ai-policy", "score": score, "reason": reason}]

    # Once more: nothing is stored twice, nothing changes.
    store.reset_clustering(STAGE_NOW)
    stage(store, models, catalog, topic_min_entries=6).run()
    assert decisions(store) == found

    # The French paper corrects its headline: the keyword rules are applied afresh to the new
    # text, and the topic decision, made on the entry's stored embedding, stays.
    corrected = {**AI_ACT_FR, "title": AI_ACT_FR["title"] + " (mis à jour)"}
    poll(store, feed_server, tmp_path, {**FEEDS, "journal": ("fr", [corrected, FERRY_FR])})
    with store.engine.connect() as connection:
        assert (
            connection.execute(
                sa.text("SELECT title FROM entries WHERE guid = 'ai-act-fr'")
            ).scalar_one()
            == corrected["title"]
        )
    assert decisions(store) == found


def test_exact_clustering_skips_the_topic_match_with_one_warning(
    store: Store, feed_server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = poll(store, feed_server, tmp_path)
    exact = ClusteringStage(
        store, semantic=False, catalog=catalog, batch_size=2, clock=lambda: STAGE_NOW
    )
    with caplog.at_level(logging.WARNING, logger="aggregator.clustering.stage"):
        assert exact.run().entries == 6
        store.reset_clustering(STAGE_NOW)
        assert exact.run().entries == 6
    warnings = [r.getMessage() for r in caplog.records if "topic-match" in r.getMessage()]
    assert warnings == [
        "action=topic-match outcome=skipped reason=exact-clustering: the "
        "topic match needs the model"
    ]
    assert set(decisions(store)) == {"ai-act-en"}
