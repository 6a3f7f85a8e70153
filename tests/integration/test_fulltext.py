"""Full text of truncated feeds against a loopback news site with real article pages.

A feed of short teasers links to a good article, a paywall stub, a huge page, a slow page, a
page that redirects to a private address and a page that changes. After a real poll, the
full-text stage fetches them through a real ``Fetcher`` (host gate, deadline, size cap, the
address guard) into a real store; the published Atom, RSS and JSON Feed carry the full text
where extraction worked and only the feed's summary where it did not.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from email.utils import parsedate_to_datetime

import feedparser
import pytest
import requests

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.editorial.opml import export_opml
from aggregator.polling.fetch import Fetcher
from aggregator.polling.fulltext import FullTextStage
from aggregator.polling.hosts import HostGate
from aggregator.polling.poller import Refresher
from aggregator.publishing.outputs import Outputs
from aggregator.safety.netguard import NetGuard, system_resolver
from aggregator.store import Store
from aggregator.types import FullTextOutcome
from aggregator.web import create_app
from tests.support import feedvalidator
from tests.support.builders import settle
from tests.support.feeds import rss
from tests.support.feedvalidator import require_validator
from tests.support.outputchecks import json_feed
from tests.support.webserver import serve_app

# The articles' host: resolves to loopback, and is trusted as if that were public, while every
# IP literal (a redirect to 127.0.0.1) is checked for real, as for any page from a feed.
SITE = "news.test"
PUBLISHED = "Fri, 20 Nov 2026 09:00:00 GMT"
PUBLISHED_AT = parsedate_to_datetime(PUBLISHED)
HTML = "text/html; charset=utf-8"
TEASER = "A short teaser of the story."
MAX_BYTES = 256 * 1024
TOKEN = "t" * 32


def article(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        "<!doctype html><html><head><title>" + title + "</title></head><body>"
        "<header><nav><a href='/'>Home</a> <a href='/world'>World</a> "
        "<a href='/sport'>Sport</a> <a href='/login'>Log in</a></nav></header>"
        "<main><article><h1>" + title + "</h1>"
        "<div class='story'>" + body + "</div></article></main>"
        "<aside><h2>Most read</h2><ul><li><a href='/x'>Another story entirely</a></li>"
        "<li><a href='/y'>Yet another one</a></li></ul></aside>"
        "<footer><p>Copyright Example News. All rights reserved. Imprint. Privacy.</p>"
        "</footer></body></html>"
    ).encode()


GOOD = [
    "The harbour authority approved the new breakwater on Thursday after a vote that "
    "had been delayed twice by storms along the northern coast.",
    "Engineers said the structure would protect about four hundred fishing boats and "
    "cut the repair bill the town pays every winter by more than half.",
    "Work starts in March, and the first section should be finished before the summer "
    "season brings the ferries back to the quay.",
]
CHANGED = [
    "Correction: the council met on Friday, not Thursday, and the vote on the bridge "
    "repairs was unanimous after a long debate about the budget.",
    "The repairs will close the bridge to lorries for six weeks starting in April, with "
    "a diversion signposted through the industrial estate east of the river.",
    "Residents can comment on the plans at the town hall until the end of the month, "
    "the council said in a statement published on its website.",
]
PAYWALL = (
    b"<!doctype html><html><head><title>Subscribers only</title></head><body>"
    b"<main><article><h1>Exclusive</h1><p>Subscribe to read.</p></article></main>"
    b"</body></html>"
)


def site_url(server: FeedServer, path: str) -> str:
    return f"http://{SITE}:{server.port}{path}"


def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"] if host == SITE else system_resolver(host, port)


def items(server: FeedServer, teasers: dict[str, str] | None = None) -> list[dict[str, str]]:
    teasers = teasers or {}
    return [
        {
            "guid": path,
            "title": f"Story {path}",
            "link": site_url(server, f"/{path}"),
            "body": teasers.get(path, TEASER),
            "date": PUBLISHED,
        }
        for path in ("good", "paywall", "huge", "slow", "private", "changing")
    ]


class Site:
    """The news site, the store polled from it, and the stage under test."""

    def __init__(self, store: Store, server: FeedServer, selector: str | None = None) -> None:
        self.store = store
        self.server = server
        self.now = PUBLISHED_AT + timedelta(hours=1)
        server.set("/feed.xml", Resource(body=rss("Example News", items(server))))
        server.set("/good", Resource(body=article("Breakwater approved", GOOD), content_type=HTML))
        server.set("/paywall", Resource(body=PAYWALL, content_type=HTML))
        server.set(
            "/huge", Resource(body=article("Huge", ["word " * 100] * 700), content_type=HTML)
        )
        server.set("/slow", Resource(body=article("Slow", GOOD), content_type=HTML, delay=3))
        server.set("/private", Resource(status=302, redirect_to=server.url("/good")))
        server.set(
            "/changing", Resource(body=article("Bridge repairs", GOOD[::-1]), content_type=HTML)
        )
        self.catalog = Catalog(
            sources=(
                SourceConfig(
                    id="news",
                    url=server.url("/feed.xml"),
                    categories=("all",),
                    full_text=True,
                    full_text_selector=selector,
                ),
            ),
            categories=(CategoryConfig(id="all", title="All"),),
        )
        store.sync_sources(self.catalog, self.now)
        self.fetcher = Fetcher(
            user_agent="aggregator-test",
            connect_timeout=2,
            read_timeout=1,
            total_timeout=1.5,
            max_bytes=MAX_BYTES,
            gate=HostGate(max_per_host=4, min_delay=0.0),
            guard=NetGuard(resolver=loopback, allowed_hosts=frozenset({SITE})),
            now=self.clock,
        )
        self.refresher = Refresher(
            store=store, fetcher=self.fetcher, catalog=self.catalog, workers=2, clock=self.clock
        )
        self.stage = FullTextStage(store, self.fetcher, self.catalog, clock=self.clock)
        self.outputs = Outputs(
            store=store,
            catalog=self.catalog,
            base_url="http://agg.test",
            tag_authority="agg.test",
            feed_size=20,
            recheck_seconds=0,
        )

    def clock(self):  # type: ignore[no-untyped-def]
        return self.now

    def poll(self) -> None:
        due = self.store.due_sources(self.now, everything=True)
        self.refresher.poll(due)
        settle(self.store)

    def entry_ids(self) -> dict[str, int]:
        stories = self.store.category_stories("all", 50)
        return {e.url.rsplit("/", 1)[1]: e.entry_id for s in stories for e in s.entries if e.url}

    def outcome(self, path: str) -> tuple[str, str | None]:
        record = self.store.full_text(self.entry_ids()[path])
        assert record is not None, path
        return record.outcome.value, record.error_kind

    def close(self) -> None:
        self.refresher.close()
        self.fetcher.close()


@pytest.fixture
def site(store: Store, feed_server: FeedServer) -> Iterator[Site]:
    news = Site(store, feed_server)
    try:
        yield news
    finally:
        news.close()


def by_title(document: bytes) -> dict[str, feedparser.FeedParserDict]:
    return {e.title: e for e in feedparser.parse(document).entries}


def test_each_page_gets_its_outcome_and_outputs_fall_back_to_the_summary(site: Site) -> None:
    site.poll()
    summary = site.stage.run()
    assert summary.outcomes == {"extracted": 2, "empty": 1, "failed": 3}
    assert site.outcome("good") == ("extracted", None)
    assert site.outcome("changing") == ("extracted", None)
    assert site.outcome("paywall") == ("empty", None)
    assert site.outcome("huge") == ("failed", "too_large")
    assert site.outcome("slow") == ("failed", "timeout")
    assert site.outcome("private") == ("failed", "blocked_address")
    # The redirect was refused before any request reached the private address.
    assert site.server.count("/good") == 1

    good = site.store.full_text(site.entry_ids()["good"])
    assert good is not None
    assert "four hundred fishing boats" in good.text
    for furniture in ("Most read", "Log in", "All rights reserved"):
        assert furniture not in good.text

    atom = by_title(site.outputs.document("feeds/all.atom").body)  # type: ignore[union-attr]
    rss_items = by_title(site.outputs.document("feeds/all.rss").body)  # type: ignore[union-attr]
    feed = json.loads(site.outputs.document("feeds/all.json").body)  # type: ignore[union-attr]
    json_items = {i["title"]: i for i in feed["items"]}
    for title in ("Story good", "Story changing"):
        assert "four hundred fishing boats" in atom[title].content[0].value
        assert TEASER in atom[title].summary
        assert "four hundred fishing boats" in rss_items[title].content[0].value
        assert "four hundred fishing boats" in json_items[title]["content_html"]
    for title in ("Story paywall", "Story huge", "Story slow", "Story private"):
        assert "content" not in atom[title]
        assert TEASER in atom[title].summary
        assert "content" not in rss_items[title]
        assert TEASER in json_items[title]["content_html"]
        assert "Subscribe" not in json_items[title]["content_html"]


def test_outputs_with_full_text_are_valid(site: Site) -> None:
    checkout = require_validator()
    site.poll()
    site.stage.run()
    for path, content_type in (
        ("feeds/all.atom", "application/atom+xml"),
        ("feeds/all.rss", "application/rss+xml"),
    ):
        document = site.outputs.document(path)
        assert document is not None
        assert b"four hundred fishing boats" in document.body
        lines = feedvalidator.validate(
            document.body,
            base=f"http://agg.test/{path}",
            content_type=content_type,
            checkout=checkout,
        )
        assert feedvalidator.errors(lines) == [], (path, lines)
    document = site.outputs.document("feeds/all.json")
    assert document is not None
    json_feed(document.body)  # raises unless valid JSON Feed 1.1


def test_unchanged_pages_are_not_fetched_again_and_a_changed_page_is(site: Site) -> None:
    site.poll()
    site.stage.run()
    site.server.reset_log()
    site.now += timedelta(minutes=10)
    again = site.stage.run()
    # Nothing changed and no failure is due a retry yet: not one request.
    assert again.checked == 0
    assert site.server.requests == []

    # The site corrects two stories, and the feed says so with new teasers.
    site.server.set(
        "/changing", Resource(body=article("Bridge repairs", CHANGED), content_type=HTML)
    )
    site.server.set(
        "/feed.xml",
        Resource(
            body=rss(
                "Example News",
                items(site.server, {"changing": "Corrected teaser.", "good": "Edited teaser."}),
            )
        ),
    )
    site.now += timedelta(hours=1)
    site.poll()
    site.server.reset_log()
    changed = site.stage.run()
    # The failures are retried an hour on (and fail again); "good" answers 304 to the
    # conditional request: kept as it was, not extracted again.
    assert changed.unchanged == 1
    assert changed.outcomes.get("extracted") == 1
    good_request = next(r for r in site.server.requests if r.path == "/good")
    assert good_request.status == 304
    assert "if-none-match" in {k.lower() for k in good_request.headers}
    record = site.store.full_text(site.entry_ids()["changing"])
    assert record is not None
    assert "close the bridge to lorries" in record.text
    assert "fishing boats" not in record.text
    good = site.store.full_text(site.entry_ids()["good"])
    assert good is not None
    assert good.outcome is FullTextOutcome.EXTRACTED
    assert "four hundred fishing boats" in good.text
    atom = by_title(site.outputs.document("feeds/all.atom").body)  # type: ignore[union-attr]
    assert "close the bridge to lorries" in atom["Story changing"].content[0].value


def test_failures_are_retried_a_few_times_then_left(site: Site) -> None:
    site.poll()
    site.stage.run()
    # Only the huge page matters here; the slow one answers at once from now on.
    site.server.set("/slow", Resource(body=article("Slow", GOOD), content_type=HTML))
    for _ in range(5):
        site.now += timedelta(hours=2)
        site.stage.run()
    huge = site.store.full_text(site.entry_ids()["huge"])
    assert huge is not None
    assert huge.failures == 3
    site.server.reset_log()
    site.now += timedelta(hours=2)
    assert site.stage.run().checked == 0
    assert site.server.count("/huge") == 0


def test_sources_list_says_how_often_extraction_worked(site: Site) -> None:
    site.poll()
    site.stage.run()
    status = next(s for s in site.store.sources() if s.id == "news")
    assert status.full_text is True
    assert dict(status.full_text_outcomes) == {"extracted": 2, "empty": 1, "failed": 3}
    assert status.full_text_summary == (
        "full text: 2 of 6 pages extracted (33%); 1 empty, 3 failed"
    )
    assert status.as_json()["full_text_outcomes"] == {"extracted": 2, "empty": 1, "failed": 3}


def test_the_api_the_admin_pages_and_opml_show_it(site: Site) -> None:
    site.poll()
    site.stage.run()
    app = create_app(store=site.store, outputs=site.outputs, admin_token=TOKEN)
    with serve_app(app) as base, requests.Session() as http:
        (news,) = http.get(f"{base}/api/sources", timeout=10).json()
        assert news["full_text"] is True
        assert news["full_text_outcomes"] == {"extracted": 2, "empty": 1, "failed": 3}
        http.post(f"{base}/admin/login", data={"token": TOKEN, "editor": "Mia"}, timeout=10)
        page = http.get(f"{base}/admin/sources", timeout=10).text
        assert (
            '<small class="full-text">full text: 2 of 6 pages extracted (33%); 1 empty, '
            "3 failed</small>"
        ) in page
    outline = ET.fromstring(export_opml(site.catalog)).find(".//outline[@xmlUrl]")
    assert outline is not None
    assert outline.get("fullText") == "true"


def test_a_selector_takes_exactly_the_element_it_names(
    store: Store, feed_server: FeedServer
) -> None:
    news = Site(store, feed_server, selector="div.story")
    try:
        news.poll()
        news.stage.run()
        record = news.store.full_text(news.entry_ids()["good"])
        assert record is not None
        assert record.outcome is FullTextOutcome.EXTRACTED
        assert record.text.startswith("The harbour authority")
        assert "Breakwater approved" not in record.text  # the <h1> is outside div.story
    finally:
        news.close()


def test_sources_without_full_text_fetch_no_page(store: Store, feed_server: FeedServer) -> None:
    news = Site(store, feed_server)
    try:
        plain = Catalog(
            sources=(
                SourceConfig(id="news", url=feed_server.url("/feed.xml"), categories=("all",)),
            ),
            categories=news.catalog.categories,
        )
        news.stage.catalog = plain
        news.poll()
        feed_server.reset_log()
        assert news.stage.run().checked == 0
        assert feed_server.requests == []
    finally:
        news.close()
