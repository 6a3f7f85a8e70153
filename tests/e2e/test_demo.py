"""``aggregator demo`` runs offline, serves the category feeds, and stops cleanly on SIGTERM.

In the served "AI policy" feed, a story carried by two English sources (same canonical URL, or
same text under different URLs) is ONE item naming both sources, and a story told separately in
English, French and German is ONE item with its three language versions; a different story of
the same day stays apart.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import feedparser
import pytest
import requests

from tests.support.feeds import cli_env

STARTUP_SECONDS = 90
AI_ACT_URL = "https://wire.example/2026/11/12/eu-ai-act-high-risk-delay"
NORDIC_TITLE = (
    "Nordic data protection authorities issue joint guidance on AI chatbots in public services"
)
HELIX = {
    "en": "https://techdaily.example/2026/11/18/ai-office-first-case-helix",
    "fr": "https://echo-numerique.example/2026/11/18/ai-act-bruxelles-premiere-procedure-helix",
    "de": "https://tagesblick.example/digital/2026/11/18/ki-buero-erstes-verfahren-helix",
}
AI_ACT = {
    "fr": "https://tribune.example/numerique/2026/11/12/ue-ai-act-report-haut-risque-2028",
    "de": (
        "https://tagesblick.example/digital/2026/11/12/eu-verschiebt-ki-verordnung-hochrisiko-2028"
    ),
}
CANADA_URL = "https://wire.example/2026/11/18/canada-facial-recognition-pharmacy"
COP_URLS = {
    "en": "https://wire.example/2026/11/17/cop31-antalya-adaptation-finance",
    "de": ("https://tagesblick.example/klima/2026/11/17/cop31-antalya-anpassungsfinanzierung"),
}


@pytest.fixture
def demo() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )
    assert process.stdout is not None
    base = None
    seen: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.match(r"open (http://[^/\s]+)/\s", line)
        if found:
            base = found.group(1)
        if "serving" in line:
            break
    if base is None or process.poll() is not None:
        process.kill()
        pytest.fail("demo did not start:\n" + "".join(seen))
    # The server starts right after the "serving" line; give it a moment to bind.
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/healthz", timeout=5)
            break
        except (requests.ConnectionError, requests.Timeout):  # a loaded machine is slow
            time.sleep(0.1)
    yield process, base
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    process.stdout.close()


def test_demo_serves_one_item_per_story(demo: tuple[subprocess.Popen[str], str]) -> None:
    process, base = demo
    response = requests.get(f"{base}/feeds/ai-policy.atom", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo
    titles = [e.title for e in feed.entries]
    assert len(titles) == len(set(e.id for e in feed.entries))

    ai_act = [e for e in feed.entries if any(link.href == AI_ACT_URL for link in e.links)]
    assert len(ai_act) == 1, titles
    assert "Meridian Wire" in ai_act[0].summary
    assert "TechDaily" in ai_act[0].summary

    nordic = [e for e in feed.entries if e.title == NORDIC_TITLE]
    assert len(nordic) == 1, titles
    assert "Meridian Wire" in nordic[0].summary
    assert "The Civic Post" in nordic[0].summary

    assert not any("marathon" in t.lower() or "soup" in t.lower() for t in titles)

    # One story in three languages, joined by the clustering stage alone: one item whose
    # alternate links name each language version.
    def item_with(url: str) -> list[Any]:  # feedparser's entries: no type information
        return [e for e in feed.entries if any(link.href == url for link in e.links)]

    [helix] = item_with(HELIX["en"])
    versions = {link.href: link.get("hreflang") for link in helix.links}
    assert versions == {url: lang for lang, url in HELIX.items()}, versions
    assert all(name in helix.summary for name in ("TechDaily", "Écho Numérique", "Tagesblick"))
    [canada] = item_with(CANADA_URL)  # the same day, another AI story: its own item
    assert canada.id != helix.id
    assert item_with(AI_ACT["fr"]) == item_with(AI_ACT["de"]) == ai_act

    # Two reports of one event written separately in English and German (issue 14): the
    # stage joins them, and the climate feed has one item with both versions.
    climate = feedparser.parse(requests.get(f"{base}/feeds/climate.atom", timeout=10).content)
    cop = [
        e
        for e in climate.entries
        if {link.href for link in e.links} & {COP_URLS["en"], COP_URLS["de"]}
    ]
    assert len(cop) == 1, [e.title for e in climate.entries]
    assert {link.href for link in cop[0].links} >= set(COP_URLS.values()), cop[0].links

    for path in (
        "/feeds/ai-policy.rss",
        "/feeds/ai-policy.json",
        "/feeds/climate.atom",
        "/feeds.opml",
        "/",
    ):
        assert requests.get(f"{base}{path}", timeout=10).status_code == 200, path

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
