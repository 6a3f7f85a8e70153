"""The clustering stage computes each vector once: a new process's clusterer is warmed from the
stored features of the window (no model run for them), and only the new entries are embedded.

The real model, wrapped so that every text it is given is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aggregator.clustering import Models
from aggregator.clustering.dedup.embed import REFERENCE_TEXTS, TextEmbedder
from aggregator.clustering.dedup.features import FeatureExtractor
from aggregator.demo.feedserver import FeedServer
from aggregator.store import Store
from tests.integration.test_clustering import poll, stage, story_of
from tests.support.stories import FERRY_EN, FERRY_FR, RAIL_EN


class Recording:
    """The model, remembering every text it embeds."""

    def __init__(self, model: TextEmbedder) -> None:
        self.model = model
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.texts.extend(texts)
        return self.model.embed(texts)


def test_a_new_process_warms_up_from_stored_vectors(
    store: Store, feed_server: FeedServer, tmp_path: Path, models: Models
) -> None:
    poll(store, feed_server, tmp_path, {"wire": ("en", [FERRY_EN, RAIL_EN])})
    stage(store, models).run()
    poll(store, feed_server, tmp_path, {"journal": ("fr", [FERRY_FR])})
    # A fresh process: its own models (nothing embedded yet), its own clusterer.
    recording = Recording(models.extractor.embedder)
    fresh = Models(FeatureExtractor(models.extractor.detector, recording))
    stage(store, fresh).run()
    stories = story_of(store)
    # The French report found the English one's story: the warm-up loaded its stored vector.
    assert stories["ferry-fr"] == stories["ferry-en"] != stories["rail-en"]
    embedded = [text for text in recording.texts if text not in REFERENCE_TEXTS]
    assert len(embedded) == 1
    assert embedded[0].startswith("Grèce : un ferry")


def test_features_computed_ahead_serve_the_next_batch_and_decide_alike(
    store: Store, feed_server: FeedServer, tmp_path: Path, models: Models
) -> None:
    feeds = {"wire": ("en", [FERRY_EN, RAIL_EN]), "journal": ("fr", [FERRY_FR])}
    poll(store, feed_server, tmp_path, feeds)
    recording = Recording(models.extractor.embedder)
    fresh = Models(FeatureExtractor(models.extractor.detector, recording))
    # One entry per batch: each batch's successor is computed while it is decided.
    ahead = stage(store, fresh, batch_size=1)
    while ahead.run_batch() is not None:
        pass
    stories = story_of(store)
    assert stories["ferry-fr"] == stories["ferry-en"] != stories["rail-en"]
    embedded = [text for text in recording.texts if text not in REFERENCE_TEXTS]
    # Each entry's text went through the model once, whichever thread computed it.
    assert len(embedded) == len(set(embedded)) == 3
