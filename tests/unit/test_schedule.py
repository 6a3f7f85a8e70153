"""Next-check decisions are pure functions of the source state and ``now``."""

from __future__ import annotations

from datetime import timedelta

from aggregator.schedule import (
    MAX_BACKOFF_SECONDS,
    next_check_after_error,
    next_check_after_success,
)
from tests.support.builders import NOW


def test_success_uses_interval_or_longer_ttl() -> None:
    assert next_check_after_success(NOW, 1800) == NOW + timedelta(minutes=30)
    assert next_check_after_success(NOW, 1800, feed_ttl_minutes=120) == NOW + timedelta(hours=2)
    assert next_check_after_success(NOW, 1800, feed_ttl_minutes=5) == NOW + timedelta(minutes=30)


def test_errors_back_off_exponentially_with_a_cap() -> None:
    delays = [next_check_after_error(NOW, 600, n) - NOW for n in (1, 2, 3, 4)]
    assert delays == [timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40),
                      timedelta(minutes=80)]
    assert next_check_after_error(NOW, 3600, 50) - NOW == timedelta(seconds=MAX_BACKOFF_SECONDS)
