"""The clusterer's centroid table: the stories of an entry's window, in the clusterer's order,
with the centroids they have now; and numpy's BLAS held to one thread where the operator did
not choose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from aggregator.clustering.dedup import blas
from aggregator.clustering.dedup.centroids import CentroidTable, microseconds
from aggregator.clustering.dedup.cluster import Story

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
WINDOW = timedelta(days=3)


def _story(story_id: int, first: datetime, last: datetime, seed: int) -> Story:
    vector = np.random.default_rng(seed).normal(size=8)
    return Story(story_id, first, last, [str(story_id)], vector)


def _expected(
    stories: dict[int, Story], moment: datetime
) -> tuple[list[int], npt.NDArray[np.float32]]:
    """What candidate search stacked before the table: a loop over every story."""
    active = [
        s
        for s in stories.values()
        if abs(s.last_seen - moment) <= WINDOW or s.first_seen <= moment <= s.last_seen
    ]
    return [s.story_id for s in active], np.vstack([s.centroid() for s in active])


def test_the_table_follows_the_stories_order_spans_and_centroids() -> None:
    rng = np.random.default_rng(7)
    stories: dict[int, Story] = {}
    table = CentroidTable()
    next_id = 1
    for step in range(3000):
        action = rng.integers(0, 10)
        if action < 5 or len(stories) < 3:  # a new story
            first = T0 - timedelta(hours=float(rng.uniform(0, 200)))
            stories[next_id] = _story(next_id, first, first, step)
            table.add(next_id)
            next_id += 1
        elif action < 8:  # a member joins: centroid and span change
            story = stories[int(rng.choice(list(stories)))]
            story.add_to_centroid(rng.normal(size=8))
            story.last_seen += timedelta(hours=float(rng.uniform(0, 30)))
            table.touch(story.story_id)
        elif action < 9:  # a merge or an eviction: the story goes
            gone = int(rng.choice(list(stories)))
            del stories[gone]
            table.remove(gone)
        else:  # a rename: the story goes last
            old = int(rng.choice(list(stories)))
            story = stories.pop(old)
            story.story_id = next_id
            stories[next_id] = story
            table.remove(old)
            table.add(next_id)
            next_id += 1
        if step % 50 == 0:
            moment = T0 - timedelta(hours=float(rng.uniform(0, 200)))
            ids, matrix = table.active(stories, moment, WINDOW)
            want_ids, want = _expected(stories, moment)
            assert ids.tolist() == want_ids
            assert matrix.tobytes() == want.tobytes()
            idle = [s.story_id for s in stories.values() if s.last_seen < moment]
            assert table.idle(stories, moment) == idle


def test_microseconds_are_exact_and_keep_the_datetimes_order() -> None:
    later = T0 + timedelta(microseconds=1)
    assert microseconds(later) - microseconds(T0) == 1
    assert microseconds(T0.replace(tzinfo=None)) == microseconds(T0)


def test_blas_threads_follow_the_operator_when_set() -> None:
    assert blas.single_thread({"OPENBLAS_NUM_THREADS": "4"}) is bool(blas._SET)
