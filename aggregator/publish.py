"""Render output feeds: Atom 1.0 and RSS 2.0 (via feedgen), JSON Feed 1.1 and OPML 2.0 (stdlib).

The only module that imports feedgen. Pure rendering: an ``OutputFeed`` in, bytes out, with no
clock and no database, so the same input always gives byte-identical output (ETags rely on it).
Every foreign exception raised while rendering becomes a ``PublishError``.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote

from feedgen.feed import FeedGenerator

from aggregator.errors import PublishError
from aggregator.types import EntryView, OutputFeed, StoryView

FEED_FORMATS: Final = ("atom", "rss", "json")

MEDIA_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "atom": "application/atom+xml; charset=utf-8",
        "rss": "application/rss+xml; charset=utf-8",
        "json": "application/feed+json; charset=utf-8",
        "opml": "text/x-opml; charset=utf-8",
    }
)

# Bare media types for <link type="…">: a charset parameter there means nothing to readers.
_LINK_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "atom": "application/atom+xml",
        "rss": "application/rss+xml",
        "json": "application/feed+json",
        "html": "text/html",
    }
)

GENERATOR_NAME: Final = "aggregator"
JSON_FEED_VERSION: Final = "https://jsonfeed.org/version/1.1"
# Custom JSON Feed objects must start with "_" (spec §"Extensions"); readers ignore unknown ones.
JSON_EXTENSION_KEY: Final = "_aggregator"
OPML_FORMAT_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
)
# The year the tag authority was first used for feed ids. Changing it changes every feed id,
# which makes readers treat the feeds as new: never change it once feeds are published.
FEED_TAG_YEAR: Final = "2026"
# Atom and feedgen refuse an empty title; a reader still needs something to click on.
UNTITLED: Final = "(untitled)"
ALSO_IN_LABEL: Final = "Also in"
SOURCES_LABEL: Final = "Sources"

# Each language named in itself, so a reader sees "Français" whatever the feed's language.
LANGUAGE_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ar": "العربية",
        "bg": "Български",
        "ca": "Català",
        "cs": "Čeština",
        "da": "Dansk",
        "de": "Deutsch",
        "el": "Ελληνικά",
        "en": "English",
        "es": "Español",
        "et": "Eesti",
        "eu": "Euskara",
        "fa": "فارسی",
        "fi": "Suomi",
        "fr": "Français",
        "ga": "Gaeilge",
        "he": "עברית",
        "hi": "हिन्दी",
        "hr": "Hrvatski",
        "hu": "Magyar",
        "id": "Bahasa Indonesia",
        "it": "Italiano",
        "ja": "日本語",
        "ko": "한국어",
        "lt": "Lietuvių",
        "lv": "Latviešu",
        "ms": "Bahasa Melayu",
        "nb": "Norsk bokmål",
        "nl": "Nederlands",
        "nn": "Norsk nynorsk",
        "no": "Norsk",
        "pl": "Polski",
        "pt": "Português",
        "ro": "Română",
        "ru": "Русский",
        "sk": "Slovenčina",
        "sl": "Slovenščina",
        "sr": "Српски",
        "sv": "Svenska",
        "th": "ไทย",
        "tr": "Türkçe",
        "uk": "Українська",
        "ur": "اردو",
        "vi": "Tiếng Việt",
        "zh": "中文",
    }
)

# Characters XML 1.0 cannot carry at all (lxml refuses them); dropping them beats failing the
# whole feed because one upstream title had a stray control byte.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_LANG_ATTR: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_ATOM_LINK_TAG: Final = "{http://www.w3.org/2005/Atom}link"
_LINK_ATTRIBUTES: Final = ("rel", "type", "hreflang", "title")
_ATOM_EXTENSION: Final = "aggregator_atom"
# RSS elements that carry plain text (not HTML); see _rss_plain_text_refs.
_RSS_PLAIN_TEXT = re.compile(rb"<(title|dc:creator)>([^<]*)</\1>")
# RFC 4151 "specific" part: pchar / "/" / "?"; everything else in a uid is percent-encoded.
_TAG_SAFE: Final = "-._~!$&'()*+,;=:@/?"


def feed_url(base_url: str, category_id: str, fmt: str, lang: str | None = None) -> str:
    """Public URL of one output feed: ``{base}/feeds/{category}[.{lang}].{fmt}``."""
    if fmt not in FEED_FORMATS:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {FEED_FORMATS}")
    name = f"{category_id}.{lang}" if lang else category_id
    return f"{base_url.rstrip('/')}/feeds/{name}.{fmt}"


def story_item_id(tag_authority: str, story: StoryView) -> str:
    """The item id of a story, a ``tag:`` URI (RFC 4151) that never changes for that story."""
    day = _utc(story.first_seen, "first_seen").date().isoformat()
    return f"tag:{tag_authority},{day}:story/{quote(story.uid, safe=_TAG_SAFE)}"


def feed_id(feed: OutputFeed, lang: str | None = None) -> str:
    """The Atom feed id: stable per category (and per language variant)."""
    suffix = f"/{quote(lang, safe=_TAG_SAFE)}" if lang else ""
    category = quote(feed.category_id, safe=_TAG_SAFE)
    return f"tag:{feed.tag_authority},{FEED_TAG_YEAR}:feed/{category}{suffix}"


def render_atom(feed: OutputFeed, *, lang: str | None = None) -> bytes:
    """Atom 1.0 document for ``feed``; ``lang`` names the per-language variant being served."""
    return _guarded(feed, "atom", lambda: _atom(feed, lang))


def render_rss(feed: OutputFeed, *, lang: str | None = None) -> bytes:
    """RSS 2.0 document for ``feed``; ``lang`` names the per-language variant being served."""
    return _guarded(feed, "rss", lambda: _rss(feed, lang))


def render_json(feed: OutputFeed, *, lang: str | None = None) -> bytes:
    """JSON Feed 1.1 document for ``feed``, UTF-8, keys in a fixed order."""
    return _guarded(feed, "json", lambda: _json(feed, lang))


def render_opml(feeds: Sequence[OutputFeed], *, base_url: str, title: str) -> bytes:
    """OPML 2.0 list with one subscribable outline (the Atom feed) per category.

    Each category outline holds ``type="link"`` children for its Atom, RSS and JSON Feed URLs.
    Importers subscribe to outlines that have an ``xmlUrl`` and skip link outlines, so importing
    the list subscribes to each category once; the W3C validator accepts the shape.
    """
    try:
        return _opml(feeds, base_url.rstrip("/"), title)
    except PublishError:
        raise
    except Exception as exc:
        raise PublishError(f"cannot render OPML: {exc}") from exc


# --- the item model shared by all formats -------------------------------------------------


@dataclass(frozen=True)
class _Version:
    """Another language version of a story, shown as an alternate link and in "Also in"."""

    language: str
    url: str | None
    label: str
    title: str
    source_title: str


@dataclass(frozen=True)
class _Item:
    id: str
    title: str
    link: str
    link_is_fallback: bool
    language: str | None
    xml_lang: str | None
    body_html: str
    published: datetime
    updated: datetime
    author: str | None
    versions: tuple[_Version, ...]
    sources: tuple[str, ...]


def _items(feed: OutputFeed) -> list[_Item]:
    return [_item(feed, story) for story in feed.stories]


def _item(feed: OutputFeed, story: StoryView) -> _Item:
    if not story.entries:
        raise PublishError(f"story {story.uid!r} has no entries")
    rep = story.representative
    language = _lang(rep.language)
    feed_language = _lang(feed.language)
    versions = _other_versions(story, language)
    sources = tuple(dict.fromkeys(_clean(e.source_title) for e in story.entries if e.source_title))
    return _Item(
        id=story_item_id(feed.tag_authority, story),
        title=_clean(rep.title).strip() or UNTITLED,
        link=rep.url or _home_url(feed),
        link_is_fallback=rep.url is None,
        language=language,
        xml_lang=language if language and not _same_lang(language, feed_language) else None,
        body_html=_body_html(rep, versions, sources),
        published=_utc(rep.published_at, "published_at"),
        updated=_utc(story.updated_at, "updated_at"),
        author=_clean(rep.author).strip() or None,
        versions=versions,
        sources=sources,
    )


def _other_versions(story: StoryView, rep_language: str | None) -> tuple[_Version, ...]:
    """One version per language other than the representative's, in the story's order.

    Atom forbids two alternate links with the same type and hreflang, so a language seen in
    several entries is represented by its first entry that has a URL (else its first entry).
    """
    chosen: dict[str, EntryView] = {}
    for entry in story.entries[1:]:
        language = _lang(entry.language)
        if language is None or _same_lang(language, rep_language):
            continue
        key = language.lower()
        if key not in chosen or (chosen[key].url is None and entry.url is not None):
            chosen[key] = entry
    versions = []
    for entry in chosen.values():
        language = _lang(entry.language) or ""
        source = _clean(entry.source_title)
        name = _language_name(language)
        versions.append(
            _Version(
                language=language,
                url=entry.url,
                label=f"{name} ({source})" if source else name,
                title=_clean(entry.title).strip() or UNTITLED,
                source_title=source,
            )
        )
    return tuple(versions)


def _body_html(rep: EntryView, versions: Sequence[_Version], sources: Sequence[str]) -> str:
    parts = [_clean(rep.summary_html)]
    if versions:
        links = []
        for version in versions:
            label = html.escape(version.label)
            if version.url is None:
                links.append(label)
            else:
                href = html.escape(version.url, quote=True)
                hreflang = html.escape(version.language, quote=True)
                links.append(f'<a href="{href}" hreflang="{hreflang}">{label}</a>')
        parts.append(f"<p>{ALSO_IN_LABEL}: {', '.join(links)}</p>")
    if sources:
        names = ", ".join(html.escape(s) for s in sources)
        parts.append(f"<p>{SOURCES_LABEL}: {names}</p>")
    return "\n".join(p for p in parts if p)


# --- Atom and RSS (feedgen) ----------------------------------------------------------------


class _AtomEntryExtension:
    """feedgen entry hook that finishes what feedgen 1.0 leaves out of an Atom entry.

    feedgen has no per-entry language, and its ``atom_entry`` drops every link attribute but
    ``href`` (the loop variable is shadowed by the new element), losing ``rel`` and
    ``hreflang``. The hook receives the finished element, so it sets both from what we passed.
    Setting the attributes again is harmless should a later feedgen write them itself.
    """

    def __init__(self) -> None:
        self.lang: str | None = None
        self.links: list[dict[str, str]] = []

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, element: Any) -> Any:
        if self.lang:
            element.set(_XML_LANG_ATTR, self.lang)
        link_elements = [child for child in element if child.tag in ("link", _ATOM_LINK_TAG)]
        if len(link_elements) != len(self.links):
            raise PublishError("feedgen wrote an unexpected number of entry links")
        for link_element, link in zip(link_elements, self.links, strict=True):
            for name in _LINK_ATTRIBUTES:
                if name in link:
                    link_element.set(name, link[name])
        return element

    def extend_rss(self, element: Any) -> Any:
        return element


class _NoFeedExtension:
    """feedgen wants a feed-level class for every extension; ours only touches entries."""

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, element: Any) -> Any:
        return element

    def extend_rss(self, element: Any) -> Any:
        return element


def _generator(feed: OutputFeed, fmt: str, lang: str | None) -> Any:
    fg = FeedGenerator()
    fg.title(_clean(feed.title).strip() or UNTITLED)
    fg.id(feed_id(feed, lang))
    # feedgen stamps "now" on both atom:updated and rss:lastBuildDate unless told otherwise.
    fg.updated(_utc(feed.updated, "updated"))
    fg.generator(GENERATOR_NAME)
    fg.link(
        href=feed_url(feed.base_url, feed.category_id, fmt, lang), rel="self", type=_LINK_TYPES[fmt]
    )
    fg.link(href=_home_url(feed), rel="alternate", type=_LINK_TYPES["html"])
    description = _clean(feed.description).strip()
    # RSS requires a channel description; Atom's subtitle is optional.
    if description or fmt == "rss":
        fg.description(description or fg.title())
    language = _lang(lang or feed.language)
    if language:
        fg.language(language)
    if fmt == "atom":
        # Atom requires an author per entry, inherited from the feed when the entry has none.
        fg.author(name=fg.title())
        fg.register_extension(_ATOM_EXTENSION, _NoFeedExtension, _AtomEntryExtension, rss=False)
    else:
        fg.load_extension("dc", atom=False, rss=True)
    return fg


def _atom(feed: OutputFeed, lang: str | None) -> bytes:
    fg = _generator(feed, "atom", lang)
    for item in _items(feed):
        fe = fg.add_entry(order="append")
        fe.id(item.id)
        fe.title(item.title)
        fe.updated(item.updated)
        fe.published(item.published)
        if item.author:
            fe.author(name=item.author)
        # The representative's own link comes first and carries its hreflang; a fallback link
        # to our home page is not in that language, so it gets none.
        own_lang = None if item.link_is_fallback else item.language
        links = [_link_dict(item.link, own_lang)]
        links += [
            _link_dict(v.url, v.language, v.title) for v in item.versions if v.url is not None
        ]
        fe.link(links)
        fe.summary(item.body_html, type="html")
        extension = getattr(fe, _ATOM_EXTENSION)
        extension.lang = item.xml_lang
        extension.links = links
    return bytes(fg.atom_str(pretty=True, encoding="UTF-8"))


def _rss(feed: OutputFeed, lang: str | None) -> bytes:
    fg = _generator(feed, "rss", lang)
    for item in _items(feed):
        fe = fg.add_entry(order="append")
        fe.id(item.id)
        fe.title(item.title)
        # feedgen uses the last alternate link as the RSS <link>: give it only this one.
        fe.link(href=item.link, rel="alternate")
        fe.published(item.published)
        fe.description(item.body_html, isSummary=True)
        # RSS <author> must be an e-mail address; dc:creator takes a plain name.
        if item.author:
            fe.dc.dc_creator(item.author)
        if item.xml_lang:
            fe.dc.dc_language(item.xml_lang)
    return _rss_plain_text_refs(bytes(fg.rss_str(pretty=True, encoding="UTF-8")))


def _rss_plain_text_refs(document: bytes) -> bytes:
    """Write "&" and "<" in RSS plain-text elements as hex character references.

    RSS never said whether a title is text or HTML, so readers guess; the RSS Best Practices
    Profile (and the W3C validator, as a warning) asks for ``&#x26;``/``&#x3C;`` in plain text,
    which no reader mistakes for markup. The parsed text is unchanged. Serialized element text
    never holds a raw "<", so the pattern cannot run across elements.
    """

    def encode(match: re.Match[bytes]) -> bytes:
        text = match.group(2).replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
        return b"<%s>%s</%s>" % (match.group(1), text, match.group(1))

    return _RSS_PLAIN_TEXT.sub(encode, document)


def _link_dict(href: str, hreflang: str | None, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": "alternate"}
    if hreflang:
        link["hreflang"] = hreflang
    if title:
        link["title"] = title
    return link


# --- JSON Feed 1.1 -------------------------------------------------------------------------


def _json(feed: OutputFeed, lang: str | None) -> bytes:
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": _clean(feed.title).strip() or UNTITLED,
        "home_page_url": _home_url(feed),
        "feed_url": feed_url(feed.base_url, feed.category_id, "json", lang),
    }
    description = _clean(feed.description).strip()
    if description:
        document["description"] = description
    language = _lang(lang or feed.language)
    if language:
        document["language"] = language
    document["items"] = [_json_item(item) for item in _items(feed)]
    text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False)
    return (text + "\n").encode("utf-8")


def _json_item(item: _Item) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.id,
        "url": item.link,
        "title": item.title,
        "content_html": item.body_html,
        "date_published": _rfc3339(item.published),
        "date_modified": _rfc3339(item.updated),
    }
    if item.author:
        data["authors"] = [{"name": item.author}]
    if item.language:
        data["language"] = item.language
    data[JSON_EXTENSION_KEY] = {
        "versions": [
            {
                "language": v.language,
                "url": v.url,
                "title": v.title,
                "source": v.source_title,
            }
            for v in item.versions
        ],
        "sources": list(item.sources),
    }
    return data


# --- OPML 2.0 ------------------------------------------------------------------------------


def _opml(feeds: Sequence[OutputFeed], base_url: str, title: str) -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _clean(title)
    if feeds:
        newest = max(_utc(f.updated, "updated") for f in feeds)
        ET.SubElement(head, "dateModified").text = format_datetime(newest, usegmt=True)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        feed_title = _clean(feed.title).strip() or feed.category_id
        outline = ET.SubElement(
            body,
            "outline",
            text=feed_title,
            title=feed_title,
            type="rss",
            xmlUrl=feed_url(base_url, feed.category_id, "atom"),
            htmlUrl=f"{base_url}/",
        )
        description = _clean(feed.description).strip()
        if description:
            outline.set("description", description)
        language = _lang(feed.language)
        if language:
            outline.set("language", language)
        for fmt in FEED_FORMATS:
            ET.SubElement(
                outline,
                "outline",
                text=OPML_FORMAT_LABELS[fmt],
                type="link",
                url=feed_url(base_url, feed.category_id, fmt),
            )
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


# --- small helpers -------------------------------------------------------------------------


def _guarded(feed: OutputFeed, fmt: str, render: Callable[[], bytes]) -> bytes:
    # feedgen and lxml raise a mix of ValueError, TypeError and lxml's own errors; translating
    # all of them here keeps one bad story from escaping as an arbitrary exception type.
    try:
        return render()
    except PublishError:
        raise
    except Exception as exc:
        raise PublishError(f"cannot render feed {feed.category_id!r} as {fmt}: {exc}") from exc


def _home_url(feed: OutputFeed) -> str:
    return f"{feed.base_url.rstrip('/')}/"


def _utc(value: datetime, what: str) -> datetime:
    # A naive datetime would be read in the machine's zone and break determinism.
    if value.tzinfo is None or value.utcoffset() is None:
        raise PublishError(f"{what} is a naive datetime: {value.isoformat()}")
    return value.astimezone(UTC)


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _clean(text: str | None) -> str:
    return _XML_INVALID.sub("", text) if text else ""


def _lang(code: str | None) -> str | None:
    """A language tag as given, trimmed and with "_" turned into BCP 47's "-"."""
    if not code:
        return None
    tag = code.strip().replace("_", "-")
    return tag or None


def _same_lang(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _language_name(code: str) -> str:
    primary = code.split("-", 1)[0].lower()
    return LANGUAGE_NAMES.get(primary, code)
