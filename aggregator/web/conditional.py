"""HTTP caching and content negotiation for a rendered document: ETag / Last-Modified
headers, 304 decisions and the choice of content coding from Accept-Encoding.

Pure functions of request headers and the document, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

CACHE_MAX_AGE_SECONDS = 300


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def _etag_matches(header: str, etags: Sequence[str]) -> bool:
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored for If-None-Match.
    wanted = {etag.removeprefix("W/") for etag in etags}
    return any(tag.strip().removeprefix("W/") in wanted for tag in header.split(","))


def is_not_modified(headers: Mapping[str, str], etag: str | Sequence[str],
                    last_modified: datetime) -> bool:
    """If-None-Match wins when present; If-Modified-Since is used only without it.

    ``etag`` may list the ETags of every coding of one document: a client holding the gzip
    copy has the same content as one holding the plain copy, so either validates.
    """
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, (etag,) if isinstance(etag, str) else etag)
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


def cache_headers(etag: str, last_modified: datetime,
                  cache_control: str = f"public, max-age={CACHE_MAX_AGE_SECONDS}",
                  ) -> dict[str, str]:
    return {
        "ETag": etag,
        "Last-Modified": http_date(last_modified),
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
    }


def choose_coding(accept_encoding: str | None, offered: Sequence[str]) -> str | None:
    """The content coding to send, from ``offered`` in our order of preference; None for
    identity. Follows RFC 9110 §12.5.3: q=0 refuses a coding, "*" stands for the unnamed."""
    if not accept_encoding or not offered:
        return None
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name] = weight
    best: str | None = None
    best_weight = 0.0
    for coding in offered:
        weight = weights.get(coding, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = coding, weight
    return best
