"""Measure the dedup pipeline on a labelled file of either shared format.

Cluster files (one article per line with ``cluster``) are scored as a clustering, pair files
(``score`` 1–4, ≤ 1.5 same story, ≥ 2.5 different, the middle ignored) pair by pair; results are
plain dicts (JSON). In memory here (features, clusterer, matcher: the tuning bench); the
command runs the store-backed pipeline (``aggregator.clustering.evaluation``) and scores it here.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

from aggregator.clustering.dedup.cluster import JOIN_MARGIN, Clusterer
from aggregator.clustering.dedup.embed import LanguageCentering
from aggregator.clustering.dedup.features import EntryFeatures, EntryInput, FeatureExtractor
from aggregator.clustering.dedup.match import Calibration, Matcher

SAME_STORY_MAX = 1.5
DIFFERENT_MIN = 2.5
# Cluster files are fed in a shuffled (fixed-seed) order: the files are grouped by story,
# which would flatter an online clusterer.
ORDER_SEED = 7
# Stand-in for "now" when an article has no date (WMT has none): all one day.
UNDATED = datetime(2014, 1, 1, tzinfo=UTC)


@dataclass
class Dataset:
    """A labelled file: articles by id, and either gold clusters or gold pairs."""

    kind: str  # "clusters" or "pairs"
    articles: dict[str, EntryInput]
    gold_lang: dict[str, str]
    clusters: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[str, str, float]] = field(default_factory=list)


def load(path: Path) -> Dataset:
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    if rows and "cluster" in rows[0]:
        data = Dataset("clusters", {}, {})
        for row in rows:
            data.articles[row["id"]] = _article(
                row["id"], row.get("title"), row.get("text"), row.get("lang"), row.get("published")
            )
            data.gold_lang[row["id"]] = row.get("lang") or ""
            data.clusters[row["id"]] = str(row["cluster"])
        return data
    data = Dataset("pairs", {}, {})
    for row in rows:
        for side in ("1", "2"):
            key = row["id" + side]
            data.articles.setdefault(
                key,
                _article(
                    key,
                    row.get("title" + side),
                    row.get("text" + side),
                    row.get("lang" + side),
                    None,
                ),
            )
            data.gold_lang[key] = row.get("lang" + side) or ""
        data.pairs.append((row["id1"], row["id2"], float(row["score"])))
    return data


def _article(
    key: str, title: str | None, text: str | None, lang: str | None, published: str | None
) -> EntryInput:
    when = datetime.fromisoformat(published) if published else None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return EntryInput(
        entry_id=key, title=title or "", body=text or "", declared_lang=lang, published=when
    )


def features_for(
    data: Dataset, extractor: FeatureExtractor
) -> tuple[dict[str, EntryFeatures], float]:
    """Features of every article and the seconds it took."""
    started = time.perf_counter()
    items = [data.articles[key] for key in sorted(data.articles)]
    found = {f.entry_id: f for f in extractor.extract_many(items)}
    return found, time.perf_counter() - started


def primed_centering(features: dict[str, EntryFeatures]) -> LanguageCentering:
    """Language means from the file's own (unlabelled) embeddings, as a store's history gives."""
    centering = LanguageCentering()
    for key in sorted(features):
        centering.update(features[key].lang, features[key].embedding)
    return centering


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def _tally(
    counts: dict[str, list[int]], data: Dataset, a: str, b: str, *, gold: bool, pred: bool
) -> None:
    """Count one pair as tp/fp/fn in its language bucket and in "overall"."""
    kind = "same_language" if data.gold_lang[a] == data.gold_lang[b] else "cross_language"
    for bucket in (kind, "overall"):
        if gold and pred:
            counts[bucket][0] += 1
        elif pred:
            counts[bucket][1] += 1
        elif gold:
            counts[bucket][2] += 1


def _scores(counts: dict[str, list[int]]) -> dict[str, object]:
    return {k: _prf(*counts[k]) for k in ("overall", "same_language", "cross_language")}


def feed_order(keys: Sequence[str]) -> list[str]:
    """The fixed shuffled order cluster files are fed in."""
    ordered = sorted(keys)
    random.Random(ORDER_SEED).shuffle(ordered)
    return ordered


def score_clusters(
    data: Dataset, keys: Sequence[str], predicted: dict[str, int]
) -> dict[str, object]:
    """Pairwise figures by language kind, B-cubed F1 and story counts of a predicted
    clustering (article key → story id) against the gold clusters."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for a, b in combinations(keys, 2):
        _tally(
            counts,
            data,
            a,
            b,
            gold=data.clusters[a] == data.clusters[b],
            pred=predicted[a] == predicted[b],
        )
    result = _scores(counts)
    result["bcubed_f1"] = round(_bcubed(keys, data.clusters, predicted), 4)
    result["entries"] = len(keys)
    result["gold_stories"] = len({data.clusters[k] for k in keys})
    result["predicted_stories"] = len({predicted[k] for k in keys})
    return result


