"""Feature extraction runs the model once per distinct text, within a call and across recent
calls: a wire story's copies in later polls reuse its vector.

A counting stand-in replaces the model; the language detector is the real one (light).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from aggregator.clustering.dedup.embed import DIM, embedding_text, normalize_rows
from aggregator.clustering.dedup.features import EntryInput, FeatureExtractor, RecentVectors
from aggregator.clustering.dedup.language import LanguageDetector


class CountingEmbedder:
    """A vector per text derived from its hash; remembers every text it was asked for."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.seen.extend(texts)
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=DIM) for t in texts]
        return normalize_rows(np.asarray(rows, dtype=np.float32))


WIRE = EntryInput("1", "Ferry strike halts crossings", "Unions called the strike on Monday.", "en")
COPY = EntryInput("2", WIRE.title, WIRE.body, "en")
OTHER = EntryInput("3", "Council passes budget", "Schools and roads get more money.", "en")


@pytest.fixture
def model() -> CountingEmbedder:
    return CountingEmbedder()


def test_a_copy_in_a_later_call_reuses_the_vector(model: CountingEmbedder) -> None:
    extractor = FeatureExtractor(LanguageDetector(), model)
    [first] = extractor.extract_many([WIRE])
    [copy, other] = extractor.extract_many([COPY, OTHER])
    assert model.seen == [
        embedding_text(WIRE.title, WIRE.body),
        embedding_text(OTHER.title, OTHER.body),
    ]
    assert np.array_equal(copy.embedding, first.embedding)
    assert copy.entry_id == "2"
    assert not np.array_equal(other.embedding, first.embedding)


def test_a_forgotten_text_is_embedded_again(model: CountingEmbedder) -> None:
    extractor = FeatureExtractor(LanguageDetector(), model)
    extractor.recent = RecentVectors(1)
    extractor.extract_many([WIRE])
    extractor.extract_many([OTHER])
    extractor.extract_many([COPY])
    assert len(model.seen) == 3


def test_recent_vectors_forget_the_oldest_first() -> None:
    recent = RecentVectors(2)
    vectors = [np.full(DIM, float(i), dtype=np.float32) for i in range(3)]
    recent.put("a", vectors[0])
    recent.put("b", vectors[1])
    assert recent.get("a") is not None  # "a" is now the newest used
    recent.put("c", vectors[2])
    assert len(recent) == 2
    assert recent.get("b") is None
    found = recent.get("a")
    assert found is not None
    assert np.array_equal(found, vectors[0])


def test_recent_vectors_of_size_zero_keep_nothing() -> None:
    recent = RecentVectors(0)
    recent.put("a", np.zeros(DIM, dtype=np.float32))
    assert recent.get("a") is None


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        RecentVectors(-1)
