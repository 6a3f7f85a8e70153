"""Our Atom, RSS and OPML output must pass the W3C Feed Validator with no errors or warnings.

The validator is not on PyPI: these tests use ../shared/tools/feedvalidator (or
``AGGREGATOR_FEEDVALIDATOR_DIR``), skip without it locally and fail without it in CI; see
tests/support/feedvalidator.py. Warnings are held to zero too:
each one is a reader somewhere that may show the feed wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from aggregator.publishing.formats import (
    MEDIA_TYPES,
    feed_url,
    render_atom,
    render_opml,
    render_rss,
)
from aggregator.types import EntryView, OutputFeed, StoryView
from tests.support import feedvalidator
from tests.unit.test_publish import AUTHORITY, BASE, empty_feed, sample_feed

pytestmark = pytest.mark.shared


@pytest.fixture(autouse=True)
def _validator() -> None:
    # ../shared/tools/feedvalidator: skipped without it locally, a failure in CI.
    feedvalidator.require_validator()


Renderer = Callable[..., bytes]
RENDERERS: dict[str, Renderer] = {"atom": render_atom, "rss": render_rss}


def _html_heavy_feed() -> OutputFeed:
    """Summaries with entities, lists, images, quotes and RTL text; "&" and "<" in titles.

    Titles stay plain text: normalize strips markup from them, and the validator rightly warns
    about a text title that contains tags, so none is rendered here.
    """
    when = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)

    def entry(n: int, source: str, lang: str, title: str, summary: str) -> EntryView:
        return EntryView(
            entry_id=n,
            source_id=f"s{n}",
            source_title=source,
            url=f"https://{lang}.example.net/article?id={n}&ref=feed",
            title=title,
            summary_html=summary,
            language=lang,
            published_at=when,
            updated_at=when,
            author="O'Brien & Sons <press>",
        )

    story = StoryView(
        story_id=7,
        uid="html/heavy 7",
        first_seen=when,
        updated_at=when,
        entries=(
            entry(
                71,
                "R&D Weekly",
                "en",
                "R&D budget & the AI Act <2030> — “quotes” ©",
                "<p>Costs &euro;5&nbsp;bn &amp; rising &lt;fast&gt;.</p><ul><li>One</li>"
                '<li><a href="https://example.net/a?x=1&amp;y=2">Two</a></li></ul>'
                '<img src="https://example.net/i.png" alt="chart">'
                "<blockquote>“AI is…”</blockquote>",
            ),
            entry(72, "الجزيرة", "ar", "خطة الذكاء الاصطناعي", "<p dir='rtl'>نص</p>"),
            entry(73, "Folha", "pt-BR", "Plano de IA", "<p>Política &amp; IA</p>"),
            entry(74, "日経", "ja", "AI計画", "<p>日本語の要約</p>"),
        ),
    )
    return OutputFeed(
        category_id="html-heavy",
        title="Markup & escaping",
        description="Summaries with markup & entities, 2026 > 2025",
        language="en",
        base_url=BASE,
        tag_authority=AUTHORITY,
        stories=(story,),
        fallback_updated=when,
    )


FEEDS: dict[str, Callable[[], OutputFeed]] = {
    "multi-language": sample_feed,
    "no-feed-language": lambda: sample_feed(language=None),
    "empty": empty_feed,
    "html-heavy": _html_heavy_feed,
}


def _check(data: bytes, *, base: str, content_type: str) -> None:
    lines = feedvalidator.validate(data, base=base, content_type=content_type)
    errors = feedvalidator.errors(lines)
    warnings = feedvalidator.warnings(lines)
    assert not errors, "\n".join(errors)
    assert not warnings, "\n".join(warnings)


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
@pytest.mark.parametrize("name", sorted(FEEDS))
def test_feed_is_valid(name: str, fmt: str) -> None:
    feed = FEEDS[name]()
    data = RENDERERS[fmt](feed)
    _check(data, base=feed_url(BASE, feed.category_id, fmt), content_type=MEDIA_TYPES[fmt])


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_per_language_variant_is_valid(fmt: str) -> None:
    feed = sample_feed()
    data = RENDERERS[fmt](feed, lang="fr")
    _check(data, base=feed_url(BASE, feed.category_id, fmt, "fr"), content_type=MEDIA_TYPES[fmt])


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
@pytest.mark.parametrize("lang", ["fr", "de", "ar", "ja", "zh", "ru", "hi"])
def test_localised_variant_is_valid(lang: str, fmt: str) -> None:
    """A variant in its reader's language (labels translated, Arabic right to left, the
    language of each item in another one named) stays free of errors and warnings."""
    feed = sample_feed(language=lang)
    data = RENDERERS[fmt](feed, lang=lang)
    _check(data, base=feed_url(BASE, feed.category_id, fmt, lang), content_type=MEDIA_TYPES[fmt])


def test_opml_is_valid() -> None:
    feeds = [f() for f in FEEDS.values()]
    data = render_opml(feeds, base_url=BASE, title="All categories & more")
    _check(data, base=f"{BASE}/feeds.opml", content_type=MEDIA_TYPES["opml"])


def test_validator_reports_problems() -> None:
    # Guards against a silently broken harness: a feed with no id must not pass.
    broken = render_atom(sample_feed()).replace(
        b"<id>tag:news.example.org,2026:feed/ai-policy</id>", b""
    )
    lines = feedvalidator.validate(
        broken, base=feed_url(BASE, "ai-policy", "atom"), content_type=MEDIA_TYPES["atom"]
    )
    assert any("MissingElement" in line for line in feedvalidator.errors(lines)), lines
