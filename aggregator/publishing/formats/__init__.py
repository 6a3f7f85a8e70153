"""Render output documents: Atom 1.0 and RSS 2.0 (feedgen, in ``atom_rss``), JSON Feed 1.1,
OPML 2.0 and the HTML pages, one module each, over the item model in ``items``.

Pure rendering: an ``OutputFeed`` (and ``FeedLinks`` for archives, paging and WebSub) in, bytes
out, with no clock and no database, so the same input always gives byte-identical output (ETags
and immutable archives rely on it). Every foreign exception becomes a ``PublishError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.publishing.formats import html as _html
from aggregator.publishing.formats.atom_rss import atom as _atom
from aggregator.publishing.formats.atom_rss import rss as _rss
from aggregator.publishing.formats.common import (
    FEED_FORMATS,
    FEED_TAG_YEAR,
    GENERATOR_NAME,
    HISTORY_NS,
    MEDIA_TYPES,
    UNTITLED,
    FeedLinks,
    archive_url,
    category_page_url,
    feed_id,
    feed_url,
    guarded,
    story_item_id,
)
from aggregator.publishing.formats.html import CategoryLinks
from aggregator.publishing.formats.jsonfeed import JSON_EXTENSION_KEY, JSON_FEED_VERSION
from aggregator.publishing.formats.jsonfeed import document as _json
from aggregator.publishing.formats.languages import LANGUAGE_NAMES
from aggregator.publishing.formats.opml import OPML_FORMAT_LABELS
from aggregator.publishing.formats.opml import document as _opml
from aggregator.types import OutputFeed

__all__ = [
    "FEED_FORMATS",
    "FEED_TAG_YEAR",
    "GENERATOR_NAME",
    "HISTORY_NS",
    "JSON_EXTENSION_KEY",
    "JSON_FEED_VERSION",
    "LANGUAGE_NAMES",
    "MEDIA_TYPES",
    "OPML_FORMAT_LABELS",
    "UNTITLED",
    "CategoryLinks",
    "FeedLinks",
    "archive_url",
    "category_page_url",
    "feed_id",
    "feed_url",
    "render_atom",
    "render_category_page",
    "render_index_page",
    "render_json",
    "render_opml",
    "render_rss",
    "story_item_id",
]

_NO_LINKS = FeedLinks()


# The renderers look ``_atom``, ``_rss`` and ``_json`` up in this module at call time, so a
# test can replace one here and see the translation of its errors.
def render_atom(
    feed: OutputFeed, *, lang: str | None = None, links: FeedLinks = _NO_LINKS
) -> bytes:
    """Atom 1.0 document for ``feed``; ``lang`` names the per-language variant being served."""
    return guarded(_what(feed, "atom"), lambda: _atom(feed, lang, links))


def render_rss(feed: OutputFeed, *, lang: str | None = None, links: FeedLinks = _NO_LINKS) -> bytes:
    """RSS 2.0 document for ``feed``; ``lang`` names the per-language variant being served."""
    return guarded(_what(feed, "rss"), lambda: _rss(feed, lang, links))


def render_json(
    feed: OutputFeed, *, lang: str | None = None, links: FeedLinks = _NO_LINKS
) -> bytes:
    """JSON Feed 1.1 document for ``feed``, UTF-8, keys in a fixed order."""
    return guarded(_what(feed, "json"), lambda: _json(feed, lang, links))


def render_opml(feeds: Sequence[OutputFeed], *, base_url: str, title: str) -> bytes:
    """OPML 2.0 list with one subscribable outline (the Atom feed) per category.

    Each category outline holds ``type="link"`` children for its Atom, RSS and JSON Feed URLs.
    Importers subscribe to outlines that have an ``xmlUrl`` and skip link outlines, so importing
    the list subscribes to each category once; the W3C validator accepts the shape.
    """
    return guarded("OPML", lambda: _opml(feeds, base_url.rstrip("/"), title))


def render_category_page(category: CategoryLinks, *, site_title: str) -> bytes:
    """The category's HTML page: its stories with their language versions and sources."""
    return guarded(
        f"page of {category.feed.category_id!r}",
        lambda: _html.category_page(category, site_title=site_title),
    )


def render_index_page(
    categories: Sequence[CategoryLinks],
    *,
    base_url: str,
    site_title: str,
    site_description: str = "",
) -> bytes:
    """The HTML index: every category page with its latest headlines, and every feed, with
    subscribe links."""
    return guarded(
        "index page",
        lambda: _html.index_page(
            categories, base_url=base_url, site_title=site_title, site_description=site_description
        ),
    )


def _what(feed: OutputFeed, fmt: str) -> str:
    return f"feed {feed.category_id!r} as {fmt}"
