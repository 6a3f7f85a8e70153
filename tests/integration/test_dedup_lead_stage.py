"""The clustering stage hands the model the lead of an entry's extracted article page when the
full-text stage stored one, without the page's consent notice; otherwise the feed's text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from aggregator.clustering import ClusteringStage, Models
from aggregator.clustering.dedup.embed import DIM, REFERENCE_TEXTS
from aggregator.clustering.dedup.features import FeatureExtractor
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.store import Store
from aggregator.store.fulltext import FullTextRecord
from aggregator.types import FullTextOutcome
from tests.support.builders import NOW, catalog, entry, fetched, match, source


class RecordingEmbedder:
    """Stands in for the model: remembers what it read, gives each text its own axis."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            self.read.append(text)
            rows[row, len(self.read) % DIM] = 1.0
        return rows


def test_the_model_reads_the_extracted_page_without_its_furniture(store: Store) -> None:
    store.sync_sources(catalog(source("a")), NOW)
    paged = entry("one", title="Minister resigns", text="Minister resigns. Short teaser.")
    plain = entry("two", title="Harbour reopens", text="Harbour reopens. Ships are back.")
    store.save_poll(
        "a",
        fetched(),
        body_hash=None,
        feed_title="F",
        feed_link=None,
        entries=[(paged, [match("news")]), (plain, [match("news")])],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    with store.engine.connect() as connection:
        ids = {
            title: int(entry_id)
            for title, entry_id in connection.execute(sa.text("SELECT title, id FROM entries"))
        }
    page = (
        "We use cookies to give you the best experience on our website.\n"
        "The minister resigned on Friday after losing the confidence vote."
    )
    store.save_full_text(
        FullTextRecord(
            entry_id=ids["Minister resigns"],
            source_id="a",
            url="https://news.example/one",
            outcome=FullTextOutcome.EXTRACTED,
            entry_hash=paged.content_hash,
            checked_at=NOW,
            text=page,
            content_html=f"<p>{page}</p>",
        )
    )
    embedder = RecordingEmbedder()
    models = Models(FeatureExtractor(LanguageDetector(), embedder))
    ClusteringStage(store, max_age=None, models=models, clock=lambda: NOW).run()
    entries = [text for text in embedder.read if text not in REFERENCE_TEXTS]
    assert sorted(entries) == [
        "Harbour reopens. Ships are back.",
        "Minister resigns. The minister resigned on Friday after losing the confidence vote.",
    ]
