"""Turning a fetched body into a ``ParsedFeed``: RSS, Atom, RDF and CDF through feedparser,
JSON Feed 1.0/1.1 through the standard ``json`` module.

The only module importing feedparser. It never fetches: it reads the bytes it is given, with
the response headers for encoding detection. Anything that is not a feed raises ``ParseError``
saying what was found instead.
"""

from __future__ import annotations

import calendar
import contextvars
import functools
import html
import importlib.util
import io
import json
import posixpath
import re
import xml.sax
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urljoin
from xml.sax import SAXParseException

import feedparser
import feedparser.api
import feedparser.html
import feedparser.mixin
from feedparser.namespaces import mediarss
from feedparser.urls import resolve_relative_uris
from feedparser.util import FeedParserDict

from aggregator.errors import ParseError
from aggregator.polling import fpshortcuts, saxbuffered
from aggregator.polling.localdates import parse_localized_date
from aggregator.polling.normalize import resolve_link
from aggregator.safety.sanitize import plain_title, scrub_text
from aggregator.safety.xml import defuse_entities
from aggregator.types import Enclosure, MediaImage, ParsedEntry, ParsedFeed

JSON_MEDIA_TYPES = frozenset({"application/feed+json", "application/json"})
JSON_FEED_VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")

# How much of an unexpected document we look at, and quote, to say what it is.
SNIFF_BYTES = 4096
QUOTE_CHARS = 60

# What feedparser is asked to do beyond reading the document: nothing that normalize redoes
# (nh3 sanitizes, links are resolved against the real URL there).
FEEDPARSER_OPTIONS: Final = {"sanitize_html": False, "resolve_relative_uris": False}

# An RSS <ttl> beyond a week is a typo or a joke; ignore it rather than stop polling.
MAX_TTL_MINUTES = 7 * 24 * 60

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
LINK_SCHEMES = frozenset({"http", "https"})

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_HTML_ROOTS = frozenset({"html", "head", "body"})
_FIRST_ELEMENT = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_GZIP_MAGIC = b"\x1f\x8b"
# feedparser resolves relative references (links, and the RSS guids it takes for permalinks)
# against the document base. It gets this sentinel instead of the real URL and _as_written
# undoes it: guids come back as the feed wrote them, so they do not change when the feed
# moves (http -> https), and links are then resolved against the real URL. Giving feedparser
# no base at all is worse: it then keeps an item's xml:base for the items that follow.
SENTINEL_DEPTH = 32
_SENTINEL_SCHEME = "shttp:"  # registered with urllib and feedparser, never used for real
_SENTINEL_ORIGIN = _SENTINEL_SCHEME + "//document-base.invalid"
_SENTINEL_DIR = "/" + "_/" * SENTINEL_DEPTH
_SENTINEL_PATH = _SENTINEL_DIR + "document"
_SENTINEL_BASE = _SENTINEL_ORIGIN + _SENTINEL_PATH
# An href/src whose value has no scheme and is not protocol-relative or a same-page anchor.
_RELATIVE_URL_ATTRIBUTE = re.compile(
    r"""\b(?:href|src)\s*=\s*+["']?+\s*+(?![a-z][a-z0-9+.\-]*:|//|#)""", re.IGNORECASE
)


# feedparser reads <media:description> (an image or video caption in Media RSS) as the item's
# own <description>: the first of the two becomes the summary and the other a content block,
# so a caption can take the summary's place or be shown as the article (El País, issue 15).
# While our parse runs, the element is kept under its own key, as any unknown element is;
# other callers of feedparser in the process keep its behaviour.
_OWN_MEDIA_DESCRIPTION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "own_media_description", default=False
)
_fp_start_media_description = mediarss.Namespace._start_media_description
_fp_end_media_description = mediarss.Namespace._end_media_description


def _start_media_description(parser: Any, attrs_d: Any) -> Any:
    if _OWN_MEDIA_DESCRIPTION.get():
        return parser.push("media_description", 1)
    return _fp_start_media_description(parser, attrs_d)


