"""Atom 1.0 and RSS 2.0 documents, written by feedgen: the only module that imports it.

feedgen builds the documents; two small extensions add what it leaves out: per-entry
``xml:lang`` and link attributes in Atom, each item's ``media:thumbnail`` in both formats, and
the feed-level RFC 5005 / WebSub links (and the ``fh:archive`` marker) in both formats.
"""

from __future__ import annotations

import re
from typing import Any, Final

from feedgen.feed import FeedGenerator

from aggregator.errors import PublishError
from aggregator.publishing.formats.common import (
    GENERATOR_NAME,
    HISTORY_NS,
    LINK_TYPES,
    UNTITLED,
    FeedLinks,
    archive_url,
    clean,
    feed_id,
    feed_url,
    home_url,
    lang_tag,
    prev_archive_url,
    self_url,
    utc,
)
from aggregator.publishing.formats.items import UNKNOWN_MEDIA_TYPE, Item, items
from aggregator.types import MediaImage, OutputFeed

_XML_LANG_ATTR: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_ATOM_NS: Final = "http://www.w3.org/2005/Atom"
_ATOM_LINK_TAG: Final = f"{{{_ATOM_NS}}}link"
_ARCHIVE_TAG: Final = f"{{{HISTORY_NS}}}archive"
_LINK_ATTRIBUTES: Final = ("rel", "type", "hreflang", "title", "length")
MEDIA_NS: Final = "http://search.yahoo.com/mrss/"
_THUMBNAIL_TAG: Final = f"{{{MEDIA_NS}}}thumbnail"
_ATOM_EXTENSION: Final = "aggregator_atom"
_RSS_EXTENSION: Final = "aggregator_rss"
# RSS elements that carry plain text (not HTML); see _rss_plain_text_refs.
_RSS_PLAIN_TEXT = re.compile(rb"<(title|dc:creator)>([^<]*)</\1>")


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
        self.image: MediaImage | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, element: Any) -> Any:
        if self.lang:
            element.set(_XML_LANG_ATTR, self.lang)
        _add_thumbnail(element, self.image)
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


class _RssEntryExtension:
    """feedgen entry hook adding the item's ``media:thumbnail`` in RSS."""

    def __init__(self) -> None:
        self.image: MediaImage | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, element: Any) -> Any:
        return element

    def extend_rss(self, element: Any) -> Any:
        _add_thumbnail(element, self.image)
        return element


def _add_thumbnail(element: Any, image: MediaImage | None) -> None:
    if image is None:
        return
    thumbnail = element.makeelement(_THUMBNAIL_TAG, {"url": image.url})
    if image.width:
        thumbnail.set("width", str(image.width))
    if image.height:
        thumbnail.set("height", str(image.height))
    element.append(thumbnail)


class _FeedExtension:
    """Feed-level links feedgen cannot write: RFC 5005 and WebSub in RSS (as atom:link), and
    in both formats the ``fh:archive`` marker of an archive page.

    In Atom, ``fg.link`` could carry the links, but in RSS feedgen keeps only ``rel="self"``
    and takes the last link added as the channel ``<link>``; one hook for both keeps the two
    formats' links identical.
    """

    def __init__(self) -> None:
        self.links: list[tuple[str, str, str | None]] = []
        self.archive = False
        self.media = False

    def extend_ns(self) -> dict[str, str]:
        spaces = {"fh": HISTORY_NS} if self.archive else {}
        if self.media:
            spaces["media"] = MEDIA_NS
        return spaces

    def _add(self, parent: Any, tag: str, index: int | None = None) -> None:
        made = []
        for rel, href, media_type in self.links:
            element = parent.makeelement(tag, {"rel": rel, "href": href})
            if media_type:
                element.set("type", media_type)
            made.append(element)
        if self.archive:
            made.append(parent.makeelement(_ARCHIVE_TAG, {}))
        for element in made:
            if index is None:
                parent.append(element)
            else:
                parent.insert(index, element)
                index += 1

    def extend_atom(self, element: Any) -> Any:
        self._add(element, _ATOM_LINK_TAG if element.tag.startswith("{") else "link")
        return element

    def extend_rss(self, element: Any) -> Any:
        channel = element.find("channel")
        # Straight after the self link feedgen wrote, so every atom:link sits together.
        anchor = channel.find(_ATOM_LINK_TAG)
        index = list(channel).index(anchor) + 1 if anchor is not None else None
        self._add(channel, _ATOM_LINK_TAG, index)
        return element


def _generator(feed: OutputFeed, fmt: str, lang: str | None, links: FeedLinks) -> Any:
    fg = FeedGenerator()
    fg.title(clean(feed.title).strip() or UNTITLED)
    fg.id(feed_id(feed, lang, links.query))
    # feedgen stamps "now" on both atom:updated and rss:lastBuildDate unless told otherwise.
    fg.updated(utc(feed.updated, "updated"))
    fg.generator(GENERATOR_NAME)
    fg.link(href=self_url(feed, fmt, lang, links), rel="self", type=LINK_TYPES[fmt])
    fg.link(href=home_url(feed.base_url), rel="alternate", type=LINK_TYPES["html"])
    description = clean(feed.description).strip()
    # RSS requires a channel description; Atom's subtitle is optional.
    if description or fmt == "rss":
        fg.description(description or fg.title())
    language = lang_tag(lang or feed.language)
    if language:
        fg.language(language)
    if fmt == "atom":
        # Atom requires an author per entry, inherited from the feed when the entry has none.
        fg.author(name=clean(feed.site_title).strip() or fg.title())
        fg.register_extension(_ATOM_EXTENSION, _FeedExtension, _AtomEntryExtension, rss=False)
        extension = getattr(fg, _ATOM_EXTENSION)
    else:
        fg.load_extension("dc", atom=False, rss=True)
        fg.register_extension(_RSS_EXTENSION, _FeedExtension, _RssEntryExtension, atom=False)
        extension = getattr(fg, _RSS_EXTENSION)
    extension.links = _feed_links(feed, fmt, lang, links)
    extension.archive = links.archive is not None
    return fg


