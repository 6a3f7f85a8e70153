"""Reading a Retry-After header (RFC 9110 §10.2.3) into the time a host may be asked again.

Owns the clamping policy: a server may ask for at most ``MAX_RETRY_AFTER``; a 429 without a
usable value still gets ``DEFAULT_429_RETRY_AFTER``. Pure: the caller gives ``now``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# Beyond a day, a Retry-After is more likely a bug than a plan; the source's own error back-off
# takes over after that.
MAX_RETRY_AFTER = timedelta(hours=24)
# "Too many requests" always means slow down, even when the server does not say for how long.
DEFAULT_429_RETRY_AFTER = timedelta(seconds=60)
# Longer than any sane delta-seconds value; keeps int() and timedelta() away from huge input.
_MAX_DIGITS = 12


def retry_after_time(
    value: str | None, now: datetime, *, default: timedelta | None = None
) -> datetime | None:
    """When to ask again: ``value`` as delta-seconds or an HTTP-date, relative to ``now``.

    The result lies in [now, now + MAX_RETRY_AFTER]. A missing or unreadable value gives
    ``now + default``, or None without a default.
    """
    delay = _delay(value.strip() if value else "", now)
    if delay is None:
        return None if default is None else now + min(default, MAX_RETRY_AFTER)
    return now + min(max(delay, timedelta(0)), MAX_RETRY_AFTER)


def _delay(text: str, now: datetime) -> timedelta | None:
    if not text:
        return None
    if text.isascii() and text.isdigit():
        if len(text) > _MAX_DIGITS:
            return MAX_RETRY_AFTER
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; a "-0000" zone comes back naive.
        when = when.replace(tzinfo=UTC)
    return when - now