def _end_media_description(parser: Any) -> Any:
    if _OWN_MEDIA_DESCRIPTION.get():
        return parser.pop("media_description")
    return _fp_end_media_description(parser)


mediarss.Namespace._start_media_description = _start_media_description
mediarss.Namespace._end_media_description = _end_media_description


# feedparser joins URLs with urllib on every element: each start tag makes its base absolute
# again (``make_safe_absolute_uri(base, base)`` when the element has no xml:base), and every
# link, id and href is joined with that base. Both are pure functions of their arguments, so
# the same answers come cheaper: a cache for the first (one base per document, seen on every
# tag), and for the second, an absolute http(s) URL under our sentinel base is returned as
# written, which is what urljoin returns for a URL whose scheme differs from the base's.
# tests/integration/test_parse_differential.py compares both with feedparser's own on the corpora.
_fp_make_safe_absolute_uri = feedparser.mixin.make_safe_absolute_uri
_fp_urljoin = feedparser.mixin._urljoin
URI_CACHE_SIZE: Final = 256


@functools.lru_cache(maxsize=URI_CACHE_SIZE)
def _cached_safe_absolute_uri(base: str, rel: str) -> str:
    return str(_fp_make_safe_absolute_uri(base, rel))


def _make_safe_absolute_uri(base: Any, rel: Any = None) -> Any:
    if isinstance(base, str) and isinstance(rel, str):
        return _cached_safe_absolute_uri(base, rel)
    return _fp_make_safe_absolute_uri(base, rel)


def _urljoin(base: Any, uri: Any) -> Any:
    if (
        isinstance(base, str)
        and isinstance(uri, str)
        and base.startswith(_SENTINEL_SCHEME)
        and _is_plain_absolute_http(uri)
    ):
        return uri
    return _fp_urljoin(base, uri)


def _is_plain_absolute_http(uri: str) -> bool:
    """An ASCII http(s) URL that feedparser's slash fix leaves alone and urllib parses without
    error (no brackets: those are IPv6 hosts, which it checks)."""
    if uri.startswith("https://"):
        after = 8
    elif uri.startswith("http://"):
        after = 7
    else:
        return False
    return (
        uri.isascii()
        and uri[after : after + 1] not in ("/", "")
        and "[" not in uri
        and "]" not in uri
    )


feedparser.mixin.make_safe_absolute_uri = _make_safe_absolute_uri
feedparser.mixin._urljoin = _urljoin


# What else feedparser spends per element and per document, beside the XML parser itself:
# FeedParserDict's lookups (each goes through its key map and its computed keys, about a dozen
# times per element), a deep copy of the content parameters for each text element, the
# cp1252 translation of each element's text (costly on non-ASCII text, see fpshortcuts),
# xml.sax trying to import drv_libxml2, not installed here, for every document, and a call
# for each line and entity reference of a text (saxbuffered). Each shortcut gives
# feedparser's own answer for every input (tests/unit/test_fpshortcuts.py and
# test_saxbuffered.py, and the corpora in tests/integration/test_parse_differential.py), so
# they hold for every caller of feedparser in the process. The slow keys are those
# FeedParserDict treats apart in feedparser 6.0: its key map, and the keys it computes.
FP_DICT_COMPUTED_KEYS: Final = ("category", "enclosures", "license", "updated", "updated_parsed")
_fp_dict_methods = {
    name: FeedParserDict.__dict__[name]
    for name in ("__getitem__", "get", "__contains__", "__setitem__", "setdefault")
}
_fp_copy = feedparser.mixin.copy
_fp_cp1252 = feedparser.mixin._cp1252
_fp_xml_parsers = list(feedparser.api.PREFERRED_XML_PARSERS)

for _name, _method in fpshortcuts.dict_methods(
    FeedParserDict, (*FP_DICT_COMPUTED_KEYS, *FeedParserDict.keymap)
).items():
    setattr(FeedParserDict, _name, _method)
