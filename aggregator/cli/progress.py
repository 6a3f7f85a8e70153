"""Progress on a terminal: a poll's bar per source, and a step counter for clustering and
imports, redrawn in place; nothing when the output is not a terminal (logs say it there).

A log line never lands on the bar's line: the bar is cleared before each record is written
and drawn again after it, one line lower.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from aggregator.types import PollOutcome

# Erase from the cursor to the end of the line (ANSI, understood by every terminal we meet).
_ERASE_LINE = "\033[K"


class _Line:
    """The partial line a progress display has on the terminal now (None: nothing drawn)."""

    text: str | None = None


def _draw(text: str, *, final: bool) -> None:
    print(f"\r{text}{_ERASE_LINE}", end="\n" if final else "", flush=True)
    _Line.text = None if final else text
    _guard_logs()


class _ClearLine(logging.Filter):
    """Runs just before a handler writes a record: clears the bar off its line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _Line.text is not None:
            sys.stdout.write(f"\r{_ERASE_LINE}")
            sys.stdout.flush()
        return True


class _Redraw(logging.Handler):
    """Comes after the real handlers: puts the bar back under the line just written."""

    def emit(self, record: logging.LogRecord) -> None:
        if _Line.text is not None:
            sys.stdout.write(f"\r{_Line.text}{_ERASE_LINE}")
            sys.stdout.flush()


def _guard_logs() -> None:
    """Wrap the root logger's handlers (idempotent; logging may be configured again)."""
    root = logging.getLogger()
    real = [h for h in root.handlers if not isinstance(h, _Redraw)]
    for handler in real:
        if not any(isinstance(f, _ClearLine) for f in handler.filters):
            handler.addFilter(_ClearLine())
    if real and not isinstance(root.handlers[-1], _Redraw):
        root.handlers[:] = [*real, _Redraw()]


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
        _draw(
            f"{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}",
            final=done >= total,
        )

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
        _draw(
            f"[{bar}] {self.done}/{self.total} sources · {self.new} new · {self.errors} errors",
            final=self.done >= self.total,
        )
