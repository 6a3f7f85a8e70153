"""The output documents: which exist, what each holds, their bytes, rendered once per change.

Both the web server and ``publish --out`` ask this module, so served responses and static files
are byte-identical. Per category, one store read (the newest stories) is compared with the last
one; only a difference re-renders that category's feeds and page, places new stories in the
archive pages (``aggregator.publishing.archives``) and reports the feed URLs whose bytes changed
(WebSub).
Between checks, at most ``recheck_seconds`` apart, requests are answered from memory.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Final

from aggregator.catalog import Catalog, CategoryConfig
from aggregator.clock import utc_now
from aggregator.metrics import Metrics
from aggregator.polling.normalize import primary_language
from aggregator.publishing.archives import ArchiveLog
from aggregator.publishing.compress import CODINGS, compress, worth_compressing
from aggregator.publishing.filters import FeedFilter
from aggregator.publishing.formats import (
    FEED_FORMATS,
    MEDIA_TYPES,
    CategoryLinks,
    FeedLinks,
    feed_url,
    render_atom,
    render_category_page,
    render_index_page,
    render_json,
    render_opml,
    render_rss,
)
from aggregator.publishing.representative import for_output
from aggregator.store import Store
from aggregator.types import OutputFeed, StoryView

OPML_PATH: Final = "feeds.opml"
INDEX_PATH: Final = "index.html"
DEFAULT_SITE_TITLE: Final = "Aggregator feeds"
# An empty feed still needs an <updated>; a fixed date keeps its bytes (and ETag) stable.
EMPTY_FEED_UPDATED: Final = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_MAX_AGE_SECONDS: Final = 300
# A complete archive page never changes: caches may keep it for a year without asking.
IMMUTABLE_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
# Each check reads this many times the feed size, so stories that never reach the live feed
# (published long before the newest) still get an archive place while they are recent.
SCAN_FACTOR: Final = 4
# Archive documents rendered and kept in memory, most recently used first out.
ARCHIVE_CACHE_SIZE: Final = 256
# Filtered feeds kept in memory, by canonical query, least recently asked for first out.
FILTERED_CACHE_SIZE: Final = 256
FEED_NAME_RE = re.compile(
    r"^(?P<category>[a-z0-9][a-z0-9-]*?)(?:\.(?P<lang>[a-z]{2,3}))?\.(?P<fmt>atom|rss|json)$"
)
ARCHIVE_PATH_RE = re.compile(
    r"^feeds/(?P<category>[a-z0-9][a-z0-9-]*)/archive/"
    r"(?P<page>0|[1-9][0-9]{0,8})(?:\.(?P<lang>[a-z]{2,3}))?\.(?P<fmt>atom|rss|json)$"
)
PAGE_PATH_RE = re.compile(
    r"^categories/(?P<category>[a-z0-9][a-z0-9-]*?)(?:\.(?P<lang>[a-z]{2,3}))?\.html$"
)
_RENDERERS = {"atom": render_atom, "rss": render_rss, "json": render_json}

log = logging.getLogger("aggregator.archives")


def live_cache_control(max_age: int) -> str:
    return f"public, max-age={max_age}"


@dataclass(frozen=True)
class Document:
    """Rendered bytes with their HTTP metadata and their content codings, made with it."""

    body: bytes
    media_type: str
    last_modified: datetime
    cache_control: str = live_cache_control(DEFAULT_MAX_AGE_SECONDS)

    def __post_init__(self) -> None:
        # Compressed here, in the thread that rendered it, so the event loop that serves it
        # never spends milliseconds compressing on a request's path.
        _ = self._encoded

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:32]

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @cached_property
    def _encoded(self) -> dict[str, bytes]:
        if not worth_compressing(self.body):
            return {}
        return {coding: compress(self.body, coding) for coding in CODINGS}

    @property
    def codings(self) -> tuple[str, ...]:
        """The content codings this document is offered in (besides identity)."""
        return tuple(self._encoded)

    def encoded(self, coding: str | None) -> bytes:
        return self.body if coding is None else self._encoded[coding]

    def etag_for(self, coding: str | None) -> str:
        # Each coding is its own representation, so a strong ETag must tell them apart.
        return self.etag if coding is None else f'"{self.digest}-{coding}"'

    @cached_property
    def etags(self) -> tuple[str, ...]:
        return (self.etag, *(self.etag_for(c) for c in self.codings))

    @cached_property
    def memo(self) -> dict[object, object]:
        """Room for a serving layer to keep what it derives from this document (its headers
        on the wire, say), so that work too is done once per document, not per request."""
        return {}


@dataclass(frozen=True)
class FeedName:
    category: str
    lang: str | None
    fmt: str


@dataclass(frozen=True)
class ArchiveName:
    category: str
    page: int
    lang: str | None
    fmt: str


def parse_feed_name(name: str) -> FeedName | None:
    """``ai-policy.fr.atom`` → FeedName("ai-policy", "fr", "atom"); None when malformed."""
    match = FEED_NAME_RE.match(name)
    if match is None:
        return None
    return FeedName(match["category"], match["lang"], match["fmt"])


def parse_archive_path(path: str) -> ArchiveName | None:
    """``feeds/ai-policy/archive/3.fr.atom`` → ArchiveName("ai-policy", 3, "fr", "atom")."""
    match = ARCHIVE_PATH_RE.match(path)
    if match is None:
        return None
    return ArchiveName(match["category"], int(match["page"]), match["lang"], match["fmt"])


def feed_path(category_id: str, fmt: str, lang: str | None = None) -> str:
    return f"feeds/{category_id}.{lang}.{fmt}" if lang else f"feeds/{category_id}.{fmt}"


def archive_path(category_id: str, page: int, fmt: str, lang: str | None = None) -> str:
    name = f"{page}.{lang}" if lang else str(page)
    return f"feeds/{category_id}/archive/{name}.{fmt}"


def page_path(category_id: str, lang: str | None = None) -> str:
    return f"categories/{category_id}.{lang}.html" if lang else f"categories/{category_id}.html"


@dataclass
class _State:
    """What one category looked like at its last check, and what was rendered from it."""

    stories: list[StoryView]
    pages: int
    checked: float
    documents: dict[str, Document] = field(default_factory=dict)


@dataclass
class _Filtered:
    """A filtered feed as last read and rendered."""

    stories: list[StoryView]
    checked: float
    document: Document


class _Unseen(list[StoryView]):
    """Stories that compare unequal to any read from the store (see ``use_catalog``)."""

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = list.__hash__  # None, as for any list


class Outputs:
    """Builds documents from the store for the current catalog, and keeps them until the
    category changes."""

    def __init__(
        self,
        *,
        store: Store,
        catalog: Catalog,
        base_url: str,
        tag_authority: str,
        feed_size: int,
        archive_dir: Path | None = None,
        hub_url: str | None = None,
        max_age: int = DEFAULT_MAX_AGE_SECONDS,
        recheck_seconds: float = 0.0,
        on_change: Callable[[list[str]], None] | None = None,
        variant_fallback: bool = False,
        site_title: str = DEFAULT_SITE_TITLE,
        site_description: str = "",
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.catalog = catalog
        self.base_url = base_url.rstrip("/")
        self.tag_authority = tag_authority
        self.feed_size = feed_size
        self.hub_url = hub_url or None
        self.max_age = max_age
        self.recheck_seconds = recheck_seconds
        self.on_change = on_change
        # Per-language feeds: a story without a version in the feed's language is left out
        # (the default), or shown in the category's preferred language with its own xml:lang.
        self.variant_fallback = variant_fallback
        self.site_title = site_title or DEFAULT_SITE_TITLE
        self.site_description = site_description
        self.archives = ArchiveLog(archive_dir, page_size=feed_size)
        # Why the last archive write failed, until one succeeds (read by /readyz).
        self.write_error: str | None = None
        # Set while an OutputWatcher keeps every category checked (see _is_fresh).
        self.watched = False
        self._clock = clock
        self._lock = threading.RLock()
        self._states: dict[str, _State] = {}
        self._site: dict[str, Document] = {}
        self._archive_documents: OrderedDict[str, Document] = OrderedDict()
        self._filtered: OrderedDict[str, _Filtered] = OrderedDict()

    def use_catalog(self, catalog: Catalog) -> None:
        """Serve ``catalog`` from now on. A category renders again only when its stories
        change, yet a new title, description or language list must show too: every category
        is marked stale with stories that match nothing, so its next check renders it afresh
        (and reports the feeds whose bytes changed) while requests meanwhile get what is there.
        """
        with self._lock:
            self.catalog = catalog
            for state in self._states.values():
                state.stories = _Unseen(state.stories)
                state.checked = float("-inf")
            self._site.clear()
            self._filtered.clear()

    # -- what a category shows -------------------------------------------------------------

    def output_feed(self, category: CategoryConfig, lang: str | None = None) -> OutputFeed:
        """The category's newest stories, each led by its preferred-language entry.

        With ``lang``, each story is shown in that language where a version exists; the others
        are left out, or with ``variant_fallback`` shown in the category's preferred language.
        """
        state = self._fresh(category)
        return self._view(category, state.stories[: self.feed_size], lang)

    def _view(
        self, category: CategoryConfig, stories: Sequence[StoryView], lang: str | None
    ) -> OutputFeed:
        languages = (lang, *category.languages) if lang else category.languages
        shown = [for_output(story, languages, self.catalog.priorities) for story in stories]
        fallback = (
            self.variant_fallback if category.variants is None else category.variants == "fallback"
        )
        if lang and not fallback:
            shown = [s for s in shown if primary_language(s.representative.language) == lang]
        title = category.title_in(lang)
        if lang and title == category.title:
            # No title in that language: the suffix keeps the variant apart in readers' lists.
            title = f"{category.title} ({lang})"
        return OutputFeed(
            category_id=category.id,
            title=title,
            description=category.description_in(lang) or category.title_in(lang),
            language=lang or (category.languages[0] if category.languages else None),
            base_url=self.base_url,
            tag_authority=self.tag_authority,
            stories=tuple(shown),
            fallback_updated=EMPTY_FEED_UPDATED,
            languages=category.languages,
            site_title=self.site_title,
        )

    # -- documents by name -----------------------------------------------------------------

    def feed(self, name: FeedName) -> Document | None:
        """The rendered live feed, or None when the category does not exist."""
        return self.document(feed_path(name.category, name.fmt, name.lang))

    def filtered_feed(self, name: FeedName, wanted: FeedFilter) -> Document | None:
        """The live feed narrowed by ``wanted`` (``publishing.filters``), or None when the
        category does not exist. Like the plain feeds, the store is read at most every
        ``recheck_seconds`` and the same stories give the same bytes (and ETag). Filtered
        feeds have no archive pages and no WebSub hub: they are views of the live feed."""
        category = self._category(name.category)
        if category is None:
            return None
        query = wanted.query()
        key = f"{feed_path(category.id, name.fmt)}?{query}"
        with self._lock:
            cached = self._filtered.get(key)
            if cached is not None:
                self._filtered.move_to_end(key)
                if self._clock() - cached.checked < self.recheck_seconds:
                    return cached.document
        limit = wanted.limit or self.feed_size
        # A language keeps only the stories with a version in it: read more to fill the feed.
        stories = self.store.category_stories(
            category.id,
            limit * SCAN_FACTOR if wanted.lang else limit,
            terms=wanted.terms,
            min_sources=wanted.min_sources,
            published_since=wanted.since,
        )
        now = self._clock()
        if cached is not None and cached.stories == stories:
            cached.checked = now
            return cached.document
        self._rendered("feed")
        output = self._view(category, stories, wanted.lang)
        described = wanted.describe()
        output = replace(
            output,
            stories=output.stories[:limit],
            title=f"{output.title}: {described}" if described else output.title,
        )
        body = _RENDERERS[name.fmt](output, lang=wanted.lang, links=FeedLinks(query=query))
        document = Document(
            body, MEDIA_TYPES[name.fmt], output.updated, live_cache_control(self.max_age)
        )
        with self._lock:
            self._filtered[key] = _Filtered(stories, now, document)
            while len(self._filtered) > FILTERED_CACHE_SIZE:
                self._filtered.popitem(last=False)
        return document

    def archive(self, name: ArchiveName) -> Document | None:
        """A complete archive page, or None when there is no such category or page (yet)."""
        return self.document(archive_path(name.category, name.page, name.fmt, name.lang))

    def is_next_archive(self, name: ArchiveName) -> bool:
        """Whether ``name`` is the page that will be frozen next in an existing category."""
        category = self._category(name.category)
        return category is not None and name.page == self._fresh(category).pages

    @property
    def live_cache_control(self) -> str:
        return live_cache_control(self.max_age)

    def opml(self) -> Document:
        document = self.document(OPML_PATH)
        assert document is not None
        return document

    def cached(self, path: str) -> Document | None:
        """The document at ``path`` if it is in memory and its category was checked recently
        enough; None means "ask ``document``". Never reads the store or renders."""
        document = self._cached(path)
        if document is not None and self.metrics is not None:
            self.metrics.cache_hit()
        return document

    def _cached(self, path: str) -> Document | None:
        archived = self._archive_documents.get(path)
        if archived is not None:
            return archived
        if path in (OPML_PATH, INDEX_PATH):
            fresh = all(self._is_fresh(c.id) for c in self.catalog.categories)
            return self._site.get(path) if fresh else None
        category = _category_of(path)
        if category is None or not self._is_fresh(category):
            return None
        return self._states[category].documents.get(path)

    def document(self, path: str) -> Document | None:
        """The document at ``path`` (``feeds/news.atom``, ``feeds/news/archive/0.rss``,
        ``categories/news.html``, ``feeds.opml``, ``index.html``); None when there is none."""
        if path in (OPML_PATH, INDEX_PATH):
            return self._site_document(path)
        archive = parse_archive_path(path)
        if archive is not None:
            return self._archive_document(archive)
        category_id = _category_of(path)
        category = self._category(category_id) if category_id else None
        if category is None:
            return None
        state = self._fresh(category)
        document = state.documents.get(path)
        if document is not None:
            return document
        feed = parse_feed_name(path.removeprefix("feeds/"))
        if feed is None or not path.startswith("feeds/"):
            return None
        with self._lock:
            document = self._render_feed(category, state, feed.fmt, feed.lang)
            state.documents.setdefault(path, document)
        return document

    def all_documents(self) -> Iterator[tuple[str, Document]]:
        """Every output as (relative path, document), for static publishing: live feeds and
        their language variants, every archive page, the HTML pages and the OPML list."""
        self.refresh()
        for category in self.catalog.categories:
            state = self._fresh(category)
            for lang in (None, *category.languages):
                for fmt in FEED_FORMATS:
                    path = feed_path(category.id, fmt, lang)
                    document = self.document(path)
                    assert document is not None
                    yield path, document
                    for page in range(state.pages):
                        path = archive_path(category.id, page, fmt, lang)
                        document = self.document(path)
                        assert document is not None
                        yield path, document
            for lang in (None, *category.languages):
                path = page_path(category.id, lang)
                yield path, state.documents[path]
        yield OPML_PATH, self.opml()
        index = self.document(INDEX_PATH)
        assert index is not None
        yield INDEX_PATH, index

    def live_feed_urls(self, paths: Sequence[str]) -> list[str]:
        """Public URLs of the live feeds among ``paths`` (what a WebSub hub is told about)."""
        urls = []
        for path in paths:
            name = parse_feed_name(path.removeprefix("feeds/"))
            if path.startswith("feeds/") and name is not None:
                urls.append(feed_url(self.base_url, name.category, name.fmt, name.lang))
        return urls

    # -- checking for changes --------------------------------------------------------------

    def refresh(self) -> list[str]:
        """Check every category now; returns (and reports to ``on_change``) the URLs of live
        feeds whose bytes changed since this process last rendered them."""
        changed: list[str] = []
        for category in self.catalog.categories:
            with self._lock:
                changed += self._check(category)
        self._report(changed)
        return changed

    def _is_fresh(self, category_id: str) -> bool:
        state = self._states.get(category_id)
        # With a watcher re-checking every interval, a request never waits for a check: what
        # is in memory serves until it is two intervals old (the watcher is then late).
        limit = self.recheck_seconds * (2 if self.watched else 1)
        return state is not None and self._clock() - state.checked < limit

    def _fresh(self, category: CategoryConfig) -> _State:
        state = self._states.get(category.id)
        if state is not None and self._clock() - state.checked < self.recheck_seconds:
            return state
        with self._lock:
            # Checked again under the lock: of many requests that found the category stale
            # at once, only the first reads the store.
            state = self._states.get(category.id)
            if state is not None and self._clock() - state.checked < self.recheck_seconds:
                return state
            changed = self._check(category)
            state = self._states[category.id]
        self._report(changed)
        return state

    def _check(self, category: CategoryConfig) -> list[str]:
        """Read the category's newest stories; re-render only if they differ. Caller locks."""
        stories = self.store.category_stories(category.id, self.feed_size * SCAN_FACTOR)
        now = self._clock()
        previous = self._states.get(category.id)
        if previous is not None and previous.stories == stories:
            previous.checked = now
            return []
        try:
            pages = self.archives.observe(
                category.id,
                stories,
                stories[: self.feed_size],
                withdrawn=lambda uids: self.store.withdrawn_uids(category.id, uids),
            )
        except OSError as exc:
            # A full or broken disk: keep serving the last good bytes and say so in /readyz;
            # the next check tries the write again.
            self.write_error = f"archive write failed for {category.id!r}: {exc}"
            log.error("action=archive outcome=error category=%s error=%r", category.id, str(exc))
            if previous is None:
                raise
            previous.checked = now
            return []
        self.write_error = None
        state = _State(stories=stories, pages=pages, checked=now)
        changed = []
        for lang in (None, *category.languages):
            for fmt in FEED_FORMATS:
                path = feed_path(category.id, fmt, lang)
                document = self._render_feed(category, state, fmt, lang)
                state.documents[path] = document
                old = previous.documents.get(path) if previous is not None else None
                # A first check has nothing to compare with: it is not a change we saw.
                if old is not None and old.etag != document.etag:
                    changed.append(feed_url(self.base_url, category.id, fmt, lang))
        for lang in (None, *category.languages):
            state.documents[page_path(category.id, lang)] = self._render_page(category, state, lang)
        self._states[category.id] = state
        self._site.clear()
        if changed and not self._first_to_see(category.id, state):
            return []
        return changed

    def _first_to_see(self, category_id: str, state: _State) -> bool:
        """Whether this process is the first of the workers sharing the store to see the
        category's outputs become what ``state`` holds: only that one reports the change
        (one WebSub ping per change, not one per worker). Rendering is deterministic, so every
        worker computes the same digest for the same stories."""
        digest = hashlib.sha256(
            " ".join(
                f"{path}={document.digest}" for path, document in sorted(state.documents.items())
            ).encode()
        ).hexdigest()
        return self.store.claim_output_change(category_id, digest, utc_now())

    def _report(self, changed: list[str]) -> None:
        if changed and self.on_change is not None:
            self.on_change(changed)

    # -- rendering -------------------------------------------------------------------------

    def _render_feed(
        self, category: CategoryConfig, state: _State, fmt: str, lang: str | None
    ) -> Document:
        self._rendered("feed")
        output = self._view(category, state.stories[: self.feed_size], lang)
        newest = state.pages - 1 if state.pages else None
        links = FeedLinks(prev_archive=newest, hub=self.hub_url)
        body = _RENDERERS[fmt](output, lang=lang, links=links)
        return Document(body, MEDIA_TYPES[fmt], output.updated, live_cache_control(self.max_age))

    def _render_page(
        self, category: CategoryConfig, state: _State, lang: str | None = None
    ) -> Document:
        self._rendered("page")
        output = self._view(category, state.stories[: self.feed_size], lang)
        links = self._category_links(category, output, state, lang)
        body = render_category_page(links, site_title=self.site_title)
        return Document(body, MEDIA_TYPES["html"], output.updated, live_cache_control(self.max_age))

    def _category_links(
        self, category: CategoryConfig, output: OutputFeed, state: _State, lang: str | None = None
    ) -> CategoryLinks:
        return CategoryLinks(
            feed=output,
            languages=category.languages,
            newest_archive=state.pages - 1 if state.pages else None,
            lang=lang,
        )

    def _archive_document(self, name: ArchiveName) -> Document | None:
        path = archive_path(name.category, name.page, name.fmt, name.lang)
        with self._lock:
            document = self._archive_documents.get(path)
            if document is not None:
                self._archive_documents.move_to_end(path)
                return document
        category = self._category(name.category)
        if category is None:
            return None
        stories = self.archives.page(category.id, name.page)
        if stories is None:
            # Perhaps completed by stories this process has not looked at yet.
            self._fresh(category)
            stories = self.archives.page(category.id, name.page)
        if stories is None:
            return None
        self._rendered("archive")
        # Newest first, like the live feed.
        ordered = sorted(stories, key=lambda s: (s.first_seen, s.story_id), reverse=True)
        output = self._view(category, ordered, name.lang)
        links = FeedLinks(archive=name.page, prev_archive=name.page - 1 if name.page > 0 else None)
        body = _RENDERERS[name.fmt](output, lang=name.lang, links=links)
        document = Document(body, MEDIA_TYPES[name.fmt], output.updated, IMMUTABLE_CACHE_CONTROL)
        with self._lock:
            self._archive_documents[path] = document
            while len(self._archive_documents) > ARCHIVE_CACHE_SIZE:
                self._archive_documents.popitem(last=False)
        return document

    def _site_document(self, path: str) -> Document:
        states = [(c, self._fresh(c)) for c in self.catalog.categories]
        with self._lock:
            document = self._site.get(path)
            if document is not None:
                return document
            self._rendered("opml" if path == OPML_PATH else "index")
            views = [(c, self._view(c, s.stories[: self.feed_size], None), s) for c, s in states]
            updated = max((v.updated for _, v, _ in views), default=EMPTY_FEED_UPDATED)
            if path == OPML_PATH:
                body = render_opml(
                    [v for _, v, _ in views], base_url=self.base_url, title=self.site_title
                )
                document = Document(
                    body, MEDIA_TYPES["opml"], updated, live_cache_control(self.max_age)
                )
            else:
                links = [self._category_links(c, v, s) for c, v, s in views]
                body = render_index_page(
                    links,
                    base_url=self.base_url,
                    site_title=self.site_title,
                    site_description=self.site_description,
                )
                document = Document(
                    body, MEDIA_TYPES["html"], updated, live_cache_control(self.max_age)
                )
            self._site[path] = document
            return document

    def _rendered(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.rendered(kind)

    def _category(self, category_id: str) -> CategoryConfig | None:
        try:
            return self.catalog.category(category_id)
        except KeyError:
            return None


@lru_cache(maxsize=1024)
def _category_of(path: str) -> str | None:
    """The category a live feed or page path belongs to; None for anything else."""
    if path.startswith("feeds/"):
        name = parse_feed_name(path.removeprefix("feeds/"))
        return name.category if name is not None else None
    match = PAGE_PATH_RE.match(path)
    return match["category"] if match is not None else None
