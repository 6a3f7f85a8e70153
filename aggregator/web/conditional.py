"""HTTP caching and content negotiation for a rendered document: ETag / Last-Modified
headers, 304 decisions and the choice of content coding from Accept-Encoding; and the same
validators for the JSON API's computed answers (``ApiValidators``).

Pure functions of request headers and the document, so they are tested without a server.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Final

from aggregator.clock import utc_now

CACHE_MAX_AGE_SECONDS = 300


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def _etag_matches(header: str, etags: Sequence[str]) -> bool:
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored for If-None-Match.
    wanted = {etag.removeprefix("W/") for etag in etags}
    return any(tag.strip().removeprefix("W/") in wanted for tag in header.split(","))


def is_not_modified(
    headers: Mapping[str, str], etag: str | Sequence[str], last_modified: datetime
) -> bool:
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


def cache_headers(
    etag: str,
    last_modified: datetime,
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


# JSON API answers about things that change at every poll or correction (source health, a
# story's evidence): caches keep them but ask first.
REVALIDATE: Final = "public, no-cache"
_FIRST_SEEN_SIZE: Final = 4096


class ApiValidators:
    """Strong validators for the JSON API's computed answers.

    The ETag is a hash of the exact bytes. ``Last-Modified`` is when this process first gave
    those bytes: an answer built from several rows has no one time of its own, and this one
    never lets ``If-Modified-Since`` hide a change. A bounded memory: a forgotten answer just
    gets a newer time, which costs a client one full response.
    """

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._first_seen: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def last_modified(self, etag: str) -> datetime:
        with self._lock:
            seen = self._first_seen.get(etag)
            if seen is None:
                seen = self._clock().replace(microsecond=0)
                self._first_seen[etag] = seen
                if len(self._first_seen) > _FIRST_SEEN_SIZE:
                    self._first_seen.popitem(last=False)
            else:
                self._first_seen.move_to_end(etag)
            return seen

    def answer(
        self,
        headers: Mapping[str, str],
        body: bytes,
        cache_control: str,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of a JSON answer: 304 and no body when the client's
        validators match these bytes."""
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        modified = self.last_modified(etag)
        out = {
            "ETag": etag,
            "Last-Modified": http_date(modified),
            "Cache-Control": cache_control,
            **(extra or {}),
        }
        if is_not_modified(headers, etag, modified):
            return 304, out, b""
        return 200, {**out, "Content-Type": "application/json"}, body
