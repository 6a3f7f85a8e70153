"""When to check a source next: pure functions of the source's state, the response and ``now``.

The database is the schedule (``next_check_at`` on the source row); these functions only decide
the next value. After a success: the configured interval, stretched for sources that publish
rarely, never sooner than the publisher asks (ttl, sy:updatePeriod, Cache-Control, Expires),
plus a little jitter so URLs added together drift apart. The jitter is keyed on the URL, never
the source, so sources sharing a URL stay due together and share one fetch. Errors back off
exponentially.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from statistics import median

# A server may ask for at most this long between checks; beyond, it is likely a mistake.
MAX_SERVER_HINT_SECONDS = 24 * 3600
# A source that publishes every G seconds is checked every G * ADAPTIVE_FACTOR at most...
ADAPTIVE_FACTOR = 0.5
# ...but never less often than this because of its rhythm alone.
ADAPTIVE_MAX_SECONDS = 12 * 3600
# How many of the newest entries tell the rhythm, and how many are needed to trust it.
RHYTHM_ENTRIES = 20
RHYTHM_MIN_ENTRIES = 4
# Up to +10%: spreads URLs that were added (or failed) together.
JITTER_FRACTION = 0.10
MAX_BACKOFF_SECONDS = 24 * 3600
MAX_BACKOFF_DOUBLINGS = 8

_MAX_AGE_RE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def _jitter(url: str, now: datetime, seconds: float) -> float:
    """Deterministic per URL and moment, so tests and reruns agree and sources sharing a URL
    get the same schedule."""
    digest = hashlib.sha256(f"{url}|{now.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
    return seconds * JITTER_FRACTION * fraction


def cache_lifetime(headers: Mapping[str, str], now: datetime) -> int | None:
    """Seconds the response says it stays fresh (Cache-Control max-age, else Expires)."""
    control = headers.get("cache-control", "")
    if "no-cache" in control.lower() or "no-store" in control.lower():
        return None
    match = _MAX_AGE_RE.search(control)
    if match:
        return int(match.group(1))
    expires = headers.get("expires")
    if expires:
        try:
            when = parsedate_to_datetime(expires)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0, int((when - now).total_seconds()))
    return None


def publishing_interval(published: Sequence[datetime]) -> float | None:
    """The median gap between the newest entries' dates, or None with too little history."""
    newest = sorted(set(published), reverse=True)[:RHYTHM_ENTRIES]
    if len(newest) < RHYTHM_MIN_ENTRIES:
        return None
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(newest)]
    return float(median(gaps))


def next_check_after_success(
    now: datetime,
    interval_seconds: int,
    *,
    url: str = "",
    feed_ttl_minutes: int | None = None,
    cache_seconds: int | None = None,
    publish_interval: float | None = None,
) -> datetime:
    seconds = float(interval_seconds)
    if publish_interval is not None and publish_interval > 0:
        rhythm = min(publish_interval * ADAPTIVE_FACTOR, ADAPTIVE_MAX_SECONDS)
        seconds = max(seconds, rhythm)
    hints = [h for h in (feed_ttl_minutes and feed_ttl_minutes * 60, cache_seconds) if h]
    if hints:
        seconds = max(seconds, min(max(hints), MAX_SERVER_HINT_SECONDS))
    return now + timedelta(seconds=seconds + _jitter(url, now, seconds))


def next_check_after_error(
    now: datetime,
    interval_seconds: int,
    error_count: int,
    *,
    url: str = "",
    retry_after: datetime | None = None,
) -> datetime:
    """``error_count`` counts this failure too: 1 → one interval, 2 → two, 3 → four, …

    A server's Retry-After is honoured when it asks for longer than the back-off.
    """
    doublings = min(max(error_count - 1, 0), MAX_BACKOFF_DOUBLINGS)
    seconds = float(min(interval_seconds * (2**doublings), MAX_BACKOFF_SECONDS))
    seconds = max(seconds, interval_seconds)
    when = now + timedelta(seconds=seconds + _jitter(url, now, seconds))
    if retry_after is not None and retry_after > when:
        return retry_after
    return when
