"""An entry's media in the store and the JSON API: written and read back on both engines, one
shape in ``stories show --json`` (``story_json``), ``GET /api/stories/{id}`` and a category's
story list, and new media alone refresh a stored entry without making it "updated".
"""

from __future__ import annotations

from dataclasses import replace

import requests

from aggregator.clustering.explain import story_json
from aggregator.publishing.outputs import Outputs
from aggregator.store import Store
from aggregator.types import Enclosure, MediaImage, NormalizedEntry
from aggregator.web import create_app
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source
from tests.support.webserver import serve_app

AUDIO = Enclosure("https://cdn.example/ep1.mp3", "audio/mpeg", 12345)
PICTURE = MediaImage("https://cdn.example/ep1.jpg", 640, 360)
MEDIA = {
    "enclosures": [{"url": AUDIO.url, "type": "audio/mpeg", "length": 12345}],
    "image": {"url": PICTURE.url, "width": 640, "height": 360},
}


def _save(store: Store, *entries: NormalizedEntry) -> tuple[int, int]:
    outcome = store.save_poll(
        "pod",
        fetched(),
        body_hash=None,
        feed_title=None,
        feed_link=None,
        entries=[(e, [match("news")]) for e in entries],
        next_check_at=NOW,
        now=NOW,
    )
    settle(store)
    return outcome.new_entries, outcome.updated_entries


def test_media_reach_the_api_and_the_cli_in_one_shape(store: Store) -> None:
    cat = catalog(source("pod"))
    store.sync_sources(cat, NOW)
    _save(store, entry("ep1", enclosures=(AUDIO,), image=PICTURE), entry("ep2"))
    outputs = Outputs(
        store=store,
        catalog=cat,
        base_url="https://agg.example",
        tag_authority="agg.example",
        feed_size=50,
    )
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        listed = requests.get(f"{base}/api/categories/news/stories", timeout=10).json()
        by_title = {s["title"]: s for s in listed}
        shown = by_title["Title ep1"]["entries"][0]
        assert {k: shown[k] for k in MEDIA} == MEDIA
        assert by_title["Title ep2"]["entries"][0]["image"] is None
        assert by_title["Title ep2"]["entries"][0]["enclosures"] == []
        story_id = by_title["Title ep1"]["id"]
        detail = requests.get(f"{base}/api/stories/{story_id}", timeout=10).json()
        page = requests.get(f"{base}/categories/news.html", timeout=10)
    # The page shows the picture, and its policy lets a browser load it.
    assert f'<img src="{PICTURE.url}"' in page.text
    assert "img-src 'self' https:;" in page.headers["content-security-policy"]
    api_entry = detail["entries"][0]
    assert {k: api_entry[k] for k in MEDIA} == MEDIA
    story = store.story_detail(story_id)
    assert story is not None
    cli_entry = story_json(story)["entries"][0]
    assert {k: cli_entry[k] for k in MEDIA} == MEDIA


def test_new_media_alone_refresh_the_entry_without_an_update(store: Store) -> None:
    store.sync_sources(catalog(source("pod")), NOW)
    first = entry("ep1", enclosures=(AUDIO,))
    assert _save(store, first) == (1, 0)
    moved = Enclosure("https://cdn2.example/ep1.mp3", "audio/mpeg", 12345)
    assert _save(store, replace(first, enclosures=(moved,), image=PICTURE)) == (0, 0)
    stories, _ = store.category_stories_page("news", 10)
    (shown,) = [e for s in stories for e in s.entries]
    assert shown.enclosures == (moved,)
    assert shown.image == PICTURE
