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
from aggregator.publishing.formats.common import (
    ALSO_IN_LABEL,
    SOURCES_LABEL,
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
from aggregator.types import EntryView, OutputFeed, StoryView


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


def items(feed: OutputFeed) -> list[Item]:
    return [item(feed, story) for story in feed.stories]


def item(feed: OutputFeed, story: StoryView) -> Item:
    if not story.entries:
        raise PublishError(f"story {story.uid!r} has no entries")
    rep = story.representative
    language = lang_tag(rep.language)
    feed_language = lang_tag(feed.language)
    versions = other_versions(story, language)
    sources = tuple(dict.fromkeys(clean(e.source_title) for e in story.entries if e.source_title))
    link = safe_link(rep.url)
    return Item(
        id=story_item_id(feed.tag_authority, story),
        title=clean(rep.title).strip() or UNTITLED,
        link=link or home_url(feed.base_url),
        link_is_fallback=link is None,
        language=language,
        xml_lang=language if language and not same_lang(language, feed_language) else None,
        body_html=_body_html(rep, versions, sources),
        published=utc(rep.published_at, "published_at"),
        updated=utc(story.updated_at, "updated_at"),
        author=clean(rep.author).strip() or None,
        versions=versions,
        sources=sources,
        content_html=(_body_html(rep, versions, sources, rep.full_html)
                      if rep.full_html else None),
    )


def other_versions(story: StoryView, rep_language: str | None) -> tuple[Version, ...]:
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
                title=clean(entry.title).strip() or UNTITLED,
                source_title=source,
            )
        )
    return tuple(versions)


def _body_html(rep: EntryView, versions: Sequence[Version], sources: Sequence[str],
               main_html: str | None = None) -> str:
    # summary_html was sanitized by normalize (nh3) before it was stored, full_html by the
    # full-text stage; everything added here is escaped, so the body holds no markup that did
    # not pass the sanitizer.
    parts = [clean(rep.summary_html if main_html is None else main_html)]
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
