"""What every output format shares: formats and media types, public URLs, ids, small helpers.

Foundation of the publish package (no feedgen here). URLs and ids are pure functions of their
arguments, because readers key on them: a changed id is a "new" item, a changed URL a new feed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final
from urllib.parse import quote, urlsplit

from aggregator.errors import PublishError
from aggregator.types import OutputFeed, StoryView

FEED_FORMATS: Final = ("atom", "rss", "json")

MEDIA_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "atom": "application/atom+xml; charset=utf-8",
        "rss": "application/rss+xml; charset=utf-8",
        "json": "application/feed+json; charset=utf-8",
        "opml": "text/x-opml; charset=utf-8",
        "html": "text/html; charset=utf-8",
    }
)

# Bare media types for <link type="…">: a charset parameter there means nothing to readers.
LINK_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "atom": "application/atom+xml",
        "rss": "application/rss+xml",
        "json": "application/feed+json",
        "html": "text/html",
    }
)
FORMAT_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
)

GENERATOR_NAME: Final = "aggregator"
# The year the tag authority was first used for feed ids. Changing it changes every feed id,
# which makes readers treat the feeds as new: never change it once feeds are published.
FEED_TAG_YEAR: Final = "2026"
# Atom and feedgen refuse an empty title; a reader still needs something to click on.
UNTITLED: Final = "(untitled)"
# RFC 5005 §4: the element that marks a document as an archive page.
HISTORY_NS: Final = "http://purl.org/syndication/history/1.0"

# Characters XML 1.0 cannot carry at all (lxml refuses them); dropping them beats failing the
# whole feed because one upstream title had a stray control byte.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# RFC 4151 "specific" part: pchar / "/" / "?"; everything else in a uid is percent-encoded.
_TAG_SAFE: Final = "-._~!$&'()*+,;=:@/?"
_LINK_SCHEMES: Final = frozenset({"http", "https"})


@dataclass(frozen=True)
class FeedLinks:
    """How one document ties into its feed: RFC 5005 archives and paging, and WebSub.

    ``archive`` is this document's page number when it is an archive page; it then links
    ``current`` (the live feed) and ``next-archive`` (page + 1, whether or not complete yet).
    ``prev_archive`` is the next older archive page (for the subscription document: the newest
    complete one), also given as ``rel="next"`` for readers that page rather than walk
    archives. ``hub`` is a WebSub hub, advertised only by documents that can change.
    """

    archive: int | None = None
    prev_archive: int | None = None
    hub: str | None = None
    # A filtered feed's canonical query string (``publishing.filters``): its self link and
    # its id carry it, its language included, so the path names the category only.
    query: str | None = None


def feed_url(base_url: str, category_id: str, fmt: str, lang: str | None = None) -> str:
    """Public URL of one output feed: ``{base}/feeds/{category}[.{lang}].{fmt}``."""
    _check_format(fmt)
    name = f"{category_id}.{lang}" if lang else category_id
    return f"{base_url.rstrip('/')}/feeds/{name}.{fmt}"


def archive_url(
    base_url: str, category_id: str, page: int, fmt: str, lang: str | None = None
) -> str:
    """Public URL of an archive page: ``{base}/feeds/{category}/archive/{n}[.{lang}].{fmt}``."""
    _check_format(fmt)
    name = f"{page}.{lang}" if lang else str(page)
    return f"{base_url.rstrip('/')}/feeds/{category_id}/archive/{name}.{fmt}"


def category_page_url(base_url: str, category_id: str, lang: str | None = None) -> str:
    """The category's HTML page, ``{base}/categories/{category}[.{lang}].html`` like the feeds;
    ``.html`` so static hosting serves the same path."""
    name = f"{category_id}.{lang}" if lang else category_id
    return f"{base_url.rstrip('/')}/categories/{name}.html"


def self_url(feed: OutputFeed, fmt: str, lang: str | None, links: FeedLinks) -> str:
    if links.archive is not None:
        return archive_url(feed.base_url, feed.category_id, links.archive, fmt, lang)
    if links.query:
        return f"{feed_url(feed.base_url, feed.category_id, fmt)}?{links.query}"
    return feed_url(feed.base_url, feed.category_id, fmt, lang)


def prev_archive_url(feed: OutputFeed, fmt: str, lang: str | None, links: FeedLinks) -> str | None:
    if links.prev_archive is None:
        return None
    return archive_url(feed.base_url, feed.category_id, links.prev_archive, fmt, lang)


def story_item_id(tag_authority: str, story: StoryView) -> str:
    """The item id of a story, a ``tag:`` URI (RFC 4151) that never changes for that story.
    Its date is the fixed year of every id here, not a day of ours: a rebuild from the same
    feeds on another day gives the same ids (the uid alone tells stories apart)."""
    return f"tag:{tag_authority},{FEED_TAG_YEAR}:story/{quote(story.uid, safe=_TAG_SAFE)}"


def feed_id(feed: OutputFeed, lang: str | None = None, query: str | None = None) -> str:
    """The Atom feed id: stable per category (and per language variant), archives included;
    a filtered feed's adds its canonical query (already percent-encoded, and "?", "=", "&"
    are allowed in a tag URI)."""
    if query:
        category = quote(feed.category_id, safe=_TAG_SAFE)
        return f"tag:{feed.tag_authority},{FEED_TAG_YEAR}:feed/{category}?{query}"
    suffix = f"/{quote(lang, safe=_TAG_SAFE)}" if lang else ""
    category = quote(feed.category_id, safe=_TAG_SAFE)
    return f"tag:{feed.tag_authority},{FEED_TAG_YEAR}:feed/{category}{suffix}"


def guarded(what: str, render: Callable[[], bytes]) -> bytes:
    # feedgen and lxml raise a mix of ValueError, TypeError and lxml's own errors; translating
    # all of them here keeps one bad story from escaping as an arbitrary exception type.
    try:
        return render()
    except PublishError:
        raise
    except Exception as exc:
        raise PublishError(f"cannot render {what}: {exc}") from exc


def home_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/"


def safe_link(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL, else None.

    normalize already keeps only such URLs; checking again here means no other path into the
    outputs (an editor's override, a future importer) can turn a link into ``javascript:``.
    """
    if not url:
        return None
    cleaned = clean(url).strip()
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in _LINK_SCHEMES or not parts.netloc:
        return None
    return cleaned


def utc(value: datetime, what: str) -> datetime:
    # A naive datetime would be read in the machine's zone and break determinism.
    if value.tzinfo is None or value.utcoffset() is None:
        raise PublishError(f"{what} is a naive datetime: {value.isoformat()}")
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def clean(text: str | None) -> str:
    return _XML_INVALID.sub("", text) if text else ""


def lang_tag(code: str | None) -> str | None:
    """A language tag as given, trimmed and with "_" turned into BCP 47's "-"."""
    if not code:
        return None
    tag = code.strip().replace("_", "-")
    return tag or None


def same_lang(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _check_format(fmt: str) -> None:
    if fmt not in FEED_FORMATS:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {FEED_FORMATS}")
