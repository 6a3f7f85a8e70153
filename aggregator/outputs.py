"""The output documents: which feeds exist, what each contains, and their rendered bytes.

Both the web server and ``publish --out`` ask this module, so static files and served responses
are byte-identical. Each document carries a strong ETag (hash of the bytes) and Last-Modified.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.catalog import Catalog, CategoryConfig
from aggregator.normalize import primary_language
from aggregator.publish import (
    FEED_FORMATS,
    MEDIA_TYPES,
    render_atom,
    render_json,
    render_opml,
    render_rss,
)
from aggregator.representative import for_output
from aggregator.store import Store
from aggregator.types import OutputFeed

OPML_PATH = "feeds.opml"
# An empty feed still needs an <updated>; a fixed date keeps its bytes (and ETag) stable.
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)
FEED_NAME_RE = re.compile(
    r"^(?P<category>[a-z0-9][a-z0-9-]*?)(?:\.(?P<lang>[a-z]{2,3}))?\.(?P<fmt>atom|rss|json)$"
)
_RENDERERS = {"atom": render_atom, "rss": render_rss, "json": render_json}


@dataclass(frozen=True)
class Document:
    body: bytes
    media_type: str
    last_modified: datetime

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class FeedName:
    category: str
    lang: str | None
    fmt: str


def parse_feed_name(name: str) -> FeedName | None:
    """``ai-policy.fr.atom`` → FeedName("ai-policy", "fr", "atom"); None when malformed."""
    match = FEED_NAME_RE.match(name)
    if match is None:
        return None
    return FeedName(match["category"], match["lang"], match["fmt"])


class Outputs:
    """Builds documents from the store for the current catalog."""

    def __init__(self, *, store: Store, catalog: Catalog, base_url: str, tag_authority: str,
                 feed_size: int) -> None:
        self.store = store
        self.catalog = catalog
        self.base_url = base_url.rstrip("/")
        self.tag_authority = tag_authority
        self.feed_size = feed_size

    def output_feed(self, category: CategoryConfig, lang: str | None = None) -> OutputFeed:
        """The category's stories, newest first, each led by its preferred-language entry.

        With ``lang``, only stories that have a version in that language, shown in it.
        """
        stories = self.store.category_stories(category.id, self.feed_size)
        languages = (lang, *category.languages) if lang else category.languages
        shown = [for_output(story, languages) for story in stories]
        if lang:
            shown = [s for s in shown
                     if primary_language(s.representative.language) == lang]
        title = category.title if not lang else f"{category.title} ({lang})"
        return OutputFeed(
            category_id=category.id, title=title,
            description=category.description or category.title,
            language=lang or (category.languages[0] if category.languages else None),
            base_url=self.base_url, tag_authority=self.tag_authority, stories=tuple(shown),
            fallback_updated=EMPTY_FEED_UPDATED, languages=category.languages,
        )

    def feed(self, name: FeedName) -> Document | None:
        """The rendered feed, or None when the category does not exist."""
        try:
            category = self.catalog.category(name.category)
        except KeyError:
            return None
        output = self.output_feed(category, name.lang)
        body = _RENDERERS[name.fmt](output, lang=name.lang)
        return Document(body, MEDIA_TYPES[name.fmt], output.updated)

    def opml(self, feeds: list[OutputFeed] | None = None) -> Document:
        if feeds is None:
            feeds = [self.output_feed(c) for c in self.catalog.categories]
        body = render_opml(feeds, base_url=self.base_url, title="Aggregator feeds")
        updated = max((f.updated for f in feeds), default=EMPTY_FEED_UPDATED)
        return Document(body, MEDIA_TYPES["opml"], updated)

    def all_documents(self) -> Iterator[tuple[str, Document]]:
        """Every main output as (relative path, document), for static publishing."""
        feeds = [self.output_feed(c) for c in self.catalog.categories]
        for output in feeds:
            for fmt in FEED_FORMATS:
                yield (f"feeds/{output.category_id}.{fmt}",
                       Document(_RENDERERS[fmt](output), MEDIA_TYPES[fmt], output.updated))
        yield OPML_PATH, self.opml(feeds)
