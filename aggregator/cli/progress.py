"""Progress on a terminal: a poll's bar per source, and a step counter for clustering and
imports, redrawn in place; nothing when the output is not a terminal (logs say it there)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from aggregator.types import PollOutcome


def progress_for(total: int) -> ProgressBar | None:
    """A live progress line on a terminal (per-source logs quieted); logs alone otherwise."""
    if not sys.stdout.isatty():
        return None
    logging.getLogger("aggregator.refresh").setLevel(logging.WARNING)
    return ProgressBar(total)


def step_progress(label: str, unit: str) -> Callable[[int, int], None] | None:
    """``{label} [#####.....] 120/400 {unit}`` redrawn in place on a terminal."""
    if not sys.stdout.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = ProgressBar.WIDTH
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}",
              end=end, flush=True)

    return show


def cluster_progress() -> Callable[[int, int], None] | None:
    return step_progress("clustering", "entries")


class ProgressBar:
    """``[#####.....] 120/1000 sources · 340 new · 2 errors`` redrawn in place."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = self.new = self.errors = 0

    def __call__(self, outcome: PollOutcome) -> None:
        self.done += 1
        self.new += outcome.new_entries
        self.errors += outcome.result == "error"
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if self.done >= self.total else ""
        print(f"\r[{bar}] {self.done}/{self.total} sources · {self.new} new · "
              f"{self.errors} errors", end=end, flush=True)
