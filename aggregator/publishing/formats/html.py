"""Server-rendered HTML pages: one per category (its stories, their language versions and
sources) and an index linking every category page with its latest headlines, and every feed,
readable without JavaScript. A category page exists per variant language too, its labels
and dates in that language (``aggregator.i18n``), linked to the others with ``hreflang``.

Every piece of text goes through ``html.escape`` and every link through ``safe_link``; nothing
from a source is written as markup (summaries are not shown), so no source can inject script.
A story's picture is the one thing loaded from elsewhere: https only, as the pages' policy
(``web.documents.HTML_POLICY``) allows, lazily and without a referrer.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.i18n import after_label, direction, format_moment, language_in, translator
from aggregator.publishing.formats.common import (
    FEED_FORMATS,
    FORMAT_LABELS,
    LINK_TYPES,
    archive_url,
    category_page_url,
    clean,
    feed_url,
    home_url,
    utc,
)
from aggregator.publishing.formats.items import Item, items
from aggregator.publishing.formats.languages import language_name
from aggregator.types import OutputFeed

# The index and a category without languages are written in the messages' own language.
PAGE_LANGUAGE = "en"
# Headlines per category on the index page; the category page has them all.
INDEX_HEADLINES = 5
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:1rem auto;padding:0 1rem;"
    "line-height:1.45}li{margin:.6rem 0}small,.meta{color:#555}nav a{margin-right:.5rem}"
    "article img{max-width:100%;height:auto}"
)


@dataclass(frozen=True)
class CategoryLinks:
    """What a category offers besides its stories: its languages and newest archive page.
    ``lang`` is the variant the page shows (None: the category's own page)."""

    feed: OutputFeed
    languages: tuple[str, ...]
    newest_archive: int | None = None
    lang: str | None = None


def category_page(category: CategoryLinks, *, site_title: str) -> bytes:
    feed = category.feed
    base = feed.base_url
    page_lang = feed.language or PAGE_LANGUAGE
    _ = translator(page_lang).gettext
    title = clean(feed.title).strip() or feed.category_id
    head = [_autodiscovery(feed, fmt, None, title) for fmt in FEED_FORMATS]
    head += [
        _autodiscovery(feed, fmt, lang, f"{title} ({language_name(lang)})")
        for lang in category.languages
        for fmt in FEED_FORMATS
    ]
    head += _page_alternates(category)
    body = [
        f'<nav><a href="{_attr(home_url(base))}">{_text(site_title)}</a></nav>',
        # The title and description fall back to the category's own words, whose language
        # may run the other way from the page's: the browser tells by their first letters.
        f'<h1 dir="auto">{_text(title)}</h1>',
    ]
    if category.languages:
        body.append(_language_switch(category, _))
    description = clean(feed.description).strip()
    if description:
        body.append(f'<p dir="auto">{_text(description)}</p>')
    body.append(_subscribe(feed, category.languages, _))
    if category.newest_archive is not None:
        older = " · ".join(
            _a(
                archive_url(base, feed.category_id, category.newest_archive, fmt, category.lang),
                FORMAT_LABELS[fmt],
                media_type=LINK_TYPES[fmt],
            )
            for fmt in FEED_FORMATS
        )
        text = _text(_("Older stories: newest archive page (%(links)s)"))
        body.append(f'<p class="meta">{text % {"links": older}}</p>')
    stories = items(feed)
    if stories:
        body.append("<ol>" + "".join(_story(entry, page_lang) for entry in stories) + "</ol>")
    else:
        none_yet = _("No stories yet.")
        body.append(f"<p>{_text(none_yet)}</p>")
    return _page(f"{title} · {site_title}", head, body, page_lang)


def index_page(
    categories: Sequence[CategoryLinks],
    *,
    base_url: str,
    site_title: str,
    site_description: str = "",
) -> bytes:
    head = [
        f'<link rel="alternate" type="text/x-opml" title="All feeds" '
        f'href="{_attr(base_url.rstrip("/") + "/feeds.opml")}">'
    ]
    head += [
        _autodiscovery(c.feed, "atom", None, clean(c.feed.title).strip() or c.feed.category_id)
        for c in categories
    ]
    body = [f"<h1>{_text(site_title)}</h1>"]
    if clean(site_description).strip():
        body.append(f"<p>{_text(site_description.strip())}</p>")
    if categories:
        entries = []
        for category in categories:
            feed = category.feed
            title = clean(feed.title).strip() or feed.category_id
            description = clean(feed.description).strip()
            parts = [f"<h2>{_a(category_page_url(base_url, feed.category_id), title)}</h2>"]
            if description:
                parts.append(f"<p>{_text(description)}</p>")
            parts.append(_headlines(feed))
            parts.append(_subscribe(feed, category.languages, translator(PAGE_LANGUAGE).gettext))
            entries.append("<li>" + "".join(parts) + "</li>")
        body.append("<ul>" + "".join(entries) + "</ul>")
    else:
        body.append("<p>No categories are configured.</p>")
    opml = _a(base_url.rstrip("/") + "/feeds.opml", "All feeds as OPML", media_type="text/x-opml")
    api = _a(base_url.rstrip("/") + "/api/docs", "API")
    body.append(f"<p>{opml} · {api}</p>")
    return _page(site_title, head, body, PAGE_LANGUAGE)


def _page_alternates(category: CategoryLinks) -> list[str]:
    """``hreflang`` links between the category's pages: one per variant language, and its own
    page as ``x-default`` (it shows every language)."""
    feed = category.feed
    links = [
        f'<link rel="alternate" hreflang="x-default" '
        f'href="{_attr(category_page_url(feed.base_url, feed.category_id))}">'
    ]
    links += [
        f'<link rel="alternate" hreflang="{_attr(lang)}" '
        f'href="{_attr(category_page_url(feed.base_url, feed.category_id, lang))}">'
        for lang in category.languages
    ]
    return links


def _language_switch(category: CategoryLinks, _: Callable[[str], str]) -> str:
    feed = category.feed
    cells = []
    for lang in (None, *category.languages):
        label = language_name(lang) if lang else _("All languages")
        attrs = f' lang="{_attr(lang)}" hreflang="{_attr(lang)}"' if lang else ""
        if lang == category.lang:
            cells.append(f"<strong{attrs}>{_text(label)}</strong>")
        else:
            href = category_page_url(feed.base_url, feed.category_id, lang)
            cells.append(f'<a href="{_attr(href)}"{attrs}>{_text(label)}</a>')
    label = _("Languages:")
    return f'<nav class="meta">{_text(label)}{after_label(label)}{" · ".join(cells)}</nav>'


def _headlines(feed: OutputFeed) -> str:
    """The category's latest stories, a link and a date each, so the index shows the news."""
    latest = items(feed)[:INDEX_HEADLINES]
    if not latest:
        return '<p class="meta">No stories yet.</p>'
    rows = []
    for entry in latest:
        lang = f' lang="{_attr(entry.language)}"' if entry.language else ""
        rows.append(
            f"<li><span{lang}>{_a(entry.link, entry.title)}</span> "
            f'<small class="meta">{_time(entry.published, PAGE_LANGUAGE)}</small></li>'
        )
    return f'<ul class="headlines">{"".join(rows)}</ul>'


def _story(entry: Item, page_lang: str) -> str:
    _ = translator(page_lang).gettext
    lang = _lang_attrs(entry.language, page_lang)
    parts = [f"<li><article><h3{lang}>{_a(entry.link, entry.title)}</h3>"]
    meta = [_time(entry.published, page_lang)]
    if entry.xml_lang:
        # Not in the page's language (no offline translation model ships inside a package):
        # the label says which language the title is in.
        original = _("Original language:")
        meta.append(
            f'<span class="original">{_text(original)}{after_label(original)}'
            f"{_text(language_in(entry.xml_lang, page_lang))}</span>"
        )
    elif entry.language:
        meta.append(_text(language_name(entry.language)))
    if entry.updated > entry.published:
        meta.append(_text(_("updated %(time)s")) % {"time": _time(entry.updated, page_lang)})
    parts.append(f'<p class="meta">{" · ".join(meta)}</p>')
    parts.append(_picture(entry))
    if entry.versions:
        versions = []
        for version in entry.versions:
            label = f"{language_name(version.language)}: {version.title}"
            if version.source_title:
                label += f" ({version.source_title})"
            if version.url is None:
                versions.append(
                    f"<li{_lang_attrs(version.language, page_lang)}>{_text(label)}</li>"
                )
            else:
                versions.append(
                    f"<li{_lang_attrs(version.language, page_lang)}>"
                    f'<a href="{_attr(version.url)}" hreflang="{_attr(version.language)}">'
                    f"{_text(label)}</a></li>"
                )
        also_in = _("Also in:")
        parts.append(f"<p>{_text(also_in)}</p><ul>{''.join(versions)}</ul>")
    if entry.sources:
        sources = _("Sources:")
        parts.append(
            f"<p>{_text(sources)}{after_label(sources)}{_text(', '.join(entry.sources))}</p>"
        )
    parts.append("</article></li>")
    return "".join(parts)


def _picture(entry: Item) -> str:
    image = entry.image
    if image is None or not image.url.lower().startswith("https://"):
        return ""
    size = "".join(
        f' {name}="{value}"'
        for name, value in (("width", image.width), ("height", image.height))
        if value
    )
    return (
        f'<img src="{_attr(image.url)}" alt="{_attr(entry.title)}"{size} '
        'loading="lazy" decoding="async" referrerpolicy="no-referrer">'
    )


def _subscribe(feed: OutputFeed, languages: Sequence[str], _: Callable[[str], str]) -> str:
    rows = [(None, _("All languages")), *((lang, language_name(lang)) for lang in languages)]
    cells = []
    for lang, label in rows:
        links = " · ".join(
            _a(
                feed_url(feed.base_url, feed.category_id, fmt, lang),
                FORMAT_LABELS[fmt],
                media_type=LINK_TYPES[fmt],
            )
            for fmt in FEED_FORMATS
        )
        lang_attr = f' lang="{_attr(lang)}"' if lang else ""
        cells.append(f"<li><span{lang_attr}>{_text(label)}</span>: {links}</li>")
    label = _("Subscribe:")
    return f'<p class="meta">{_text(label)}</p><ul class="meta">{"".join(cells)}</ul>'


def _autodiscovery(feed: OutputFeed, fmt: str, lang: str | None, title: str) -> str:
    href = feed_url(feed.base_url, feed.category_id, fmt, lang)
    language = f' hreflang="{_attr(lang)}"' if lang else ""
    return (
        f'<link rel="alternate" type="{LINK_TYPES[fmt]}" title="{_attr(title)} '
        f'({FORMAT_LABELS[fmt]})" href="{_attr(href)}"{language}>'
    )


def _page(title: str, head: Sequence[str], body: Sequence[str], lang: str) -> bytes:
    document = (
        f'<!DOCTYPE html>\n<html lang="{_attr(lang)}" dir="{direction(lang)}">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n<style>{_STYLE}</style>\n"
        + "\n".join(head)
        + "\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    return document.encode("utf-8")


def _a(href: str, text: str, *, media_type: str | None = None) -> str:
    kind = f' type="{_attr(media_type)}"' if media_type else ""
    return f'<a href="{_attr(href)}"{kind}>{_text(text)}</a>'


def _time(moment: datetime, lang: str) -> str:
    value = utc(moment, "time")
    return (
        f'<time datetime="{value.strftime("%Y-%m-%dT%H:%M:%SZ")}">'
        f"{_text(format_moment(value, lang))}</time>"
    )


def _lang_attrs(lang: str | None, page_lang: str) -> str:
    """``lang`` for text in another language, and ``dir`` where its script runs the other way
    from the page's (a French title on an Arabic page)."""
    if not lang:
        return ""
    own = direction(lang)
    turn = f' dir="{own}"' if own != direction(page_lang) else ""
    return f' lang="{_attr(lang)}"{turn}'


def _text(value: str) -> str:
    return html.escape(clean(value), quote=False)


def _attr(value: str | None) -> str:
    return html.escape(clean(value), quote=True)
