"""Filtered feeds: the parameters of ``/feeds/{category}.{fmt}?lang=&q=&min_sources=&since=
&limit=``, checked one by one (a bad one is refused naming it), and their canonical query
string, which is both the feed's ``self`` link and the key its rendered document is cached under.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

from aggregator.store.search import BadQuery, parse_query

# The canonical order of the parameters, in self links and cache keys.
FILTER_PARAMS: Final = ("lang", "q", "min_sources", "since", "limit")
MAX_FILTER_LIMIT: Final = 100
MAX_MIN_SOURCES: Final = 100
_LANG_RE: Final = re.compile(r"^[a-z]{2,3}$")
_INT_RE: Final = re.compile(r"^[0-9]{1,6}$")


class FilterError(ValueError):
    """A filter parameter that cannot be used: ``param`` names it, the message says why."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class FeedFilter:
    """What a filtered feed keeps: stories shown in ``lang``, holding every term of ``q`` in
    one of their entries, from at least ``min_sources`` sources, published at or after
    ``since``; at most ``limit`` of them (None: the plain feed's size)."""

    lang: str | None = None
    terms: tuple[str, ...] = ()
    min_sources: int | None = None
    since: datetime | None = None
    limit: int | None = None

    def query(self) -> str:
        """The canonical query string: parameters in ``FILTER_PARAMS`` order, one spelling
        each (terms as parsed, times in UTC to the second)."""
        values = {
            "lang": self.lang,
            "q": " ".join(f'"{t}"' if " " in t else t for t in self.terms) or None,
            "min_sources": str(self.min_sources) if self.min_sources is not None else None,
            "since": (
                self.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if self.since is not None
                else None
            ),
            "limit": str(self.limit) if self.limit is not None else None,
        }
        # ":" is left as is (it is allowed in a query), so times read as times.
        return urlencode([(k, values[k]) for k in FILTER_PARAMS if values[k] is not None], safe=":")

    def describe(self) -> str:
        """The filter in words, for the feed's title."""
        parts = []
        if self.terms:
            parts.append(" ".join(f"“{t}”" for t in self.terms))
        if self.min_sources is not None:
            parts.append(f"{self.min_sources}+ sources")
        if self.since is not None:
            parts.append(f"since {self.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        return ", ".join(parts)


def _number(param: str, value: str, highest: int) -> int:
    if not _INT_RE.match(value) or not 1 <= int(value) <= highest:
        raise FilterError(param, f"must be a whole number from 1 to {highest}, not {value!r}")
    return int(value)


def parse_filter(params: Sequence[tuple[str, str]], *, name_lang: str | None = None) -> FeedFilter:
    """The filter a request's query parameters ask for; ``name_lang`` is the language of the
    feed name (``news.fr.atom``), which then must not be given again as ``lang``."""
    seen: dict[str, str] = {}
    for param, value in params:
        if param not in FILTER_PARAMS:
            raise FilterError(param, "not a filter; use " + ", ".join(FILTER_PARAMS))
        if param in seen:
            raise FilterError(param, "given more than once")
        if not value.strip():
            raise FilterError(param, "empty")
        seen[param] = value.strip()
    lang = seen.get("lang")
    if lang is not None:
        if name_lang is not None:
            raise FilterError("lang", f"the feed name already says {name_lang!r}")
        if not _LANG_RE.match(lang):
            raise FilterError("lang", f"must be a language code such as 'en', not {lang!r}")
    terms: tuple[str, ...] = ()
    if "q" in seen:
        try:
            terms = parse_query(seen["q"])
        except BadQuery as exc:
            raise FilterError("q", str(exc)) from exc
    since = None
    if "since" in seen:
        try:
            since = datetime.fromisoformat(seen["since"])
        except ValueError as exc:
            raise FilterError(
                "since",
                f"must be an ISO 8601 time such as 2026-05-01T00:00:00Z, not {seen['since']!r}",
            ) from exc
        if since.tzinfo is None or since.utcoffset() is None:
            raise FilterError("since", "give a time zone, such as 2026-05-01T00:00:00Z")
        since = since.astimezone(UTC).replace(microsecond=0)
    return FeedFilter(
        lang=lang or name_lang,
        terms=terms,
        min_sources=(
            _number("min_sources", seen["min_sources"], MAX_MIN_SOURCES)
            if "min_sources" in seen
            else None
        ),
        since=since,
        limit=_number("limit", seen["limit"], MAX_FILTER_LIMIT) if "limit" in seen else None,
    )
