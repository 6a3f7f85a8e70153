"""HTTP caching decisions: ETag and Last-Modified against conditional request headers."""

from __future__ import annotations

from datetime import timedelta

from aggregator.web.conditional import cache_headers, http_date, is_not_modified
from tests.support.builders import NOW

ETAG = '"abc"'


def test_if_none_match() -> None:
    assert is_not_modified({"if-none-match": '"abc"'}, ETAG, NOW)
    assert is_not_modified({"if-none-match": 'W/"abc"'}, ETAG, NOW)
    assert is_not_modified({"if-none-match": '"x", "abc"'}, ETAG, NOW)
    assert is_not_modified({"if-none-match": "*"}, ETAG, NOW)
    assert not is_not_modified({"if-none-match": '"other"'}, ETAG, NOW)


def test_if_none_match_takes_precedence_over_date() -> None:
    headers = {"if-none-match": '"other"', "if-modified-since": http_date(NOW)}
    assert not is_not_modified(headers, ETAG, NOW)


def test_if_modified_since() -> None:
    assert is_not_modified({"if-modified-since": http_date(NOW)}, ETAG, NOW)
    later = http_date(NOW + timedelta(hours=1))
    assert is_not_modified({"if-modified-since": later}, ETAG, NOW)
    earlier = http_date(NOW - timedelta(seconds=1))
    assert not is_not_modified({"if-modified-since": earlier}, ETAG, NOW)
    assert not is_not_modified({"if-modified-since": "garbage"}, ETAG, NOW)


def test_cache_headers() -> None:
    headers = cache_headers(ETAG, NOW)
    assert headers["ETag"] == ETAG
    assert headers["Last-Modified"] == "Fri, 20 Nov 2026 12:00:00 GMT"
    assert "max-age" in headers["Cache-Control"]
