"""Retention policy: what ``aggregator prune`` and the scheduler's daily job remove, and when.

Entries published more than ``days`` ago go, in batches of ``PRUNE_BATCH`` (each its own short
transaction, so polls and clustering carry on in between), each leaving a tombstone; then the
stories they leave empty; then tombstones neither pruned nor seen listed by their feed for
``tombstone_days`` (at least ``days``, at least ``TOMBSTONE_MIN_DAYS``), and Retry-After holds
that have ended. ``days`` 0 keeps everything. Frozen archive pages are files and keep what they
froze (their bytes never change); nothing here touches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.store import Store

log = logging.getLogger("aggregator.retention")

PRUNE_BATCH = 500
TOMBSTONE_MIN_DAYS = 30


def tombstone_days(days: int) -> int:
    """How long a tombstone outlives the last time its feed listed the entry."""
    return max(days, TOMBSTONE_MIN_DAYS)


@dataclass
class PruneSummary:
    entries: int = 0
    stories: int = 0
    corrections: int = 0
    tombstones: int = 0
    holds: int = 0
    batches: int = 0
    dry_run: bool = False

    def describe(self) -> str:
        verb = "would prune" if self.dry_run else "pruned"
        forgot = "would forget" if self.dry_run else "forgot"
        return (
            f"{verb} {self.entries} entries and {self.stories} stories "
            f"({self.corrections} editors' corrections closed); {forgot} "
            f"{self.tombstones} tombstones"
        )


def prune(
    store: Store,
    *,
    days: int,
    now: datetime,
    dry_run: bool = False,
    batch: int = PRUNE_BATCH,
    stop: Callable[[], bool] | None = None,
) -> PruneSummary:
    """Apply the retention of ``days`` (0: nothing to do) as of ``now``; ``stop`` is asked
    between batches (a shutdown need not wait for a big first prune)."""
    if days <= 0:
        return PruneSummary(dry_run=dry_run)
    cutoff = now - timedelta(days=days)
    forget_before = now - timedelta(days=tombstone_days(days))
    if dry_run:
        preview = store.prune_preview(cutoff, forget_before)
        return PruneSummary(
            entries=preview.entries,
            stories=preview.stories,
            corrections=preview.overrides,
            tombstones=preview.tombstones,
            dry_run=True,
        )
    summary = PruneSummary()

    def more() -> bool:
        return stop is None or not stop()

    while more():
        entries, closed = store.prune_entries(cutoff, now, batch)
        if not entries:
            break
        summary.entries += entries
        summary.corrections += closed
        summary.batches += 1
    while more():
        removed, live, closed = store.prune_stories(cutoff, now, batch)
        if not removed:
            break
        summary.stories += live
        summary.corrections += closed
        summary.batches += 1
    while more():
        forgotten = store.expire_tombstones(forget_before, batch)
        summary.tombstones += forgotten
        if forgotten < batch:
            break
    summary.holds = store.expire_host_holds(now)
    log.info(
        "action=prune outcome=done days=%d entries=%d stories=%d corrections=%d "
        "tombstones_forgotten=%d batches=%d",
        days,
        summary.entries,
        summary.stories,
        summary.corrections,
        summary.tombstones,
        summary.batches,
    )
    return summary