def _declare_media(fg: Any, name: str, entries: list[Item]) -> None:
    # Declared only when an item uses it, so feeds without pictures keep their bytes.
    getattr(fg, name).media = any(entry.image for entry in entries)


def _feed_links(
    feed: OutputFeed, fmt: str, lang: str | None, links: FeedLinks
) -> list[tuple[str, str, str | None]]:
    """(rel, href, type) of the RFC 5005 and WebSub links, in a fixed order."""
    media_type = LINK_TYPES[fmt]
    result: list[tuple[str, str, str | None]] = []
    if links.archive is not None:
        result.append(("current", feed_url(feed.base_url, feed.category_id, fmt, lang), media_type))
        # The next page's URL is known before that page exists, so the link can be written
        # now and the bytes never change; until the page is complete the URL redirects to
        # the live feed, which holds those stories.
        later = archive_url(feed.base_url, feed.category_id, links.archive + 1, fmt, lang)
        result.append(("next-archive", later, media_type))
    elif links.hub:
        result.append(("hub", links.hub, None))
    older = prev_archive_url(feed, fmt, lang, links)
    if older is not None:
        result.append(("prev-archive", older, media_type))
        result.append(("next", older, media_type))
    return result


def atom(feed: OutputFeed, lang: str | None, links: FeedLinks) -> bytes:
    fg = _generator(feed, "atom", lang, links)
    entries = items(feed)
    _declare_media(fg, _ATOM_EXTENSION, entries)
    for entry in entries:
        fe = fg.add_entry(order="append")
        fe.id(entry.id)
        fe.title(entry.title)
        fe.updated(entry.updated)
        fe.published(entry.published)
        if entry.author:
            fe.author(name=entry.author)
        # The representative's link is the only alternate: readers that open one alternate
        # (newsboat, feedparser's ``entry.link``) take the last one, so any other alternate
        # would open another language's article. The other versions stay discoverable as
        # "related" links (and in the "Also in" list of the summary). A fallback link to our
        # home page is not in the representative's language, so it claims none.
        own_lang = None if entry.link_is_fallback else entry.language
        entry_links = [_link_dict(entry.link, "alternate", own_lang)]
        entry_links += [
            _link_dict(v.url, "related", v.language, v.title)
            for v in entry.versions
            if v.url is not None
        ]
        entry_links += [_enclosure_link(e.url, e.type, e.length) for e in entry.enclosures]
        fe.link(entry_links)
        fe.summary(entry.body_html, type="html")
        if entry.content_html is not None:
            fe.content(entry.content_html, type="html")
        extension = getattr(fe, _ATOM_EXTENSION)
        extension.lang = entry.xml_lang
        extension.links = entry_links
        extension.image = entry.image
    return bytes(fg.atom_str(pretty=True, encoding="UTF-8"))


def rss(feed: OutputFeed, lang: str | None, links: FeedLinks) -> bytes:
    fg = _generator(feed, "rss", lang, links)
    entries = items(feed)
    _declare_media(fg, _RSS_EXTENSION, entries)
    for entry in entries:
        fe = fg.add_entry(order="append")
        fe.id(entry.id)
        fe.title(entry.title)
        # feedgen uses the last alternate link as the RSS <link>: give it only this one.
        fe.link(href=entry.link, rel="alternate")
        fe.published(entry.published)
        fe.description(entry.body_html, isSummary=True)
        if entry.content_html is not None:
            # feedgen writes RSS content as content:encoded, in CDATA.
            fe.content(entry.content_html, type="CDATA")
        # RSS <author> must be an e-mail address; dc:creator takes a plain name.
        if entry.author:
            fe.dc.dc_creator(entry.author)
        if entry.xml_lang:
            fe.dc.dc_language(entry.xml_lang)
        enclosure = entry.enclosure
        if enclosure is not None:
            # RSS requires length and type: an unknown length is "0", as the RSS Best
            # Practices Profile allows (and the W3C validator accepts).
            fe.enclosure(
                url=enclosure.url,
                length=enclosure.length or 0,
                type=enclosure.type or UNKNOWN_MEDIA_TYPE,
            )
        getattr(fe, _RSS_EXTENSION).image = entry.image
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


def _enclosure_link(href: str, media_type: str | None, length: int | None) -> dict[str, str]:
    # Atom makes type and length optional: only what the feed gave is written.
    link = {"href": href, "rel": "enclosure"}
    if media_type:
        link["type"] = media_type
    if length:
        link["length"] = str(length)
    return link


def _link_dict(
    href: str, rel: str, hreflang: str | None, title: str | None = None
) -> dict[str, str]:
    link = {"href": href, "rel": rel}
    if hreflang:
        link["hreflang"] = hreflang
    if title:
        link["title"] = title
    return link
