"""``aggregator poll`` clusters what it stored before it exits; ``stories --json`` and ``stories
show`` explain every entry's story with the clustering evidence; ``cluster --redo`` makes the
same decisions again. Real command line, real model, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import aggregator, rss, write_config
from tests.support.stories import AI_ACT_EN, AI_ACT_FR, RAIL_EN, rfc822

CATEGORIES = '[[category]]\nid = "news"\ntitle = "News"\n'


def test_poll_clusters_and_stories_explain_why(feed_server: FeedServer, tmp_path: Path,
                                               database_url: str) -> None:
    # Two hours old: well inside the default horizon of the real clock.
    recent = rfc822(datetime.now(UTC) - timedelta(hours=2))
    feeds = {"wire": ("en", [AI_ACT_EN, RAIL_EN]), "journal": ("fr", [AI_ACT_FR])}
    sources = []
    for source_id, (language, items) in feeds.items():
        body = rss(source_id, [{**item, "date": recent} for item in items], language)
        feed_server.set(f"/{source_id}.xml", Resource(body=body))
        url = feed_server.url(f"/{source_id}.xml")
        sources.append(f'[[source]]\nid = "{source_id}"\nurl = "{url}"\n'
                       f'categories = ["news"]\nlanguage = "{language}"\n')
    config = write_config(tmp_path / "config", "\n".join(sources), CATEGORIES)
    options = ["--config", str(config), "--database", database_url]

    polled = aggregator("poll", *options).stdout
    assert "3 new entries" in polled
    assert "clustered 3 entries (2 new, 1 join, 0 merge, 0 kept)" in polled, polled

    stories = [json.loads(line) for line in aggregator("stories", "--json", *options).stdout
               .splitlines()]
    assert sorted(len(s["entries"]) for s in stories) == [1, 2]
    [pair] = [s for s in stories if len(s["entries"]) == 2]
    assert {e["language"] for e in pair["entries"]} == {"en", "fr"}
    evidence = sorted((e["evidence"] for e in pair["entries"]),
                      key=lambda found: found["decision"])
    joined, founder = evidence
    assert (founder["signal"], founder["decision"]) == ("new", "new")
    assert (joined["signal"], joined["decision"]) == ("embedding", "join")
    assert joined["matched_entry_id"] in {e["id"] for e in pair["entries"]}
    assert joined["parts"]["cross_language"] == 1.0
    assert joined["parts"]["score"] == joined["score"]
    assert joined["decided_at"]
    assert joined["language"]["lang"] in {"en", "fr"}

    shown = aggregator("stories", "show", str(pair["id"]), *options).stdout
    assert "founded the story" in shown
    assert "joined: embedding score" in shown
    assert "score parts: score" in shown
    assert "cosine" in shown

    assert "nothing to cluster" in aggregator("cluster", *options).stdout
    redone = aggregator("cluster", "--redo", *options).stdout
    assert "3 entries to cluster again" in redone
    assert "clustered 3 entries (2 new, 1 join, 0 merge, 0 kept)" in redone
    again = [json.loads(line) for line in aggregator("stories", "--json", *options).stdout
             .splitlines()]
    assert sorted((s["uid"], len(s["entries"])) for s in again) == sorted(
        (s["uid"], len(s["entries"])) for s in stories)
