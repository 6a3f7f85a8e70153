"""The clustering stage's model step apart from its decisions (issue 14, scale): any worker
computes and stores features of pending entries outside the turn and the clustering lock, and
the worker holding the turn decides them from the stored features without the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from email.utils import parsedate_to_datetime

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa

from aggregator.clustering import ClusteringStage, Models
from aggregator.clustering.dedup.embed import TextEmbedder
from aggregator.clustering.dedup.features import FeatureExtractor
from aggregator.store import Store, open_store
from aggregator.types import NormalizedEntry
from tests.support import databases
from tests.support.builders import NOW, catalog, entry, fetched, match, source
from tests.support.stories import (
    AI_ACT_DE,
    AI_ACT_EN,
    AI_ACT_FR,
    FERRY_EN,
    FERRY_FR,
    KOREA_EN,
    RAIL_EN,
    STAGE_NOW,
)

EVENTS = {
    "ai": (AI_ACT_EN, AI_ACT_FR, AI_ACT_DE),
    "ferry": (FERRY_EN, FERRY_FR),
    "rail": (RAIL_EN,),
    "korea": (KOREA_EN,),
}
ITEMS = [item for group in EVENTS.values() for item in group]
PARTITION = {frozenset(i["guid"] for i in group) for group in EVENTS.values()}


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: TextEmbedder) -> None:
        self.inner = inner
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.texts += len(texts)
        return self.inner.embed(texts)


def _counting(models: Models) -> tuple[Models, CountingEmbedder]:
    real = models.extractor
    counter = CountingEmbedder(real.embedder)
    counted = Models(FeatureExtractor(real.detector, counter, real.minhasher))
    counted.reference()  # the neutral-text reference is one embedding, paid once per process
    counter.texts = 0
    return counted, counter


def _stage(store: Store, models: Models) -> ClusteringStage:
    return ClusteringStage(
        store, models=models, clock=lambda: STAGE_NOW, max_age=timedelta(days=7), batch_size=3
    )


def _fill(store: Store) -> None:
    store.sync_sources(catalog(*(source(i["guid"]) for i in ITEMS)), NOW)
    for item in ITEMS:
        store.save_poll(
            item["guid"],
            fetched(),
            body_hash=None,
            feed_title="F",
            feed_link=None,
            entries=[(_news(item), [match("news")])],
            next_check_at=NOW,
            now=NOW,
        )


def _news(item: dict[str, str]) -> NormalizedEntry:
    published = parsedate_to_datetime(item["date"])
    return entry(
        item["guid"],
        title=item["title"],
        text=item["body"],
        url=item["link"],
        link=item["link"],
        language=None,
        published_at=published,
        updated_at=published,
    )


def _scalar(store: Store, query: str) -> object:
    with store.engine.connect() as connection:
        return connection.execute(sa.text(query)).scalar()


def _partition(store: Store) -> set[frozenset[str]]:
    with store.engine.connect() as connection:
        found: dict[int, set[str]] = {}
        for guid, story in connection.execute(sa.text("SELECT guid, story_id FROM entries")):
            found.setdefault(story, set()).add(guid)
    return {frozenset(group) for group in found.values()}


def test_extracted_features_are_decided_without_the_model(store: Store, models: Models) -> None:
    _fill(store)
    counted, counter = _counting(models)
    extracted = _stage(store, counted).extract()
    assert extracted == len(ITEMS)
    assert counter.texts == len(ITEMS)
    assert _scalar(store, "SELECT count(*) FROM entry_features") == len(ITEMS)
    # The model step decides nothing: every entry is still pending.
    assert _scalar(store, "SELECT count(*) FROM entries WHERE clustered_at IS NULL") == len(ITEMS)
    assert _stage(store, counted).extract() == 0  # nothing left without features

    counter.texts = 0
    summary = _stage(store, counted).run()
    assert summary.entries == len(ITEMS)
    assert counter.texts == 0  # the decisions read the stored features
    assert _partition(store) == PARTITION
    assert _scalar(store, "SELECT count(*) FROM entries WHERE clustered_at IS NULL") == 0


def test_features_stored_twice_keep_the_first_row(store: Store, models: Models) -> None:
    _fill(store)
    stage = _stage(store, models)
    rows = store.unfeatured_entries(len(ITEMS))
    assert len(rows) == len(ITEMS)
    # Newest first: the opposite end of the queue from the turn's holder.
    assert [r.published_at for r in rows] == sorted((r.published_at for r in rows), reverse=True)
    computed = stage._compute(rows, STAGE_NOW)
    records = [computed[r.id].to_record() for r in rows]
    assert store.save_features(records, "first", STAGE_NOW) == len(ITEMS)
    assert store.save_features(records, "second", STAGE_NOW) == 0
    assert _scalar(store, "SELECT count(DISTINCT model) FROM entry_features") == 1
    assert _scalar(store, "SELECT min(model) FROM entry_features") == "first"
    assert store.unfeatured_entries(len(ITEMS)) == []


@pytest.fixture
def two_workers(pg_template: str) -> Iterator[tuple[Store, Store]]:
    with databases.fresh_postgres(template=pg_template) as url:
        stores = (open_store(url), open_store(url))
        yield stores
        for one in stores:
            one.close()


@pytest.mark.postgres
def test_a_worker_without_the_turn_computes_the_features_the_holder_decides(
    two_workers: tuple[Store, Store], models: Models
) -> None:
    a, b = two_workers
    _fill(a)
    counted, counter = _counting(models)
    with a.clustering_turn() as mine:
        assert mine
        summary = _stage(b, counted).run()
        assert summary.skipped
        assert (summary.entries, summary.extracted) == (0, len(ITEMS))
        assert counter.texts == len(ITEMS)
        assert _scalar(a, "SELECT count(*) FROM entries WHERE clustered_at IS NULL") == len(ITEMS)
    counter.texts = 0
    summary = _stage(a, counted).run()
    assert (summary.skipped, summary.entries) == (False, len(ITEMS))
    assert counter.texts == 0
    assert _partition(a) == PARTITION
