"""The clusterer's story centroids and time spans as arrays, kept in step with its stories and in
their order, so that each entry's candidate search selects the stories of its window and
stacks their centroids without a Python loop over every story (restacking a few thousand
centroids per entry was the largest part of the search).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from aggregator.clustering.dedup.lazynumpy import np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
_MICROSECOND = timedelta(microseconds=1)
_CAPACITY = 1024


class Spanned(Protocol):
    """What the table reads of a story."""

    first_seen: datetime
    last_seen: datetime

    def centroid(self) -> npt.NDArray[np.float32]: ...


def microseconds(moment: datetime) -> int:
    """``moment`` as whole microseconds since 1970: exact, so comparisons agree with the
    datetimes' own."""
    return (moment - (_NAIVE_EPOCH if moment.tzinfo is None else _EPOCH)) // _MICROSECOND


class CentroidTable:
    """One row per story, in the order stories were added (a story added again goes last, as
    in a dict); rows of changed stories are refreshed when next read."""

    def __init__(self) -> None:
        # The vectors' width, known from the first centroid read.
        self.dim = 0
        self._slots: dict[int, int] = {}
        self._stale: set[int] = set()
        self._size = 0
        self._allocate(_CAPACITY)

    def _allocate(self, capacity: int) -> None:
        self._matrix = np.zeros((capacity, self.dim), dtype=np.float32)
        self._first = np.zeros(capacity, dtype=np.int64)
        self._last = np.zeros(capacity, dtype=np.int64)
        self._ids = np.zeros(capacity, dtype=np.int64)
        self._live = np.zeros(capacity, dtype=bool)

    def add(self, story_id: int) -> None:
        """A story put last in the clusterer's order (its row is filled when next read)."""
        self.remove(story_id)
        if self._size == len(self._live):
            self._compact()
        slot = self._size
        self._size += 1
        self._slots[story_id] = slot
        self._ids[slot] = story_id
        self._live[slot] = True
        self._stale.add(story_id)

    def remove(self, story_id: int) -> None:
        slot = self._slots.pop(story_id, None)
        if slot is not None:
            self._live[slot] = False
        self._stale.discard(story_id)

    def touch(self, story_id: int) -> None:
        """The story's centroid or time span changed."""
        if story_id in self._slots:
            self._stale.add(story_id)

    def active(
        self, stories: Mapping[int, Spanned], moment: datetime, window: timedelta
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Ids and centroids, in order, of the stories whose newest member is within
        ``window`` of ``moment`` or whose span holds it."""
        self._refresh(stories)
        at, width = microseconds(moment), window // _MICROSECOND
        first, last = self._first[: self._size], self._last[: self._size]
        near = (np.abs(last - at) <= width) | ((first <= at) & (at <= last))
        slots = np.flatnonzero(self._live[: self._size] & near)
        return self._ids[slots], self._matrix[slots]

    def idle(self, stories: Mapping[int, Spanned], horizon: datetime) -> list[int]:
        """Ids, in order, of the stories whose newest member is before ``horizon``."""
        self._refresh(stories)
        last = self._last[: self._size]
        slots = np.flatnonzero(self._live[: self._size] & (last < microseconds(horizon)))
        return [int(story_id) for story_id in self._ids[slots]]

    def _refresh(self, stories: Mapping[int, Spanned]) -> None:
        for story_id in self._stale:
            slot = self._slots[story_id]
            story = stories[story_id]
            centroid = story.centroid()
            if len(centroid) != self.dim:
                self._widen(len(centroid))
            self._matrix[slot] = centroid
            self._first[slot] = microseconds(story.first_seen)
            self._last[slot] = microseconds(story.last_seen)
        self._stale.clear()

    def _widen(self, dim: int) -> None:
        if self.dim:
            raise ValueError(f"centroids of width {dim} among ones of width {self.dim}")
        self.dim = dim
        self._matrix = np.zeros((len(self._live), dim), dtype=np.float32)

    def _compact(self) -> None:
        """Live rows to the front, in order; room doubled when they fill half of it."""
        live = np.flatnonzero(self._live[: self._size])
        capacity = len(self._live) * (2 if 2 * len(live) >= len(self._live) else 1)
        matrix, first, last, ids = (
            self._matrix[live],
            self._first[live],
            self._last[live],
            self._ids[live],
        )
        self._allocate(capacity)
        count = len(live)
        self._matrix[:count], self._first[:count], self._last[:count] = matrix, first, last
        self._ids[:count] = ids
        self._live[:count] = True
        self._size = count
        self._slots = {int(story_id): slot for slot, story_id in enumerate(ids)}
