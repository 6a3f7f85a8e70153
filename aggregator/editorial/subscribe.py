"""Adding a source to the editorial files: find the feed behind a URL, then append it.

The URL may be a feed or a web page that links to feeds (``<link rel="alternate">``); a page
with several asks the caller to choose. The new ``[[source]]`` is appended to ``sources.toml``
by ``aggregator.editorial.configedit`` (comments and layout kept) only after the whole catalog
validates
with it. ``slug_for`` makes readable unique ids, for OPML imports too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.catalog import Catalog, clean_title, load_catalog, url_problem
from aggregator.editorial.configedit import NewSource, add_sources
from aggregator.errors import ConfigError, ParseError, SourceError
from aggregator.polling.discover import DiscoveredFeed, discover_feeds
from aggregator.polling.fetch import Fetcher

MAX_ID_LENGTH = 48

__all__ = ["NewSource", "SubscribeError", "append_source", "find_feed", "slug_for"]

Chooser = Callable[[Sequence[DiscoveredFeed]], DiscoveredFeed]


class SubscribeError(SourceError):
    """The URL gave no usable feed; the message says what was found instead."""

    kind = "subscribe"


def find_feed(fetcher: Fetcher, url: str, choose: Chooser) -> tuple[str, str | None]:
    """The feed URL and its title behind ``url`` (a feed itself, or a page linking feeds).

    ``url`` is checked as the catalog would before anything is fetched; the title, written by
    the feed's publisher, comes back cleaned (``catalog.clean_title``).
    """
    # Imported here: the service imports this module for ``slug_for`` (the admin) and need
    # not hold the feed parser for it (its polls parse in worker processes).
    from aggregator.polling.parse import parse_feed  # noqa: PLC0415

    reason = url_problem(url)
    if reason is not None:
        raise ConfigError(reason, key="URL")
    page = fetcher.fetch(url, accept_html=True)
    body = page.content or b""
    try:
        feed = parse_feed(body, url=page.url, headers=page.headers)
        return (page.permanent_redirect or url), clean_title(feed.title)
    except ParseError as not_a_feed:
        candidates = discover_feeds(body, page.url)
        if not candidates:
            raise SubscribeError(
                f"{url} is not a feed ({not_a_feed}) and links to no feed "
                '(no <link rel="alternate"> with a feed type)'
            ) from None
    chosen = candidates[0] if len(candidates) == 1 else choose(candidates)
    feed_page = fetcher.fetch(chosen.url)
    feed = parse_feed(feed_page.content or b"", url=feed_page.url, headers=feed_page.headers)
    return chosen.url, clean_title(feed.title) or clean_title(chosen.title)


def slug_for(title: str | None, url: str, taken: set[str]) -> str:
    """A readable unused id: from the title, else the host name."""
    base = re.sub(r"[^a-z0-9]+", "-", (title or "").lower()).strip("-")
    if not base:
        host = (urlsplit(url).hostname or "source").removeprefix("www.")
        base = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-") or "source"
    base = base[:MAX_ID_LENGTH].strip("-")
    candidate, number = base, 2
    while candidate in taken:
        candidate = f"{base}-{number}"
        number += 1
    return candidate


def append_source(config_dir: Path, catalog: Catalog, source: NewSource) -> Catalog:
    """Append ``source`` to sources.toml if the catalog stays valid; return the new catalog."""
    add_sources(config_dir, [source])
    return load_catalog(config_dir)