feedparser.mixin.copy = fpshortcuts.FlatDeepcopy(FeedParserDict)
feedparser.mixin._cp1252 = fpshortcuts.translation_table(feedparser.html._cp1252)
_xml_parsers = fpshortcuts.findable_modules(importlib.util.find_spec, _fp_xml_parsers)
if not _xml_parsers and xml.sax.default_parser_list == ["xml.sax.expatreader"]:
    # What feedparser would get, the standard expat reader, with its text runs in one piece.
    _xml_parsers = [saxbuffered.__name__]
# In place: feedparser reads the list at each parse, and a caller may have added to it.
feedparser.api.PREFERRED_XML_PARSERS[:] = _xml_parsers


def parse_feed(content: bytes, *, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """Parse one fetched body. ``headers`` are the response headers, lower-case names.

    Relative links are resolved against ``url`` (and any Content-Location or xml:base).
    Raises ``ParseError`` when the body is not a feed we can read.
    """
    if not content or not content.strip():
        raise ParseError("not a feed: the body is empty")
    if content.startswith(_GZIP_MAGIC):
        # Content-Encoding is fetch's job; a gzip body here was compressed twice or mislabelled.
        raise ParseError("not a feed: the body is gzip-compressed data, not a document")
    lowered = {name.lower(): value for name, value in headers.items()}
    base = _document_base(url, lowered)
    if _looks_like_json(content, lowered):
        return _parse_json_feed(content, base)
    return _parse_xml_feed(defuse_entities(content), base, lowered)


def _document_base(url: str, headers: Mapping[str, str]) -> str:
    location = headers.get("content-location", "").strip()
    if not location:
        return url
    try:
        return urljoin(url, location)
    except ValueError:
        return url


def _looks_like_json(content: bytes, headers: Mapping[str, str]) -> bool:
    start = _strip_bom(content[:SNIFF_BYTES]).lstrip()
    if start[:1] in (b"{", b"["):
        return True
    if start[:1] == b"<":
        return False
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type in JSON_MEDIA_TYPES


def _strip_bom(data: bytes) -> bytes:
    for bom in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :]
    return data


# ---------------------------------------------------------------------------------------------
# RSS / Atom / RDF through feedparser


def run_feedparser(content: bytes, headers: Mapping[str, str]) -> Any:
    """feedparser's result for a defused document, as ``parse_feed`` reads it (the sentinel
    base, our own media:description); public for the parse benchmark's split."""
    fp_headers = {**headers, "content-location": _SENTINEL_BASE}
    token = _OWN_MEDIA_DESCRIPTION.set(True)
    try:
        # A BytesIO, never bare bytes: feedparser treats a bytes/str argument as a possible
        # file name or URL and would open or fetch it.
        return feedparser.parse(
            io.BytesIO(content), response_headers=fp_headers, **FEEDPARSER_OPTIONS
        )
    finally:
        _OWN_MEDIA_DESCRIPTION.reset(token)


def _parse_xml_feed(content: bytes, base: str, headers: Mapping[str, str]) -> ParsedFeed:
    try:
        result = run_feedparser(content, headers)
    except Exception as exc:  # feedparser is meant never to raise; if it does, it is this feed's
        raise ParseError(f"not a feed: the parser failed ({type(exc).__name__}: {exc})") from exc

    version = str(_get(result, "version") or "")
    raw_entries: list[Any] = list(_get(result, "entries") or [])
    bozo_exc = _get(result, "bozo_exception") if _get(result, "bozo") else None
    if not version and not raw_entries:
        raise ParseError(_describe_non_feed(content, bozo_exc))

    try:
        feed_data: Mapping[str, Any] = _get(result, "feed") or {}
        entries = tuple(_entry_from_feedparser(raw, base) for raw in raw_entries)
        feed_title_detail = _get(feed_data, "title_detail") or {}
        return ParsedFeed(
            title=plain_title(
                _text(_get(feed_data, "title")),
                _detail_is_html(feed_title_detail),
            )
            or None,
            link=_absolute_link(_text(_get(feed_data, "link")), base),
            language=_text(_get(feed_data, "language"))
            or _text(_get(feed_title_detail, "language")),
            entries=entries,
            version=version or None,
            bozo_message=_describe_bozo(bozo_exc) if bozo_exc is not None else None,
            ttl_minutes=_update_hint(feed_data),
        )
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ParseError(f"unreadable feed structure: {type(exc).__name__}: {exc}") from exc


