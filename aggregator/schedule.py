"""When to check a source next: pure functions of the source's state and ``now``.

The database is the schedule (``next_check_at`` on the source row); these functions only decide
the next value. Errors back off exponentially from the configured interval, capped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF_SECONDS = 24 * 3600
MAX_BACKOFF_DOUBLINGS = 8


def next_check_after_success(now: datetime, interval_seconds: int,
                             feed_ttl_minutes: int | None = None) -> datetime:
    """The configured interval, or the feed's own ``ttl`` when it asks for longer."""
    seconds = interval_seconds
    if feed_ttl_minutes is not None and feed_ttl_minutes > 0:
        seconds = max(seconds, min(feed_ttl_minutes * 60, MAX_BACKOFF_SECONDS))
    return now + timedelta(seconds=seconds)


def next_check_after_error(now: datetime, interval_seconds: int, error_count: int) -> datetime:
    """``error_count`` counts this failure too: 1 → one interval, 2 → two, 3 → four, …"""
    doublings = min(max(error_count - 1, 0), MAX_BACKOFF_DOUBLINGS)
    seconds = min(interval_seconds * (2 ** doublings), MAX_BACKOFF_SECONDS)
    return now + timedelta(seconds=max(seconds, interval_seconds))
