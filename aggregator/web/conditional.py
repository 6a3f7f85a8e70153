"""HTTP caching: ETag / Last-Modified headers and 304 decisions for a rendered document.

Pure functions of request headers and the document, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

CACHE_MAX_AGE_SECONDS = 300


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored for If-None-Match.
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def is_not_modified(headers: Mapping[str, str], etag: str, last_modified: datetime) -> bool:
    """If-None-Match wins when present; If-Modified-Since is used only without it."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    since = headers.get("if-modified-since")
    if since:
        try:
            since_time = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if since_time.tzinfo is None:
            return False
        return last_modified.replace(microsecond=0) <= since_time
    return False


def cache_headers(etag: str, last_modified: datetime) -> dict[str, str]:
    return {
        "ETag": etag,
        "Last-Modified": http_date(last_modified),
        "Cache-Control": f"public, max-age={CACHE_MAX_AGE_SECONDS}",
        "Vary": "Accept-Encoding",
    }