def evaluate_clusters(
    data: Dataset,
    features: dict[str, EntryFeatures],
    calibration: Calibration,
    keys: Sequence[str] | None = None,
    join_margin: float = JOIN_MARGIN,
) -> dict[str, object]:
    keys = feed_order(keys if keys is not None else list(data.articles))
    clusterer = Clusterer(
        Matcher(calibration, primed_centering(features)),
        learn_centering=False,
        join_margin=join_margin,
    )
    started = time.perf_counter()
    decisions = [clusterer.add(features[key], UNDATED) for key in keys]
    elapsed = time.perf_counter() - started
    predicted = {key: clusterer.story_of[key] for key in keys}
    result = score_clusters(data, keys, predicted)
    result["decisions"] = {
        d: sum(1 for x in decisions if x.decision == d) for d in ("new", "join", "merge")
    }
    result["cluster_entries_per_s"] = round(len(keys) / elapsed, 1) if elapsed else None
    return result


def _bcubed(keys: Sequence[str], gold: dict[str, str], predicted: dict[str, int]) -> float:
    by_gold: dict[str, set[str]] = defaultdict(set)
    by_pred: dict[int, set[str]] = defaultdict(set)
    for key in keys:
        by_gold[gold[key]].add(key)
        by_pred[predicted[key]].add(key)
    precision = recall = 0.0
    for key in keys:
        g, p = by_gold[gold[key]], by_pred[predicted[key]]
        both = len(g & p)
        precision += both / len(p)
        recall += both / len(g)
    precision /= len(keys)
    recall /= len(keys)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score_pairs(
    data: Dataset,
    same_story: Callable[[str, str], bool],
    pairs: Sequence[tuple[str, str, float]] | None = None,
) -> dict[str, object]:
    """Figures of a same-story judgement on the labelled pairs (the middle scores ignored)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    used = ignored = 0
    for a, b, score in pairs if pairs is not None else data.pairs:
        if SAME_STORY_MAX < score < DIFFERENT_MIN:
            ignored += 1
            continue
        used += 1
        _tally(counts, data, a, b, gold=score <= SAME_STORY_MAX, pred=same_story(a, b))
    result = _scores(counts)
    result["pairs_used"] = used
    result["pairs_ignored"] = ignored
    return result


def evaluate_pairs(
    data: Dataset,
    features: dict[str, EntryFeatures],
    calibration: Calibration,
    pairs: Sequence[tuple[str, str, float]] | None = None,
) -> dict[str, object]:
    matcher = Matcher(calibration, primed_centering(features))
    return score_pairs(
        data, lambda a, b: matcher.compare(features[a], features[b]).same_story, pairs
    )


def run(
    path: Path, extractor: FeatureExtractor, calibration: Calibration | None = None
) -> dict[str, object]:
    """The whole evaluation of one file in memory (features, then the clusterer or matcher);
    ``aggregator eval dedup`` runs the store-backed pipeline instead
    (``aggregator.clustering.evaluation``)."""
    calibration = calibration or Calibration()
    data = load(path)
    features, seconds = features_for(data, extractor)
    if data.kind == "clusters":
        result = evaluate_clusters(data, features, calibration)
    else:
        result = evaluate_pairs(data, features, calibration)
    result["file"] = path.name
    result["kind"] = data.kind
    result["articles"] = len(data.articles)
    result["feature_entries_per_s"] = round(len(features) / seconds, 1) if seconds else None
    return result


def split_half(key: str) -> int:
    """0 or 1 by a stable hash: used to tune on one half and report on the other."""
    return hashlib.sha256(key.encode("utf-8")).digest()[0] & 1


TUNING_HALF, HELD_OUT_HALF = 0, 1


def halves(data: Dataset) -> dict[str, int]:
    """Each article's half: by gold story for cluster files, and by connected component of
    the pair graph for pair files, so no article of the tuning half is labelled in the other
    (an article in pairs of both halves would leak what was tuned on)."""
    if data.kind == "clusters":
        return {key: split_half(story) for key, story in data.clusters.items()}
    parent = {key: key for key in data.articles}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for a, b, _ in data.pairs:
        parent[root(a)] = root(b)
    members: dict[str, list[str]] = defaultdict(list)
    for key in data.articles:
        members[root(key)].append(key)
    return {key: split_half(min(group)) for group in members.values() for key in group}