def _entry_from_feedparser(raw: Mapping[str, Any], base: str) -> ParsedEntry:
    title_detail: Mapping[str, Any] = _get(raw, "title_detail") or {}
    summary_detail: Mapping[str, Any] | None = _get(raw, "summary_detail")
    content_detail = _pick_content(_get(raw, "content") or [])
    guid = _as_written(_text(_get(raw, "id")))
    published = _utc(_get(raw, "published_parsed") or _get(raw, "created_parsed"))
    # dict.get, not raw.get: feedparser's own get() falls back from updated to published.
    updated = _utc(_get(raw, "updated_parsed"))
    localized = False
    if published is None and updated is None:
        # feedparser reads English names only: "Seg, 24 Set 2018" is left unparsed.
        published = parse_localized_date(
            _text(_get(raw, "published")) or _text(_get(raw, "created"))
        )
        updated = parse_localized_date(_text(_get(raw, "updated")))
        localized = published is not None or updated is not None
    return ParsedEntry(
        guid=guid,
        link=_entry_link(raw, guid, base),
        title=_text(_get(raw, "title")),
        title_is_html=_detail_is_html(title_detail),
        # Only a declared summary: feedparser copies Atom content into ``summary`` otherwise.
        summary=_detail_html(summary_detail, base) if summary_detail else _media_summary(raw),
        content=_detail_html(content_detail, base) if content_detail else None,
        published=published,
        updated=updated,
        author=_author(raw),
        language=_entry_language(title_detail, summary_detail, content_detail),
        tags=_tags(_get(raw, "tags") or []),
        enclosures=_enclosures(_get(raw, "links") or [], base),
        date_localized=localized,
        media_enclosures=_media_enclosures(_get(raw, "media_content") or [], base),
        image=_entry_image(raw, base),
    )


def _media_summary(raw: Mapping[str, Any]) -> str | None:
    """A Media RSS description as the summary of an entry that has no other text (YouTube's
    Atom feeds put a video's description only there); plain text, as the spec says."""
    if _get(raw, "content"):
        return None
    text = _text(_get(raw, "media_description"), strip=False)
    return _text_to_html(text) if text and text.strip() else None


def _entry_link(raw: Mapping[str, Any], guid: str | None, base: str) -> str | None:
    link = _text(_get(raw, "link"))
    # With no <link>, feedparser copies a permalink-looking guid into ``link``; Atom ids such
    # as tag: URIs are not links, and _absolute_link drops those.
    if link is None and guid is not None and _get(raw, "guidislink"):
        link = guid
    return _absolute_link(link, base)


def _absolute_link(link: str | None, base: str) -> str | None:
    """``link`` resolved against ``base``; None for non-web schemes (tag:, javascript:…)."""
    link = _as_written(link)
    if not link:
        return None
    found = resolve_link(link, base)
    if found is None:
        return None
    resolved, scheme = found
    if scheme and scheme not in LINK_SCHEMES:
        return None
    return resolved or None


def _as_written(value: str | None) -> str | None:
    """Undo feedparser's resolution against ``_SENTINEL_BASE``: the reference as the feed
    wrote it (up to dot segments). Values that never touched the sentinel pass through."""
    if value is None or not value.startswith(_SENTINEL_SCHEME):
        return value
    if not value.startswith(_SENTINEL_ORIGIN):
        # A protocol-relative "//host/path" took the sentinel's scheme.
        return value[len(_SENTINEL_SCHEME) :] or None
    rest = value[len(_SENTINEL_ORIGIN) :]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    path, tail = rest[:cut], rest[cut:]
    if path == _SENTINEL_PATH:
        relative = ""
    elif path.startswith(_SENTINEL_DIR):
        relative = path[len(_SENTINEL_DIR) :] or "./"
    elif path.startswith("/_/"):
        # "../" climbed part of the way up the sentinel's directories.
        relative = posixpath.relpath(path, _SENTINEL_DIR) + ("/" if path.endswith("/") else "")
    else:
        relative = path or "/"  # a root-relative reference
    return (relative + tail) or None


