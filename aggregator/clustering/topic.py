"""The multilingual topic match: a category with ``topic = true`` also takes entries its keyword
rules left out when their embedding is close enough to the category's description (and
``topic_examples``), whatever the language of either.

Runs in the clustering stage, once an entry's embedding exists (the model is off the fetch
path). Both sides are compared after the stage's per-language centering, which removes what
all texts of a language share: raw e5 cosines all sit near 0.8, centered ones near 0 for
unrelated texts (docs/topic-match.md has the measurements behind the default threshold).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aggregator.catalog import Catalog, CategoryConfig
from aggregator.clustering.dedup.embed import LanguageCentering, Vector, normalize_rows
from aggregator.clustering.dedup.features import EntryInput, FeatureExtractor
from aggregator.editorial.classify import Classifiable, explain, topic_reason
from aggregator.types import CategoryMatch, CategoryOrigin

if TYPE_CHECKING:
    import numpy as np
else:
    from aggregator.clustering.dedup.lazynumpy import np

# Before the centering has seen this many entries it is mostly the neutral reference, and
# similarities run high: on the dev data, precision at the default threshold was 0.09 with no
# entry seen, 0.56 after 30 and 0.71 after 100 (0.76 with all 476; docs/topic-match.md).
# Entries clustered before are not matched; ``aggregator cluster --redo`` matches them again.
MIN_CENTERED_ENTRIES = 100


@dataclass(frozen=True)
class TopicEntry:
    """An entry the stage has embedded: its stored fields and its raw embedding."""

    entry: Classifiable
    entry_id: int
    source_id: str
    lang: str | None
    embedding: Vector


@dataclass(frozen=True)
class TopicTarget:
    """What one category compares entries with: the centered mean of its texts."""

    category_id: str
    vector: Vector
    threshold: float
    description: bool
    examples: bool


def topic_categories(catalog: Catalog | None) -> list[CategoryConfig]:
    return [c for c in catalog.categories if c.topic] if catalog is not None else []


def _texts(category: CategoryConfig) -> list[EntryInput]:
    """The category as the model reads it: its title and description, like an entry's title
    and lead, then each example on its own."""
    texts = []
    if category.description:
        texts.append(EntryInput(f"{category.id}:description", category.title, category.description))
    texts.extend(
        EntryInput(f"{category.id}:example:{n}", example, "")
        for n, example in enumerate(category.topic_examples)
    )
    return texts


class TopicMatcher:
    """Embeds the topic categories' texts (once per process and text) and matches entries."""

    def __init__(self) -> None:
        self._embedded: dict[tuple[str, str], tuple[str | None, Vector]] = {}
        self._lock = threading.Lock()

    def prepare(self, categories: Iterable[CategoryConfig], extractor: FeatureExtractor) -> None:
        """Embed the texts not seen yet: model work, to run outside any transaction."""
        with self._lock:
            todo = [
                item
                for category in categories
                for item in _texts(category)
                if (item.title, item.body) not in self._embedded
            ]
            if not todo:
                return
            for item, features in zip(todo, extractor.extract_many(todo), strict=True):
                self._embedded[(item.title, item.body)] = (features.lang, features.embedding)

    def target(self, category: CategoryConfig, centering: LanguageCentering) -> TopicTarget | None:
        """The category's centered target, or None when its texts were not prepared."""
        vectors = []
        with self._lock:
            for item in _texts(category):
                found = self._embedded.get((item.title, item.body))
                if found is None:
                    return None
                lang, raw = found
                vectors.append(centering.center(lang, raw))
        if not vectors:
            return None
        rows: Vector = np.stack(vectors).astype(np.float32)
        mean = normalize_rows(rows.mean(axis=0, keepdims=True, dtype=np.float32))[0]
        return TopicTarget(
            category.id,
            mean,
            category.threshold,
            description=bool(category.description),
            examples=bool(category.topic_examples),
        )

    def match(
        self,
        entries: Sequence[TopicEntry],
        catalog: Catalog,
        accepted: Mapping[int, set[str]],
        centering: LanguageCentering,
    ) -> list[tuple[int, CategoryMatch]]:
        """The (entry id, match) pairs to store: for each topic category of an entry's source
        that has not taken it and whose rules (the category's or the source's) exclude
        nothing of it, a match when the similarity reaches the category's threshold."""
        targets = {
            c.id: t
            for c in topic_categories(catalog)
            if (t := self.target(c, centering)) is not None
        }
        if not targets:
            return []
        categories = {c.id: c for c in catalog.categories}
        sources = {s.id: s for s in catalog.sources}
        found: list[tuple[int, CategoryMatch]] = []
        for item in entries:
            source = sources.get(item.source_id)
            if source is None:
                continue
            taken = accepted.get(item.entry_id, set())
            wanted = [c for c in source.categories if c in targets and c not in taken]
            if not wanted:
                continue
            decisions = explain(
                item.entry,
                source_categories=wanted,
                categories=categories,
                source_id=item.source_id,
            )
            vector = centering.center(item.lang, item.embedding)
            for decision in decisions:
                if decision.excluded:
                    continue
                target = targets[decision.category_id]
                similarity = float(np.dot(vector, target.vector))
                if similarity < target.threshold:
                    continue
                # The reason quotes the score as stored, so that the two never disagree in
                # the last digit shown.
                score = round(similarity, 4)
                reason = topic_reason(
                    score,
                    target.threshold,
                    description=target.description,
                    examples=target.examples,
                )
                found.append(
                    (
                        item.entry_id,
                        CategoryMatch(target.category_id, score, reason, CategoryOrigin.TOPIC),
                    )
                )
        return found
