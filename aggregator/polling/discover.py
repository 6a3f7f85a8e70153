"""Feed autodiscovery: the feeds a web page declares with ``<link rel="alternate">``.

Owns ``discover_feeds``, a pure function over the page's bytes (standard ``html.parser``).
Only declared links count: common paths (/feed, /rss.xml …) and ``<a href>`` links are NOT
guessed, so what we subscribe to is always what the site itself advertises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
    }
)
# application/json is JSON Feed 1.0's type, but WordPress also labels its REST API links
# rel="alternate" type="application/json" on every page; those are never feeds.
WORDPRESS_API_PATH = "/wp-json/"
LINK_SCHEMES = frozenset({"http", "https"})
# Where a <meta charset> must appear (HTML: within the first 1024 bytes).
META_CHARSET_BYTES = 1024

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)


@dataclass(frozen=True)
class DiscoveredFeed:
    """A feed a page links to: absolute ``url``, the link's ``title`` and media ``type``."""

    url: str
    title: str | None
    type: str


def discover_feeds(html: bytes | str, base_url: str) -> list[DiscoveredFeed]:
    """The feeds ``html`` declares, in document order, each URL once.

    Relative hrefs are resolved against the page's ``<base href>`` (itself resolved against
    ``base_url``) or ``base_url``. Links that resolve to anything but http(s) are skipped.
    """
    collector = _LinkCollector()
    collector.feed(html if isinstance(html, str) else _decode(html))
    collector.close()
    document_base = base_url
    if collector.base_href is not None:
        candidate = _resolve(base_url, collector.base_href)
        if candidate is not None:
            document_base = candidate
    found: dict[str, DiscoveredFeed] = {}
    for href, media_type, title in collector.links:
        url = _resolve(document_base, href)
        if url is None or url in found:
            continue
        if media_type == "application/json" and WORDPRESS_API_PATH in urlsplit(url).path:
            continue
        found[url] = DiscoveredFeed(url=url, title=title, type=media_type)
    return list(found.values())


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base_href: str | None = None
        self.links: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("link", "base"):
            return
        values = {name: value or "" for name, value in attrs}
        href = values.get("href", "").strip()
        if tag == "base":
            # Only the first <base href> counts (HTML § 4.2.3).
            if self.base_href is None and href:
                self.base_href = href
            return
        rel = values.get("rel", "").lower().split()  # a space-separated token list
        media_type = values.get("type", "").split(";", 1)[0].strip().lower()
        if "alternate" in rel and media_type in FEED_TYPES and href:
            title = " ".join(values.get("title", "").split()) or None
            self.links.append((href, media_type, title))


def _resolve(base: str, href: str) -> str | None:
    # "feed:" pseudo-URLs still appear on old pages: feed://host/path and feed:https://…
    if href.lower().startswith("feed:"):
        rest = href[len("feed:") :]
        href = "http:" + rest if rest.startswith("//") else rest
    try:
        url = urljoin(base, href)
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in LINK_SCHEMES else None


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    match = _META_CHARSET.search(data[:META_CHARSET_BYTES])
    if match is not None:
        try:
            return data.decode(match.group(1).decode("ascii"), "replace")
        except LookupError:
            pass
    # The web's de facto default for undeclared pages.
    return data.decode("cp1252", "replace")
