"""Deterministic synthetic feeds for the poll benchmark: RSS 2.0 and Atom 1.0, mixed.

``make_feed(index, seed, revision)`` always returns the same bytes for the same arguments, so two
systems polled one after the other see identical documents. Each feed has 20–50 entries with
realistic titles, authors, categories and HTML summaries (paragraphs, links, emphasis, lists,
entities, relative image URLs, and now and then a ``<script>`` or an ``onclick`` a sanitizer must
remove). Feeds come in three styles, so bodies range from a few KB to about 60 KB:

- headlines: a one-sentence summary per entry;
- excerpts: a paragraph or two;
- full: a summary plus several paragraphs of ``content:encoded`` / Atom ``<content>``.

``revision`` r adds r newer entries at the top and drops as many old ones (the 5% "changed" feeds
in the third poll). Nothing here does I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

# All entry dates fall before this, so no normalizer drops them as implausible future dates.
EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
MIN_ENTRIES = 20
MAX_ENTRIES = 50
STYLES = ("headlines", "excerpts", "full")
STYLE_WEIGHTS = (3, 4, 3)

_WORDS = (
    "government",
    "announces",
    "plan",
    "artificial",
    "intelligence",
    "research",
    "funding",
    "national",
    "strategy",
    "university",
    "students",
    "climate",
    "policy",
    "energy",
    "grid",
    "solar",
    "wind",
    "battery",
    "storage",
    "market",
    "prices",
    "inflation",
    "central",
    "bank",
    "interest",
    "rates",
    "housing",
    "crisis",
    "city",
    "council",
    "transport",
    "railway",
    "election",
    "campaign",
    "parliament",
    "vote",
    "reform",
    "health",
    "hospital",
    "vaccine",
    "study",
    "researchers",
    "data",
    "privacy",
    "regulation",
    "court",
    "ruling",
    "appeal",
    "technology",
    "company",
    "startup",
    "investors",
    "quarterly",
    "results",
    "software",
    "open",
    "source",
    "release",
    "security",
    "vulnerability",
    "patch",
    "browser",
    "developers",
    "community",
    "festival",
    "museum",
    "exhibition",
    "film",
    "music",
    "album",
    "review",
    "football",
    "league",
    "season",
    "coach",
    "transfer",
    "injury",
    "weather",
    "storm",
    "flooding",
    "drought",
    "agriculture",
    "farmers",
    "exports",
    "trade",
    "tariffs",
    "minister",
    "interview",
    "analysis",
    "opinion",
    "report",
    "survey",
    "ocean",
    "science",
    "space",
    "telescope",
    "mission",
    "launch",
    "satellite",
    "chip",
    "semiconductor",
    "factory",
    "jobs",
    "workers",
    "union",
    "strike",
    "wages",
    "education",
    "schools",
    "teachers",
    "curriculum",
    "language",
    "translation",
    "culture",
    "history",
    "archive",
    "library",
)
_NAMES = (
    "Alice Martin",
    "Bruno Keller",
    "Chloé Dubois",
    "Daniel Kim",
    "Eva Novak",
    "Farid Haddad",
    "Grace Okafor",
    "Hiro Tanaka",
    "Ines Costa",
    "Jonas Berg",
    "Kavya Rao",
    "Luca Ferri",
)
_TAGS = (
    "Politics",
    "Science",
    "Technology",
    "Economy",
    "Culture",
    "Sport",
    "Health",
    "World",
    "Climate",
    "Education",
    "AI",
    "Opinion",
)
_HOSTS = ("news", "blog", "daily", "tribune", "journal", "review", "post", "times", "weekly")


@dataclass(frozen=True)
class SynthFeed:
    """One generated document and what the server needs to serve it."""

    index: int
    path: str
    body: bytes
    content_type: str
    last_modified: datetime
    entries: int


def feed_path(index: int) -> str:
    """The URL path of feed ``index``; the extension says RSS or Atom for humans only."""
    return f"/feeds/{index:05d}.xml"


def _sentence(rng: random.Random, lo: int = 8, hi: int = 22) -> str:
    words = rng.choices(_WORDS, k=rng.randint(lo, hi))
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice((".", ".", ".", "?", "!"))


def _title(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(5, 11))
    title = " ".join(words).capitalize()
    if rng.random() < 0.15:
        title += " & more"  # an entity to escape
    if rng.random() < 0.1:
        title = "“" + title + "”"
    return title


def _inline_html(rng: random.Random, site: str) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 4)):
        sentence = _sentence(rng)
        roll = rng.random()
        if roll < 0.25:
            word = rng.choice(_WORDS)
            link = f"https://{site}/{rng.choice(_WORDS)}/{rng.randint(1000, 99999)}"
            if rng.random() < 0.3:
                link += "?utm_source=rss&amp;utm_medium=feed"
            sentence = sentence.replace(word, f'<a href="{link}">{word}</a>', 1)
        elif roll < 0.4:
            sentence = f"<strong>{sentence}</strong>"
        elif roll < 0.5:
            sentence = f"<em>{sentence}</em>"
        elif roll < 0.55:
            sentence += " Prices rose 3&nbsp;% &mdash; analysts said &ldquo;finally&rdquo;."
        parts.append(sentence)
    return " ".join(parts)


def _paragraphs(rng: random.Random, site: str, count: int) -> str:
    blocks: list[str] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.08:
            items = "".join(f"<li>{_sentence(rng, 4, 9)}</li>" for _ in range(rng.randint(2, 5)))
            blocks.append(f"<ul>{items}</ul>")
        elif roll < 0.14:
            blocks.append(f"<blockquote><p>{_sentence(rng)}</p></blockquote>")
        elif roll < 0.2:
            blocks.append(
                f'<p><img src="/images/{rng.randint(1, 9999)}.jpg" alt="photo" '
                f'width="640" height="360"></p>'
            )
        elif roll < 0.22:
            blocks.append(
                '<p onclick="track()">Share this</p>'
                '<script>window.tracker && tracker.push("read")</script>'
            )
        elif roll < 0.24:
            blocks.append('<iframe src="https://video.example/embed/1"></iframe>')
        else:
            blocks.append(f"<p>{_inline_html(rng, site)}</p>")
    return "".join(blocks)


@dataclass(frozen=True)
class _Entry:
    guid: str
    link: str
    title: str
    author: str
    tags: tuple[str, ...]
    published: datetime
    summary: str
    content: str | None


def _entry(seed: int, index: int, number: int, style: str, site: str, step: timedelta) -> _Entry:
    rng = random.Random(f"{seed}:{index}:entry:{number}")
    slug = "-".join(rng.choices(_WORDS, k=4))
    link = f"https://{site}/{2024 + number % 2}/{slug}-{number}"
    if style == "headlines":
        summary, content = _sentence(rng), None
    elif style == "excerpts":
        summary, content = _paragraphs(rng, site, rng.randint(1, 2)), None
    else:
        summary = _sentence(rng)
        content = _paragraphs(rng, site, rng.randint(3, 6))
    return _Entry(
        guid=(
            f"https://{site}/?p={number}" if index % 3 else f"urn:uuid:{rng.getrandbits(128):032x}"
        ),
        link=link,
        title=_title(rng),
        author=rng.choice(_NAMES),
        tags=tuple(rng.sample(_TAGS, k=rng.randint(0, 3))),
        published=EPOCH - step * (1100 - number),
        summary=summary,
        content=content,
    )


def make_feed(index: int, seed: int = 1, revision: int = 0) -> SynthFeed:
    """Feed ``index`` at ``revision`` (0 = original), deterministic from ``seed``."""
    rng = random.Random(f"{seed}:{index}:feed")
    is_atom = rng.random() < 0.45
    style = rng.choices(STYLES, weights=STYLE_WEIGHTS)[0]
    count = rng.randint(MIN_ENTRIES, MAX_ENTRIES)
    if style == "full":
        count = rng.randint(MIN_ENTRIES, 32)  # keeps the largest bodies near 60 KB
    site = f"www.{rng.choice(_WORDS)}-{rng.choice(_HOSTS)}{index}.example.com"
    step = timedelta(minutes=rng.randint(30, 24 * 60))
    title = f"{rng.choice(_WORDS).capitalize()} {rng.choice(_HOSTS).capitalize()} {index}"
    newest = 1000 + revision
    entries = [
        _entry(seed, index, number, style, site, step)
        for number in range(newest, newest - count, -1)
    ]
    updated = entries[0].published
    if is_atom:
        body = _atom(title, site, index, updated, entries)
        content_type = "application/atom+xml"
    else:
        body = _rss(title, site, updated, entries)
        content_type = "application/rss+xml; charset=utf-8"
    return SynthFeed(
        index=index,
        path=feed_path(index),
        body=body.encode("utf-8"),
        content_type=content_type,
        last_modified=updated,
        entries=count,
    )


def _rss(title: str, site: str, updated: datetime, entries: list[_Entry]) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n',
        f"<title>{escape(title)}</title>\n<link>https://{site}/</link>\n",
        f"<description>Latest stories from {escape(title)}</description>\n",
        f"<language>en-us</language>\n<lastBuildDate>{format_datetime(updated)}</lastBuildDate>\n",
        "<generator>synthfeeds</generator>\n<ttl>60</ttl>\n",
    ]
    for number, entry in enumerate(entries):
        out.append("<item>\n")
        out.append(f"<title>{escape(entry.title)}</title>\n<link>{entry.link}</link>\n")
        permalink = "true" if entry.guid.startswith("https:") else "false"
        out.append(f'<guid isPermaLink="{permalink}">{entry.guid}</guid>\n')
        out.append(f"<pubDate>{format_datetime(entry.published)}</pubDate>\n")
        out.append(f"<dc:creator>{escape(entry.author)}</dc:creator>\n")
        out.extend(f"<category>{tag}</category>\n" for tag in entry.tags)
        if number % 2:
            out.append(f"<description><![CDATA[{entry.summary}]]></description>\n")
        else:
            out.append(f"<description>{escape(entry.summary)}</description>\n")
        if entry.content is not None:
            out.append(f"<content:encoded><![CDATA[{entry.content}]]></content:encoded>\n")
        out.append("</item>\n")
    out.append("</channel>\n</rss>\n")
    return "".join(out)


def _atom(title: str, site: str, index: int, updated: datetime, entries: list[_Entry]) -> str:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n',
        f"<title>{escape(title)}</title>\n<id>tag:{site},2024:feed-{index}</id>\n",
        f'<link rel="alternate" href="https://{site}/"/>\n',
        f"<updated>{updated.isoformat()}</updated>\n",
    ]
    for entry in entries:
        out.append("<entry>\n")
        out.append(f'<title type="html">{escape(escape(entry.title))}</title>\n')
        out.append(f'<link rel="alternate" type="text/html" href="{entry.link}"/>\n')
        out.append(f"<id>{entry.guid}</id>\n")
        out.append(f"<published>{entry.published.isoformat()}</published>\n")
        out.append(f"<updated>{entry.published.isoformat()}</updated>\n")
        out.append(f"<author><name>{escape(entry.author)}</name></author>\n")
        out.extend(f'<category term="{tag}"/>\n' for tag in entry.tags)
        out.append(f'<summary type="html">{escape(entry.summary)}</summary>\n')
        if entry.content is not None:
            out.append(f'<content type="html">{escape(entry.content)}</content>\n')
        out.append("</entry>\n")
    out.append("</feed>\n")
    return "".join(out)


def changed_indexes(count: int, fraction: float, seed: int, salt: str) -> list[int]:
    """A deterministic subset of ``range(count)`` of about ``fraction`` of it."""
    size = round(count * fraction)
    if size <= 0:
        return []
    return sorted(random.Random(f"{seed}:{salt}").sample(range(count), size))


if __name__ == "__main__":  # a quick look at the size distribution
    sizes = sorted(len(make_feed(i).body) for i in range(300))
    print(f"min {sizes[0]} median {sizes[len(sizes) // 2]} max {sizes[-1]} bytes")
