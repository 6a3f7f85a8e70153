"""Unit tests for the RFC 5005 / WebSub links, the HTML pages and content codings.

Hand-built ``OutputFeed``s (from test_publish) rendered with ``FeedLinks``; read back with
feedparser, ElementTree, the JSON Feed 1.1 schema and an HTML5 parser.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import xml.etree.ElementTree as ET

import brotli
import pytest

from aggregator.publishing.compress import compress
from aggregator.publishing.formats import (
    HISTORY_NS,
    CategoryLinks,
    FeedLinks,
    archive_url,
    render_atom,
    render_category_page,
    render_index_page,
    render_json,
    render_rss,
)
from aggregator.publishing.outputs import Document
from aggregator.web.conditional import choose_coding
from tests.support.outputchecks import html5_errors, json_feed
from tests.unit.test_publish import BASE, _t, empty_feed, sample_feed

ATOM = "{http://www.w3.org/2005/Atom}"
HUB = "https://hub.example/"


def _atom_links(data: bytes, parent: str = "") -> dict[str, list[str]]:
    root = ET.fromstring(data)
    scope = root.find(parent) if parent else root
    assert scope is not None
    links: dict[str, list[str]] = {}
    for link in scope.findall(f"{ATOM}link"):
        links.setdefault(link.get("rel", "alternate"), []).append(link.get("href", ""))
    return links


def test_archive_url_shapes() -> None:
    assert archive_url(BASE, "ai-policy", 0, "atom") == f"{BASE}/feeds/ai-policy/archive/0.atom"
    assert (
        archive_url(BASE + "/", "ai-policy", 12, "json", "fr")
        == f"{BASE}/feeds/ai-policy/archive/12.fr.json"
    )
    with pytest.raises(ValueError, match="format"):
        archive_url(BASE, "ai-policy", 0, "html")


def test_subscription_document_links_to_the_newest_archive_and_the_hub() -> None:
    links = FeedLinks(prev_archive=4, hub=HUB)
    atom = _atom_links(render_atom(sample_feed(), links=links))
    assert atom["self"] == [f"{BASE}/feeds/ai-policy.atom"]
    assert atom["hub"] == [HUB]
    assert atom["prev-archive"] == [f"{BASE}/feeds/ai-policy/archive/4.atom"]
    assert atom["next"] == [f"{BASE}/feeds/ai-policy/archive/4.atom"]
    assert "current" not in atom
    assert (
        ET.fromstring(render_atom(sample_feed(), links=links)).find(f"{{{HISTORY_NS}}}archive")
        is None
    )

    rss = render_rss(sample_feed(), lang="fr", links=links)
    channel = _atom_links(rss, "channel")
    assert channel["self"] == [f"{BASE}/feeds/ai-policy.fr.rss"]
    assert channel["hub"] == [HUB]
    assert channel["prev-archive"] == [f"{BASE}/feeds/ai-policy/archive/4.fr.rss"]
    # The channel <link> is still the home page, whatever links were added.
    assert ET.fromstring(rss).findtext("channel/link") == f"{BASE}/"

    document = json_feed(render_json(sample_feed(), links=links))
    assert document["next_url"] == f"{BASE}/feeds/ai-policy/archive/4.json"
    assert document["hubs"] == [{"type": "WebSub", "url": HUB}]


def test_archive_page_is_marked_and_points_back_never_forward() -> None:
    links = FeedLinks(archive=3, prev_archive=2, hub=HUB)
    data = render_atom(sample_feed(), links=links)
    atom = _atom_links(data)
    assert atom["self"] == [f"{BASE}/feeds/ai-policy/archive/3.atom"]
    assert atom["current"] == [f"{BASE}/feeds/ai-policy.atom"]
    assert atom["prev-archive"] == [f"{BASE}/feeds/ai-policy/archive/2.atom"]
    # The next page's URL is written whether or not that page is complete yet, so this page
    # never needs rewriting; no hub (an archive never changes, so there is nothing to push).
    assert atom["next-archive"] == [f"{BASE}/feeds/ai-policy/archive/4.atom"]
    assert not {"previous", "hub"} & set(atom)
    assert ET.fromstring(data).find(f"{{{HISTORY_NS}}}archive") is not None

    rss = render_rss(sample_feed(), links=links)
    channel = ET.fromstring(rss).find("channel")
    assert channel is not None
    assert channel.find(f"{{{HISTORY_NS}}}archive") is not None
    assert _atom_links(rss, "channel")["current"] == [f"{BASE}/feeds/ai-policy.rss"]

    document = json_feed(render_json(sample_feed(), links=links))
    assert document["feed_url"] == f"{BASE}/feeds/ai-policy.json"
    assert document["next_url"] == f"{BASE}/feeds/ai-policy/archive/2.json"
    assert "hubs" not in document


def test_oldest_archive_has_no_older_page() -> None:
    links = FeedLinks(archive=0)
    assert not {"prev-archive", "next"} & set(_atom_links(render_atom(sample_feed(), links=links)))
    assert "next_url" not in json_feed(render_json(sample_feed(), links=links))


def test_plain_documents_are_unchanged_by_the_default_links() -> None:
    assert render_atom(sample_feed()) == render_atom(sample_feed(), links=FeedLinks())
    document = json_feed(render_json(empty_feed()))
    assert "next_url" not in document
    assert "hubs" not in document


def _page() -> bytes:
    return render_category_page(
        CategoryLinks(feed=sample_feed(), languages=("en", "fr"), newest_archive=2),
        site_title="Feeds & more",
    )


def test_category_page_lists_stories_versions_and_sources() -> None:
    data = _page()
    assert html5_errors(data) == []
    text = data.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>AI policy · Feeds &amp; more</title>" in text
    assert ">Korea unveils national AI plan</a></h3>" in text
    assert (
        '<a href="https://www.lemonde.example/ia-coree" hreflang="fr">'
        "Français: La Corée dévoile son plan pour l'IA (Le Monde)</a>"
    ) in text
    # The German version has no URL: named, not linked.
    assert '<li lang="de">Deutsch: Korea stellt KI-Plan vor (FAZ)</li>' in text
    assert "Sources: Korea Herald, Le Monde, Libération, Yonhap, FAZ" in text
    # A French representative in an English page says so.
    assert '<h3 lang="fr">' in text
    assert 'Statement &lt;on&gt; AI &amp; "safety"</a>' in text
    assert f'href="{BASE}/feeds/ai-policy.fr.rss"' in text
    assert f'href="{BASE}/feeds/ai-policy/archive/2.atom"' in text
    assert '<link rel="alternate" type="application/atom+xml"' in text
    assert "<script" not in text


def test_index_page_links_every_category_and_feed() -> None:
    categories = [
        CategoryLinks(feed=sample_feed(), languages=("en", "fr")),
        CategoryLinks(feed=empty_feed(), languages=()),
    ]
    data = render_index_page(categories, base_url=BASE, site_title="Feeds")
    assert html5_errors(data) == []
    text = data.decode("utf-8")
    for category in ("ai-policy", "quiet"):
        assert f'href="{BASE}/categories/{category}.html"' in text
        for fmt in ("atom", "rss", "json"):
            assert f'href="{BASE}/feeds/{category}.{fmt}"' in text
    for fmt in ("atom", "rss", "json"):
        assert f'href="{BASE}/feeds/ai-policy.fr.{fmt}"' in text
    assert f'href="{BASE}/feeds.opml"' in text
    empty = render_index_page([], base_url=BASE, site_title="Feeds")
    assert html5_errors(empty) == []
    assert b"No categories" in empty


def test_empty_category_page() -> None:
    data = render_category_page(CategoryLinks(feed=empty_feed(), languages=()), site_title="Feeds")
    assert html5_errors(data) == []
    assert b"No stories yet." in data
    assert b"archive" not in data


def test_html5_check_notices_broken_markup() -> None:
    # Guards the check itself: a stray end tag and an unclosed attribute are parse errors.
    assert html5_errors(b"<!DOCTYPE html><title>x</title></div><p a='>") != []


def test_codings_are_deterministic_and_round_trip() -> None:
    body = render_atom(sample_feed())
    assert gzip.decompress(compress(body, "gzip")) == body
    assert compress(body, "gzip") == compress(body, "gzip")
    assert brotli.decompress(compress(body, "br")) == body
    with pytest.raises(ValueError, match="coding"):
        compress(body, "zstd")


# A document of ~200 KB compressed with brotli in a process of its own; the growth of its
# peak resident memory in KiB.
_BROTLI_PEAK = """
import os
from aggregator.publishing.compress import compress

