"""One output item per story, the model every feed format and the HTML page render from.

The representative entry (``StoryView.entries[0]``) gives the title, link and summary; the
other languages become ``Version``s ("Also in"), and every source is named. Pure: a story in,
an ``Item`` out, so the same story always renders the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.errors import PublishError
from aggregator.i18n import after_label, language_in, translator
from aggregator.publishing.formats.common import (
    UNTITLED,
    clean,
    home_url,
    lang_tag,
    safe_link,
    same_lang,
    story_item_id,
    utc,
)
from aggregator.publishing.formats.languages import language_name
from aggregator.types import Enclosure, EntryView, MediaImage, OutputFeed, StoryView

# RSS and JSON Feed require a type on an enclosure; for a file the feed did not type this is
# the one that claims nothing but bytes (RFC 2046).
UNKNOWN_MEDIA_TYPE = "application/octet-stream"
# What a podcast or video feed's item is for: preferred as RSS's single enclosure.
PLAYABLE_MEDIA = ("audio/", "video/")


@dataclass(frozen=True)
class Version:
    """Another language version of a story, shown as a related link (Atom) and in "Also in"."""

    language: str
    url: str | None
    label: str
    title: str
    source_title: str


@dataclass(frozen=True)
class Item:
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
    versions: tuple[Version, ...]
    sources: tuple[str, ...]
    # The article's full text (sources with ``full_text = true``, where extraction worked),
    # with the same "Also in" and "Sources" lines; None: readers get ``body_html`` only.
    content_html: str | None = None
    # The representative's media, http(s) only.
    enclosures: tuple[Enclosure, ...] = ()
    image: MediaImage | None = None

    @property
    def enclosure(self) -> Enclosure | None:
        """The one enclosure RSS allows: the first audio or video file, else the first."""
        for enclosure in self.enclosures:
            if (enclosure.type or "").lower().startswith(PLAYABLE_MEDIA):
                return enclosure
        return self.enclosures[0] if self.enclosures else None


def items(feed: OutputFeed) -> list[Item]:
    return [item(feed, story) for story in feed.stories]


def item(feed: OutputFeed, story: StoryView) -> Item:
    if not story.entries:
        raise PublishError(f"story {story.uid!r} has no entries")
    rep = story.representative
    language = lang_tag(rep.language)
    feed_language = lang_tag(feed.language)
    _ = translator(feed_language).gettext
    versions = other_versions(story, language, untitled=_("(untitled)"))
    sources = tuple(dict.fromkeys(clean(e.source_title) for e in story.entries if e.source_title))
    link = safe_link(rep.url)
    xml_lang = language if language and not same_lang(language, feed_language) else None
    return Item(
        id=story_item_id(feed.tag_authority, story),
        title=clean(rep.title).strip() or _("(untitled)"),
        link=link or home_url(feed.base_url),
        link_is_fallback=link is None,
        language=language,
        xml_lang=xml_lang,
        body_html=_body_html(rep, versions, sources, feed_language, xml_lang),
        published=utc(rep.published_at, "published_at"),
        updated=utc(story.updated_at, "updated_at"),
        author=clean(rep.author).strip() or None,
        versions=versions,
        sources=sources,
        enclosures=tuple(e for e in rep.enclosures if safe_link(e.url)),
        image=rep.image if rep.image and safe_link(rep.image.url) else None,
        content_html=(
            _body_html(rep, versions, sources, feed_language, xml_lang, rep.full_html)
            if rep.full_html
            else None
        ),
    )


def other_versions(
    story: StoryView, rep_language: str | None, *, untitled: str = UNTITLED
) -> tuple[Version, ...]:
    """One version per language other than the representative's, in the story's order.

    One link per language is enough for a reader choosing a language, so a language seen in
    several entries is represented by its first entry that has a URL (else its first entry).
    """
    chosen: dict[str, EntryView] = {}
    for entry in story.entries[1:]:
        language = lang_tag(entry.language)
        if language is None or same_lang(language, rep_language):
            continue
        key = language.lower()
        if key not in chosen or (
            safe_link(chosen[key].url) is None and safe_link(entry.url) is not None
        ):
            chosen[key] = entry
    versions = []
    for entry in chosen.values():
        language = lang_tag(entry.language) or ""
        source = clean(entry.source_title)
        name = language_name(language)
        versions.append(
            Version(
                language=language,
                url=safe_link(entry.url),
                label=f"{name} ({source})" if source else name,
                title=clean(entry.title).strip() or untitled,
                source_title=source,
            )
        )
    return tuple(versions)


def _body_html(
    rep: EntryView,
    versions: Sequence[Version],
    sources: Sequence[str],
    reader: str | None,
    other_language: str | None,
    main_html: str | None = None,
) -> str:
    # summary_html was sanitized by normalize (nh3) before it was stored, full_html by the
    # full-text stage; everything added here is escaped, so the body holds no markup that did
    # not pass the sanitizer. Labels are in the feed's language; no offline translation model
    # ships inside a package (docs/localisation.md), so an item in another language says which
    # one it is in.
    _ = translator(reader).gettext
    parts = []
    if other_language:
        name = html.escape(language_in(other_language, reader))
        label = _("Original language:")
        parts.append(f"<p>{html.escape(label)}{after_label(label)}{name}</p>")
    parts.append(clean(rep.summary_html if main_html is None else main_html))
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
        also_in = _("Also in:")
        parts.append(f"<p>{html.escape(also_in)}{after_label(also_in)}{', '.join(links)}</p>")
    if sources:
        names = ", ".join(html.escape(s) for s in sources)
        label = _("Sources:")
        parts.append(f"<p>{html.escape(label)}{after_label(label)}{names}</p>")
    return "\n".join(p for p in parts if p)