def _pick_content(contents: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first HTML content block, else the first of any type."""
    for item in contents:
        if _detail_is_html(item) and _get(item, "value"):
            return item
    for item in contents:
        if _get(item, "value"):
            return item
    return None


def _detail_is_html(detail: Mapping[str, Any]) -> bool:
    return str(_get(detail, "type") or "").lower() in HTML_TYPES


def _detail_html(detail: Mapping[str, Any], base: str) -> str | None:
    """The detail's value as HTML: plain text is escaped, xml:base applied to relative URLs."""
    value = _text(_get(detail, "value"), strip=False)
    if value is None:
        return None
    if not _detail_is_html(detail):
        return _text_to_html(value)
    # Our sanitizer resolves relative URLs against the entry link; an explicit xml:base on
    # the element must win, so apply it here (only feeds that use xml:base pay for this).
    declared_base = _text(_get(detail, "base"))
    if declared_base and declared_base != _SENTINEL_BASE and _RELATIVE_URL_ATTRIBUTE.search(value):
        element_base = _absolute_link(declared_base, base)
        if element_base:
            value = _resolve_html_urls(value, element_base)
    return value


def _resolve_html_urls(html_text: str, base: str) -> str:
    try:
        return str(resolve_relative_uris(html_text, base, "utf-8", "text/html"))
    except Exception:
        # Only cosmetic (the sanitizer runs either way): keep the HTML as the feed had it.
        return html_text


def _text_to_html(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def _utc(value: Any) -> datetime | None:
    """feedparser's UTC struct_time (or any 9-tuple) as an aware datetime; None if invalid."""
    if value is None:
        return None
    try:
        stamp = calendar.timegm((*tuple(value)[:6], 0, 0, 0))
        return datetime.fromtimestamp(stamp, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _author(raw: Mapping[str, Any]) -> str | None:
    detail = _get(raw, "author_detail") or {}
    return _text(_get(detail, "name")) or _text(_get(raw, "author"))


def _entry_language(*details: Mapping[str, Any] | None) -> str | None:
    for detail in details:
        if detail:
            language = _text(_get(detail, "language"))
            if language:
                return language
    return None


def _tags(raw_tags: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in raw_tags:
        name = _text(_get(tag, "term")) or _text(_get(tag, "label"))
        if name:
            seen.setdefault(name, None)
    return tuple(seen)


def _enclosures(links: Sequence[Mapping[str, Any]], base: str) -> tuple[Enclosure, ...]:
    found: list[Enclosure] = []
    for link in links:
        if _get(link, "rel") != "enclosure":
            continue
        href = _absolute_link(_text(_get(link, "href")), base)
        if href:
            found.append(
                Enclosure(
                    url=href,
                    type=_text(_get(link, "type")),
                    length=_positive_int(_get(link, "length")),
                )
            )
    return tuple(found)


def _media_kind(item: Mapping[str, Any]) -> str | None:
    """ "audio", "video", "image"…: the major part of a Media RSS object's type, else its
    ``medium``. A declared type wins: YouTube's video is a Flash player, not a video file."""
    media_type = (_text(_get(item, "type")) or "").lower()
    if "/" in media_type:
        return media_type.split("/", 1)[0]
    return (_text(_get(item, "medium")) or "").lower() or None


def _media_enclosures(contents: Sequence[Any], base: str) -> tuple[Enclosure, ...]:
    """The audio and video files of <media:content> (feedparser lists those inside a
    <media:group> with the others)."""
    found: list[Enclosure] = []
    for item in contents:
        if not isinstance(item, dict) or _media_kind(item) not in ("audio", "video"):
            continue
        href = _absolute_link(_text(_get(item, "url")), base)
        if href:
            found.append(
                Enclosure(
                    url=href,
                    type=_text(_get(item, "type")),
                    length=_positive_int(_get(item, "filesize")),
                )
            )
    return tuple(found)


def _entry_image(raw: Mapping[str, Any], base: str) -> MediaImage | None:
    """The entry's picture: a media:thumbnail, else an image media:content, else the episode's
    itunes:image, else an image enclosure."""
    candidates = [item for item in _get(raw, "media_thumbnail") or [] if isinstance(item, dict)]
    candidates += [
        item
        for item in _get(raw, "media_content") or []
        if isinstance(item, dict) and _media_kind(item) == "image"
    ]
    itunes = _get(raw, "image")
    if isinstance(itunes, dict):
        candidates.append({"url": _get(itunes, "href")})
    candidates += [
        {"url": _get(link, "href")}
        for link in _get(raw, "links") or []
        if _get(link, "rel") == "enclosure"
        and (_text(_get(link, "type")) or "").lower().startswith("image/")
    ]
    for item in candidates:
        href = _absolute_link(_text(_get(item, "url")), base)
        if href:
            return MediaImage(
                url=href,
                width=_positive_int(_get(item, "width")),
                height=_positive_int(_get(item, "height")),
            )
    return None


_SY_PERIOD_MINUTES = {
    "hourly": 60,
    "daily": 1440,
    "weekly": 10080,
    "monthly": 43200,
    "yearly": 525600,
}


def _update_hint(feed_data: Any) -> int | None:
    """How long the publisher asks us to wait: the longer of <ttl> and sy:updatePeriod."""
    hints = [_ttl(_get(feed_data, "ttl"))]
    period = _text(_get(feed_data, "sy_updateperiod"))
    if period and period.strip().lower() in _SY_PERIOD_MINUTES:
        frequency = _positive_int(_get(feed_data, "sy_updatefrequency")) or 1
        hints.append(_ttl(_SY_PERIOD_MINUTES[period.strip().lower()] // frequency))
    known = [hint for hint in hints if hint is not None]
    return max(known) if known else None


def _ttl(value: Any) -> int | None:
    minutes = _positive_int(value)
    return minutes if minutes is not None and minutes <= MAX_TTL_MINUTES else None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            return None
        return number if number > 0 else None
    return None


def _get(obj: object, key: str) -> Any:
    """``obj[key]`` for plain dict access: feedparser's own ``get`` remaps keys (``updated``
    silently falls back to ``published``, with a DeprecationWarning)."""
    return dict.get(obj, key) if isinstance(obj, dict) else None


def _text(value: Any, *, strip: bool = True) -> str | None:
    if not isinstance(value, str):
        return None
    value = scrub_text(value)
    if strip:
        value = value.strip()
    return value or None


def _describe_bozo(exc: Any) -> str:
    if isinstance(exc, SAXParseException):
        return f"XML error at line {exc.getLineNumber()}: {exc.getMessage()}"
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _describe_non_feed(content: bytes, bozo_exc: Any) -> str:
    head = _strip_bom(content[:SNIFF_BYTES]).lstrip()
    root = _root_element(head) if head.startswith(b"<") else None
    local_name = root.rsplit(":", 1)[-1].lower() if root else ""
    if local_name in _HTML_ROOTS or head[:14].lower() == b"<!doctype html":
        match = _HTML_TITLE.search(content[: SNIFF_BYTES * 4])
        if match:
            title = plain_title(match.group(1).decode("utf-8", "replace"), True)
            return f"not a feed: looks like an HTML page (title {_quote(title)})"
        return "not a feed: looks like an HTML page"
    if local_name == "opml":
        return "not a feed: an OPML subscription list"
    if head.startswith(b"<") and isinstance(bozo_exc, SAXParseException):
        line, message = bozo_exc.getLineNumber(), bozo_exc.getMessage()
        return f"not a feed: XML error at line {line}: {message}"
    if root is not None:
        return f"not a feed: XML document with root element <{root}>"
    snippet = head[:QUOTE_CHARS].decode("utf-8", "replace")
    return f"not a feed: unrecognised content starting with {_quote(snippet)}"


def _root_element(head: bytes) -> str | None:
    """Name of the first element after the prolog, comments and doctype."""
    for match in _FIRST_ELEMENT.finditer(head):
        before = head[: match.start()]
        if before.count(b"<!--") > before.count(b"-->"):
            continue
        return match.group(1).decode("ascii", "replace")
    return None


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1] + "…"
    return repr(text)


# ---------------------------------------------------------------------------------------------
# JSON Feed 1.0 / 1.1


def _parse_json_feed(content: bytes, base: str) -> ParsedFeed:
    try:
        document = json.loads(_strip_bom(content))
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"not a feed: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ParseError(f"not a feed: unreadable JSON ({exc})") from exc

    if not isinstance(document, dict):
        raise ParseError(f"not a feed: a JSON {type(document).__name__}, not a JSON Feed object")
    version = document.get("version")
    if not (isinstance(version, str) and version.startswith(JSON_FEED_VERSION_PREFIXES)):
        raise ParseError(
            "not a feed: a JSON document without a jsonfeed.org version "
            f"(keys: {', '.join(sorted(map(str, document))[:8]) or 'none'})"
        )
    items = document.get("items", [])
    if not isinstance(items, list):
        raise ParseError("not a feed: JSON Feed 'items' is not a list")

    feed_language = _text(document.get("language"))
    entries = tuple(
        _entry_from_json(item, base, feed_language) for item in items if isinstance(item, dict)
    )
    number = version.rsplit("/", 1)[-1].replace(".", "")
    return ParsedFeed(
        title=plain_title(_text(document.get("title")), False) or None,
        link=_absolute_link(_text(document.get("home_page_url")), base),
        language=feed_language,
        entries=entries,
        version=f"json{number}" if number.isdigit() else "json",
        bozo_message=None,
        ttl_minutes=None,
    )


def _entry_from_json(item: Mapping[str, Any], base: str, feed_language: str | None) -> ParsedEntry:
    raw_id = item.get("id")
    # The spec says string, but integer ids are common in the wild.
    guid = _text(str(raw_id)) if isinstance(raw_id, str | int) else None
    content_html = _text(item.get("content_html"), strip=False)
    content_text = _text(item.get("content_text"), strip=False)
    summary = _text(item.get("summary"))
    return ParsedEntry(
        guid=guid,
        link=_absolute_link(_text(item.get("url")) or _text(item.get("external_url")), base),
        title=_text(item.get("title")),
        title_is_html=False,
        summary=_text_to_html(summary) if summary else None,
        content=content_html or (_text_to_html(content_text) if content_text else None),
        published=_iso_date(item.get("date_published")),
        updated=_iso_date(item.get("date_modified")),
        author=_json_author(item),
        language=_text(item.get("language")) or feed_language,
        tags=tuple(dict.fromkeys(tag for tag in map(_text, _list(item.get("tags"))) if tag)),
        enclosures=_json_attachments(_list(item.get("attachments")), base),
        image=_json_image(item, base),
    )


def _json_image(item: Mapping[str, Any], base: str) -> MediaImage | None:
    # "image" is the item's main picture; "banner_image" a wide one for its top.
    for key in ("image", "banner_image"):
        href = _absolute_link(_text(item.get(key)), base)
        if href:
            return MediaImage(url=href)
    return None


def _json_author(item: Mapping[str, Any]) -> str | None:
    # 1.1 has "authors" (a list); 1.0 had a single "author".
    candidates = [*_list(item.get("authors")), item.get("author")]
    for author in candidates:
        if isinstance(author, dict):
            name = _text(author.get("name"))
            if name:
                return name
    return None


def _json_attachments(attachments: list[Any], base: str) -> tuple[Enclosure, ...]:
    found: list[Enclosure] = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        href = _absolute_link(_text(attachment.get("url")), base)
        if href:
            found.append(
                Enclosure(
                    url=href,
                    type=_text(attachment.get("mime_type")),
                    length=_positive_int(attachment.get("size_in_bytes")),
                )
            )
    return tuple(found)


def _iso_date(value: Any) -> datetime | None:
    """An RFC 3339 date as aware UTC; a date without offset is taken as UTC."""
    text = _text(value)
    if text is None:
        return None
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _rfc822_date(text)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        return None


def _rfc822_date(text: str) -> datetime | None:
    # JSON feeds in the wild also carry RSS-style dates.
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
