"""Online story clustering: entries arrive one by one and join, start or merge stories.

Candidate search is bounded by a time window: only stories updated within ``WINDOW`` of the
entry are in the active index (a matrix of story centroids for the embedding, LSH buckets for
MinHash), so the cost per entry stays flat as the store grows. Deterministic for one input
order. Editor overrides (must-link, cannot-link, pins) are respected, and so is the caller's
``apart`` rule (two entries of one feed that are not one item never share a story).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aggregator.clustering.dedup import shingles
from aggregator.clustering.dedup.centroids import CentroidTable
from aggregator.clustering.dedup.embed import Vector, normalize_rows
from aggregator.clustering.dedup.features import EntryFeatures
from aggregator.clustering.dedup.match import Match, Matcher

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from aggregator.clustering.dedup.lazynumpy import np

# Stories whose newest member is further than this from an entry's time are not candidates.
WINDOW = timedelta(days=3)
# How many stories, by centroid cosine, are compared member by member.
TOP_STORIES = 8
# Members compared per candidate story (the newest ones): bounds the cost of huge stories.
MAX_MEMBERS_COMPARED = 24
# Joining a story online needs this much more than the pairwise threshold: a wrong join
# cascades (later translations of the true story follow the wrong entry), so clustering wants
# higher precision per decision than a lone pairwise judgement. Chosen on the tuning halves of
# the dev files with average-link scoring, in the matcher's space (language means and part of
# the top direction removed, ``LanguageCentering.story_space``; docs/dedup.md).
JOIN_MARGIN = 0.13
# A second story matched this far above the join level is merged into the best one (bridging).
MERGE_MARGIN = 0.03

NEW, JOIN, MERGE = "new", "join", "merge"
# How a candidate story scores: its best member's match, or the mean over the members compared
# (a story of translations agrees with itself; a same-theme neighbour matches one member only).
BEST, AVERAGE = "best", "average"
# Time of a loaded member that has none: sorts before everything, so it is evicted first.
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Overrides:
    """Editors' corrections. Pairs are unordered entry ids; ``pinned`` maps an entry to the
    story it must be in (a split moves entries to a new story by pinning them)."""

    must_link: frozenset[frozenset[str]] = frozenset()
    cannot_link: frozenset[frozenset[str]] = frozenset()
    pinned: dict[str, int] = field(default_factory=dict)

    def cannot(self, first: str, second: str) -> bool:
        return frozenset((first, second)) in self.cannot_link

    def must_partners(self, entry_id: str) -> list[str]:
        return sorted(
            next(iter(p - {entry_id})) for p in self.must_link if entry_id in p and len(p) == 2
        )


@dataclass(frozen=True)
class Decision:
    """What happened to one entry, for the store and for editors.

    ``story_id`` is the story the entry ends in; ``merged_story_ids`` are the stories a bridging
    entry merged into it (they no longer exist), so the store can mirror the merge.
    """

    entry_id: str
    story_id: int
    decision: str
    best_signal: str
    score: float
    matched_entry_id: str | None
    evidence: dict[str, float]
    merged_story_ids: tuple[int, ...] = ()


@dataclass
class Story:
    """A story's in-memory state; ``centroid_sum`` is the sum of centered member vectors."""

    story_id: int
    first_seen: datetime
    last_seen: datetime
    members: list[str]
    centroid_sum: npt.NDArray[np.float64]
    # Seniority: stored stories (loaded) by their id, then the ones this clusterer founded in
    # the order it founded them, so the lower one is the story readers may have seen already.
    born: tuple[int, int] = (0, 0)
    # Every entry's candidate search reads every active story's centroid; normalizing them all
    # afresh each time was two thirds of the stage's cost without the model.
    _centroid: Vector | None = field(default=None, repr=False, compare=False)

    def add_to_centroid(self, vector: npt.NDArray[np.floating[Any]]) -> None:
        self.centroid_sum += vector
        self._centroid = None

    def centroid(self) -> Vector:
        if self._centroid is None:
            self._centroid = normalize_rows(self.centroid_sum.astype(np.float32))
        return self._centroid


