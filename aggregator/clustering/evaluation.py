"""``aggregator eval dedup``: a labelled file through the real pipeline in a throwaway store.

Each article becomes a feed item and goes through normalize and the store's write path (exact
URL and text signals), then the clustering stage (language, features, clusterer) as a poll's
entries do; the stories the store ends with are scored against the labels (``dedup.evaluate``).
"""

from __future__ import annotations

import html
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.clustering.dedup.embed import LanguageCentering
from aggregator.clustering.dedup.evaluate import (
    HELD_OUT_HALF,
    TUNING_HALF,
    UNDATED,
    Dataset,
    feed_order,
    halves,
    load,
    score_clusters,
    score_pairs,
)
from aggregator.clustering.dedup.features import EntryFeatures, EntryInput
from aggregator.clustering.dedup.match import Calibration, Matcher
from aggregator.clustering.stage import ClusteringStage, Models
from aggregator.polling.normalize import normalize_feed
from aggregator.store import Store, open_store, upgrade
from aggregator.types import FetchResult, ParsedEntry, ParsedFeed

SOURCE_ID = "eval"
FEED_URL = "https://eval.invalid/feed.xml"


def evaluate_file(
    path: Path, models: Models, calibration: Calibration | None = None
) -> dict[str, object]:
    """Figures for one labelled file, as the command prints them (JSON-ready)."""
    data = load(path)
    clusters = data.kind == "clusters"
    # Cluster files are grouped by story: fed in a fixed shuffled order so the online
    # clusterer is not flattered; pair files in id order.
    keys = feed_order(list(data.articles)) if clusters else sorted(data.articles)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aggregator-eval-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'eval.db'}")
        try:
            upgrade(store.engine)
            store.sync_sources(
                Catalog(
                    sources=(SourceConfig(id=SOURCE_ID, url=FEED_URL, categories=("all",)),),
                    categories=(CategoryConfig(id="all", title="All"),),
                ),
                UNDATED,
            )
            for key in keys:
                _store_article(store, data.articles[key])
            # Every article is written to one source here, though they come from many
            # outlets: the rule that keeps one feed's items apart would join nothing.
            stage = ClusteringStage(
                store,
                max_age=None,
                models=models,
                calibration=calibration,
                clock=lambda: UNDATED,
                feeds_apart=False,
            )
            summary = stage.run()
            story_of = store.entry_stories(SOURCE_ID)
            alias = _aliases(data, keys, story_of)
            if not clusters:
                matcher = _pairwise(store, models, calibration, alias)
        finally:
            store.close()
    elapsed = time.perf_counter() - started
    predicted = {key: story_of[alias[key]] for key in keys}
    if clusters:
        result = score_clusters(data, keys, predicted)
        result["decisions"] = {d: summary.count(d) for d in ("new", "join", "merge")}
    else:
        result = score_pairs(data, lambda a, b: predicted[a] == predicted[b])
        # Pairs are also judged one by one on the stored features, as the matcher sees them:
        # the clustering above asks more of a pair (the join margin) than the matcher does.
        result["pairwise_matcher"] = {
            key: value
            for key, value in score_pairs(data, matcher).items()
            if key in ("overall", "same_language", "cross_language")
        }
    result["halves"] = _by_half(data, keys, predicted)
    clustering_seconds = summary.seconds - summary.feature_seconds
    result["cluster_entries_per_s"] = _rate(len(keys), clustering_seconds)
    result["file"] = path.name
    result["kind"] = data.kind
    result["articles"] = len(data.articles)
    result["feature_entries_per_s"] = _rate(len(keys), summary.feature_seconds)
    # The whole pipeline: normalize, write, features, clustering and their transactions.
    result["entries_per_s"] = _rate(len(keys), elapsed)
    return result


def _by_half(data: Dataset, keys: list[str], predicted: dict[str, int]) -> dict[str, object]:
    """The same run scored on each half (``dedup.evaluate.halves``): calibrations are chosen on
    the tuning half's labels only, and the held-out half is the figure that generalizes."""
    half = halves(data)
    result: dict[str, object] = {}
    for name, which in (("tuning", TUNING_HALF), ("held_out", HELD_OUT_HALF)):
        if data.kind == "clusters":
            scored = score_clusters(data, [k for k in keys if half[k] == which], predicted)
            result[name] = {k: scored[k] for k in ("cross_language", "same_language", "overall")}
        else:
            pairs = [p for p in data.pairs if half[p[0]] == which]
            scored = score_pairs(data, lambda a, b: predicted[a] == predicted[b], pairs)
            result[name] = {k: scored[k] for k in ("overall", "same_language", "cross_language")}
    return result


def _aliases(data: Dataset, keys: list[str], story_of: dict[str, int]) -> dict[str, str]:
    """Each article's stored entry. The store keeps one entry for items of one feed with the
    same text (a republished item), so an article folded that way stands for the one it repeats
    (the SemEval file has a few identical "blocked by the publisher" pages)."""
    stored = {(data.articles[k].title, data.articles[k].body): k for k in keys if k in story_of}
    alias = {}
    for key in keys:
        text = (data.articles[key].title, data.articles[key].body)
        if key not in story_of and text not in stored:
            raise ValueError(f"article {key} left no entry in the store")
        alias[key] = key if key in story_of else stored[text]
    return alias


def _pairwise(
    store: Store, models: Models, calibration: Calibration | None, alias: dict[str, str]
) -> Callable[[str, str], bool]:
    """Same-story judgements of the pairwise matcher on what the stage stored."""
    features = {
        key: EntryFeatures.from_record(record)
        for key, record in store.entry_features(SOURCE_ID).items()
    }
    centering = LanguageCentering.from_state(store.centering_state(), models.reference())
    matcher = Matcher(calibration or Calibration(), centering)
    return lambda a, b: matcher.compare(features[alias[a]], features[alias[b]]).same_story


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def _store_article(store: Store, article: EntryInput) -> None:
    """One article as one poll of the source, so entry ids follow the feed order."""
    paragraphs = [p for p in article.body.split("\n") if p.strip()]
    item = ParsedEntry(
        guid=article.entry_id,
        title=article.title or None,
        content="".join(f"<p>{html.escape(p)}</p>" for p in paragraphs) or None,
        published=article.published,
        language=article.declared_lang,
    )
    entries = normalize_feed(
        ParsedFeed(entries=(item,)), feed_url=FEED_URL, source_language=None, now=UNDATED
    )
    store.save_poll(
        SOURCE_ID,
        FetchResult(url=FEED_URL, status=200, content=b"", headers={}),
        body_hash=None,
        feed_title=None,
        feed_link=None,
        entries=[(entry, ()) for entry in entries],
        next_check_at=UNDATED,
        now=UNDATED,
    )
