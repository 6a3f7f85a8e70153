"""Next-check decisions are pure functions of the source state, the response and ``now``."""

from __future__ import annotations

from datetime import timedelta

from aggregator.polling.schedule import (
    ADAPTIVE_MAX_SECONDS,
    JITTER_FRACTION,
    MAX_BACKOFF_SECONDS,
    MAX_SERVER_HINT_SECONDS,
    cache_lifetime,
    next_check_after_error,
    next_check_after_success,
    publishing_interval,
)
from aggregator.web.conditional import http_date
from tests.support.builders import NOW


def within_jitter(actual: timedelta, expected_seconds: float) -> bool:
    return expected_seconds <= actual.total_seconds() <= expected_seconds * (1 + JITTER_FRACTION)


def test_success_uses_interval_or_longer_publisher_hints() -> None:
    assert within_jitter(next_check_after_success(NOW, 1800) - NOW, 1800)
    ttl = next_check_after_success(NOW, 1800, feed_ttl_minutes=120) - NOW
    assert within_jitter(ttl, 7200)
    short = next_check_after_success(NOW, 1800, feed_ttl_minutes=5, cache_seconds=60) - NOW
    assert within_jitter(short, 1800)
    cached = next_check_after_success(NOW, 1800, cache_seconds=3 * 3600) - NOW
    assert within_jitter(cached, 3 * 3600)
    absurd = next_check_after_success(NOW, 1800, cache_seconds=10**9) - NOW
    assert within_jitter(absurd, MAX_SERVER_HINT_SECONDS)


def test_rarely_publishing_sources_are_checked_less_often_within_bounds() -> None:
    daily = next_check_after_success(NOW, 1800, publish_interval=86400) - NOW
    assert within_jitter(daily, 43200)
    monthly = next_check_after_success(NOW, 1800, publish_interval=30 * 86400) - NOW
    assert within_jitter(monthly, ADAPTIVE_MAX_SECONDS)
    busy = next_check_after_success(NOW, 1800, publish_interval=60) - NOW
    assert within_jitter(busy, 1800)


def test_jitter_is_deterministic_and_differs_between_urls() -> None:
    a1 = next_check_after_success(NOW, 3600, url="https://a.example/feed")
    a2 = next_check_after_success(NOW, 3600, url="https://a.example/feed")
    b = next_check_after_success(NOW, 3600, url="https://b.example/feed")
    assert a1 == a2
    assert a1 != b


def test_publishing_interval_is_the_median_gap() -> None:
    dates = [NOW - timedelta(hours=h) for h in (0, 2, 4, 6, 30)]
    assert publishing_interval(dates) == 2 * 3600
    assert publishing_interval(dates[:3]) is None


def test_cache_lifetime() -> None:
    assert cache_lifetime({"cache-control": "public, max-age=600"}, NOW) == 600
    assert cache_lifetime({"cache-control": "no-cache, max-age=600"}, NOW) is None
    expires = http_date(NOW + timedelta(hours=1))
    assert cache_lifetime({"expires": expires}, NOW) == 3600
    assert cache_lifetime({"expires": "0"}, NOW) is None
    assert cache_lifetime({}, NOW) is None


def test_errors_back_off_exponentially_with_a_cap() -> None:
    delays = [next_check_after_error(NOW, 600, n) - NOW for n in (1, 2, 3, 4)]
    for delay, expected in zip(delays, (600, 1200, 2400, 4800), strict=True):
        assert within_jitter(delay, expected)
    assert within_jitter(next_check_after_error(NOW, 3600, 50) - NOW, MAX_BACKOFF_SECONDS)


def test_retry_after_wins_when_longer() -> None:
    later = NOW + timedelta(hours=5)
    assert next_check_after_error(NOW, 600, 1, retry_after=later) == later
    sooner = NOW + timedelta(seconds=1)
    assert next_check_after_error(NOW, 600, 1, retry_after=sooner) > NOW + timedelta(seconds=599)
