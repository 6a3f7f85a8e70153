"""Adding a source to the editorial files: find the feed behind a URL, then append it.

The URL may be a feed or a web page that links to feeds (``<link rel="alternate">``); a page
with several asks the caller to choose. The new ``[[source]]`` is appended to ``sources.toml``
(comments and layout kept) only after the whole catalog validates with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.catalog import CATEGORIES_FILE, SOURCES_FILE, Catalog, load_catalog
from aggregator.discover import DiscoveredFeed, discover_feeds
from aggregator.errors import ConfigError, ParseError, SourceError
from aggregator.fetch import Fetcher
from aggregator.parse import parse_feed

MAX_ID_LENGTH = 48

Chooser = Callable[[Sequence[DiscoveredFeed]], DiscoveredFeed]


@dataclass(frozen=True)
class NewSource:
    id: str
    url: str
    title: str | None
    categories: tuple[str, ...]
    language: str | None = None
    interval: str | None = None


class SubscribeError(SourceError):
    """The URL gave no usable feed; the message says what was found instead."""

    kind = "subscribe"


def find_feed(fetcher: Fetcher, url: str, choose: Chooser) -> tuple[str, str | None]:
    """The feed URL and its title behind ``url`` (a feed itself, or a page linking feeds)."""
    page = fetcher.fetch(url, accept_html=True)
    body = page.content or b""
    try:
        feed = parse_feed(body, url=page.url, headers=page.headers)
        return (page.permanent_redirect or url), feed.title
    except ParseError as not_a_feed:
        candidates = discover_feeds(body, page.url)
        if not candidates:
            raise SubscribeError(f"{url} is not a feed ({not_a_feed}) and links to no feed "
                                 '(no <link rel="alternate"> with a feed type)') from None
    chosen = candidates[0] if len(candidates) == 1 else choose(candidates)
    feed_page = fetcher.fetch(chosen.url)
    feed = parse_feed(feed_page.content or b"", url=feed_page.url, headers=feed_page.headers)
    return chosen.url, feed.title or chosen.title


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


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes), and keeps non-ASCII as is.
    return json.dumps(value, ensure_ascii=False)


def source_block(source: NewSource) -> str:
    lines = ["", "[[source]]", f"id = {_toml_string(source.id)}",
             f"url = {_toml_string(source.url)}"]
    if source.title:
        lines.append(f"title = {_toml_string(source.title)}")
    lines.append("categories = [" + ", ".join(_toml_string(c) for c in source.categories) + "]")
    if source.language:
        lines.append(f"language = {_toml_string(source.language)}")
    if source.interval:
        lines.append(f"interval = {_toml_string(source.interval)}")
    return "\n".join(lines) + "\n"


def append_source(config_dir: Path, catalog: Catalog, source: NewSource) -> Catalog:
    """Append ``source`` to sources.toml if the catalog stays valid; return the new catalog."""
    for existing in catalog.sources:
        if existing.url == source.url:
            raise ConfigError(f"{source.url} is already configured",
                              file=str(config_dir / SOURCES_FILE), item=existing.id, key="url")
    target = config_dir / SOURCES_FILE
    text = target.read_text(encoding="utf-8")
    updated = text + ("" if text.endswith("\n") or not text else "\n") + source_block(source)
    with tempfile.TemporaryDirectory(prefix="aggregator-check-") as scratch:
        trial = Path(scratch)
        (trial / SOURCES_FILE).write_text(updated, encoding="utf-8")
        shutil.copyfile(config_dir / CATEGORIES_FILE, trial / CATEGORIES_FILE)
        load_catalog(trial)  # raises ConfigError naming the problem; nothing written yet
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(updated, encoding="utf-8")
    os.replace(temporary, target)
    return load_catalog(config_dir)