def peak():
    status = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

body = b"".join(b"<item><title>%d</title><description>%s</description></item>"
                % (i, os.urandom(48).hex().encode()) for i in range(1500))
before = peak()
compress(body, "br")
print(peak() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status")
def test_brotli_compresses_a_document_in_a_few_megabytes() -> None:
    grown = subprocess.run(
        [sys.executable, "-c", _BROTLI_PEAK], capture_output=True, text=True, check=True
    ).stdout
    assert int(grown) < 8 * 1024  # KiB: brotli's default window built a 32 MiB table


def test_document_offers_codings_with_their_own_etags() -> None:
    document = Document(render_atom(sample_feed()), "application/atom+xml", _t(27))
    assert document.codings == ("br", "gzip")
    assert document.etag_for(None) == document.etag
    assert len(set(document.etags)) == 3
    assert document.etag_for("gzip") == document.etag[:-1] + '-gzip"'
    tiny = Document(b"{}", "application/feed+json", _t(27))
    assert tiny.codings == ()
    assert tiny.encoded(None) == b"{}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.5, gzip", "gzip"),
        ("gzip;q=0, br;q=0", None),
        ("identity", None),
        ("*", "br"),
        ("*;q=0.1, gzip;q=0", "br"),
        ("GZIP;Q=1", "gzip"),
        ("gzip;q=nonsense, br", "br"),
    ],
)
def test_choose_coding(header: str | None, expected: str | None) -> None:
    assert choose_coding(header, ("br", "gzip")) == expected
    assert choose_coding(header, ()) is None