class Clusterer:
    """Assigns entries to stories online. Build once per process, feed entries in order."""

    def __init__(
        self,
        matcher: Matcher,
        *,
        overrides: Overrides | None = None,
        window: timedelta = WINDOW,
        allocate_story_id: Callable[[], int] | None = None,
        learn_centering: bool = True,
        join_margin: float = JOIN_MARGIN,
        apart: Callable[[str, str], bool] | None = None,
        link: str = AVERAGE,
    ) -> None:
        self.matcher = matcher
        self.overrides = overrides or Overrides()
        # Pairs that may never share a story whatever the model says, like a cannot-link.
        self.apart = apart
        self.window = window
        self.stories: dict[int, Story] = {}
        # The stories' centroids and spans, in the order of ``stories`` (candidate search).
        self._table = CentroidTable()
        self.story_of: dict[str, int] = {}
        self._features: dict[str, EntryFeatures] = {}
        self._vectors: dict[str, Vector] = {}
        self._buckets: dict[bytes, list[str]] = {}
        self._next_id = 1
        self._births = itertools.count()
        self._allocate = allocate_story_id
        self._newest: datetime | None = None
        # Off when the caller primed the centering with a known population (evaluation).
        self._learn_centering = learn_centering
        self.join_margin = join_margin
        self.link = link
        # Entries placed by an editor's pin or must-link rather than by a match.
        self._forced: set[str] = set()
        # Stories active since this moment are never evicted: a caller that knows older
        # entries are coming (a batch out of time order) sets it.
        self.keep_since: datetime | None = None
        # The latest eviction horizon applied: stories idle before it may be missing here.
        self.evicted_until: datetime | None = None

    # -- persistence -----------------------------------------------------------------------

    def load(self, story_id: int, members: Iterable[EntryFeatures]) -> None:
        """Bring a stored story (and its members' features) back into the active window."""
        for features in members:
            self._add_member(
                story_id, features, self.matcher.centered(features), born=(0, story_id)
            )
        self._next_id = max(self._next_id, story_id + 1)

    # -- the online step -------------------------------------------------------------------

    def add(self, features: EntryFeatures, now: datetime) -> Decision:
        """Assign one entry; ``now`` stands in for a missing publication time."""
        moment = features.published or now
        if self._learn_centering:
            self.matcher.centering.update(features.lang, features.embedding)
        vector = self.matcher.centered(features)
        self._evict(moment)

        pinned = self.overrides.pinned.get(features.entry_id)
        if pinned is not None:
            self._forced.add(features.entry_id)
            return self._place(features, vector, pinned, JOIN, "editor_pin", 1.0, None, {}, moment)
        for partner in self.overrides.must_partners(features.entry_id):
            if partner in self.story_of:
                story_id = self.story_of[partner]
                self._forced.add(features.entry_id)
                return self._place(
                    features, vector, story_id, JOIN, "editor_link", 1.0, partner, {}, moment
                )

        ranked = self._rank(features, vector, moment)
        join_level = self.matcher.calibration.threshold + self.join_margin
        accepted = [
            (sid, m, e)
            for sid, m, e in ranked
            if m.best_signal == "minhash" or (m.same_story and m.score >= join_level)
        ]
        if not accepted:
            story_id = self._new_story_id()
            best = ranked[0] if ranked else None
            return self._place(
                features,
                vector,
                story_id,
                NEW,
                best[1].best_signal if best else "none",
                best[1].score if best else 0.0,
                best[2] if best else None,
                best[1].evidence_dict() if best else {},
                moment,
            )
        story_id, match, matched = accepted[0]
        threshold = join_level + MERGE_MARGIN
        survivor = story_id
        gone: list[int] = []
        for sid, m, _ in accepted[1:]:
            if (m.score >= threshold or m.best_signal == "minhash") and self._may_merge(
                survivor, sid
            ):
                kept = self._merge(survivor, sid)
                gone.append(sid if kept == survivor else survivor)
                survivor = kept
        decision = MERGE if gone else JOIN
        return self._place(
            features,
            vector,
            survivor,
            decision,
            match.best_signal,
            match.score,
            matched,
            match.evidence_dict(),
            moment,
            tuple(sorted(gone)),
        )

    def attach(
        self,
        features: EntryFeatures,
        story_id: int,
        now: datetime,
        *,
        signal: str,
        matched_entry_id: str | None = None,
    ) -> Decision:
        """Put an entry into a story decided elsewhere (an exact URL or text match).

        The entry still teaches the centering and joins the story's centroid and buckets, and
        the evidence compares it with ``matched_entry_id`` when that entry is in memory.
        """
        moment = features.published or now
        if self._learn_centering:
            self.matcher.centering.update(features.lang, features.embedding)
        vector = self.matcher.centered(features)
        self._evict(moment)
        evidence: dict[str, float] = {}
        if matched_entry_id is not None and matched_entry_id in self._features:
            evidence = self.matcher.compare(
                features,
                self._features[matched_entry_id],
                vector,
                self._vectors[matched_entry_id],
            ).evidence_dict()
        return self._place(
            features, vector, story_id, JOIN, signal, 1.0, matched_entry_id, evidence, moment
        )

    def rename(self, old: int, new: int) -> None:
        """Give an in-memory story another id (the store kept the older of two stories)."""
        if old == new or old not in self.stories:
            return
        if new in self.stories:
            self._merge(new, old, survivor=new)
            return
        story = self.stories.pop(old)
        story.story_id = new
        self.stories[new] = story
        self._table.remove(old)
        self._table.add(new)
        for member in story.members:
            self.story_of[member] = new
        self._next_id = max(self._next_id, new + 1)

    # -- internals -------------------------------------------------------------------------

    def _rank(
        self, features: EntryFeatures, vector: Vector, moment: datetime
    ) -> list[tuple[int, Match, str]]:
        """Candidate stories with their best member match, best first (ties by story id)."""
        candidates: set[int] = set()
        threshold = self.matcher.calibration.threshold
        forced = self._forced | set(self.overrides.pinned)
        ids, matrix = self._table.active(self.stories, moment, self.window)
        if len(ids):
            sims = matrix @ vector
            order = np.lexsort((ids, -sims))[:TOP_STORIES]
            candidates.update(int(ids[i]) for i in order)
        for key in shingles.band_keys(features.minhash):
            for other in self._buckets.get(key, ()):
                if other in self.story_of:
                    candidates.add(self.story_of[other])
        results: list[tuple[int, Match, str]] = []
        for story_id in sorted(candidates):
            story = self.stories.get(story_id)
            if story is None or any(self.separated(features.entry_id, m) for m in story.members):
                continue
            best: tuple[Match, str] | None = None
            scores: dict[str, float] = {}
            compared = story.members[-MAX_MEMBERS_COMPARED:]
            for member in compared:
                match = self.matcher.compare(
                    features, self._features[member], vector, self._vectors[member]
                )
                scores[member] = match.score
                if (
                    best is None
                    or match.score > best[0].score
                    or (match.best_signal == "minhash" and best[0].best_signal != "minhash")
                ):
                    best = (match, member)
            # Members an editor put there (pins, must-links) say nothing about whether the
            # story agrees with itself: the mean is over the members the clusterer placed.
            placed = [m for m in compared if m not in forced] or compared
            if best is not None and self.link == AVERAGE and best[0].best_signal != "minhash":
                mean = sum(scores[m] for m in placed) / len(placed)
                best = (replace(best[0], score=mean, same_story=mean >= threshold), best[1])
            if best is not None:
                results.append((story_id, best[0], best[1]))
        results.sort(key=lambda r: (not r[1].same_story, -r[1].score, r[0]))
        return results

    def _may_merge(self, keep: int, other: int) -> bool:
        if other not in self.stories or keep == other:
            return False
        a, b = self.stories[keep].members, self.stories[other].members
        if any(self.overrides.pinned.get(m) is not None for m in a + b):
            return False
        return not any(self.separated(x, y) for x in a for y in b)

    def separated(self, first: str, second: str) -> bool:
        """An editor's cannot-link, or the caller's ``apart`` rule, keeps them apart."""
        if self.overrides.cannot(first, second):
            return True
        return self.apart is not None and self.apart(first, second)

    def _merge(self, keep: int, other: int, survivor: int | None = None) -> int:
        """Merge two stories; returns the one that survives."""
        # The older story survives, so the ids readers saw stay; story ids follow the order
        # entries were stored in, not the order they were decided in, so they cannot tell.
        if survivor is None:
            survivor = min(keep, other, key=lambda s: (self.stories[s].born, s))
        gone = other if survivor == keep else keep
        dead = self.stories.pop(gone)
        self._table.remove(gone)
        story = self.stories[survivor]
        story.members.extend(dead.members)
        story.add_to_centroid(dead.centroid_sum)
        story.first_seen = min(story.first_seen, dead.first_seen)
        story.last_seen = max(story.last_seen, dead.last_seen)
        self._table.touch(survivor)
        for member in dead.members:
            self.story_of[member] = survivor
        return survivor

    def _place(
        self,
        features: EntryFeatures,
        vector: Vector,
        story_id: int,
        decision: str,
        signal: str,
        score: float,
        matched: str | None,
        evidence: dict[str, float],
        moment: datetime,
        merged: tuple[int, ...] = (),
    ) -> Decision:
        self._add_member(story_id, features, vector, moment)
        return Decision(
            features.entry_id,
            story_id,
            decision,
            signal,
            round(score, 4),
            matched,
            evidence,
            merged,
        )

    def _add_member(
        self,
        story_id: int,
        features: EntryFeatures,
        vector: Vector,
        moment: datetime | None = None,
        born: tuple[int, int] | None = None,
    ) -> None:
        when = moment or features.published or NO_TIME
        story = self.stories.get(story_id)
        if story is None:
            story = Story(
                story_id,
                when,
                when,
                [],
                np.zeros(vector.shape[-1], dtype=np.float64),
                born=born or (1, next(self._births)),
            )
            self.stories[story_id] = story
            self._table.add(story_id)
        story.members.append(features.entry_id)
        story.add_to_centroid(vector)
        story.first_seen = min(story.first_seen, when)
        story.last_seen = max(story.last_seen, when)
        self._table.touch(story_id)
        self.story_of[features.entry_id] = story_id
        self._features[features.entry_id] = features
        self._vectors[features.entry_id] = vector
        for key in shingles.band_keys(features.minhash):
            self._buckets.setdefault(key, []).append(features.entry_id)
        self._newest = when if self._newest is None else max(self._newest, when)

    def _new_story_id(self) -> int:
        if self._allocate is not None:
            return self._allocate()
        story_id = self._next_id
        self._next_id += 1
        return story_id

    def _evict(self, moment: datetime) -> None:
        """Drop stories idle for two windows behind the newest entry seen: the store keeps them."""
        if self._newest is None:
            return
        horizon = max(self._newest, moment) - 2 * self.window
        if self.keep_since is not None:
            horizon = min(horizon, self.keep_since)
        idle = self._table.idle(self.stories, horizon)
        if idle:
            self.evicted_until = max(self.evicted_until or horizon, horizon)
        for story_id in idle:
            story = self.stories.pop(story_id)
            self._table.remove(story_id)
            for member in story.members:
                self.story_of.pop(member, None)
                features = self._features.pop(member, None)
                self._vectors.pop(member, None)
                if features is not None:
                    for key in shingles.band_keys(features.minhash):
                        bucket = self._buckets.get(key)
                        if bucket and member in bucket:
                            bucket.remove(member)
                            if not bucket:
                                del self._buckets[key]
