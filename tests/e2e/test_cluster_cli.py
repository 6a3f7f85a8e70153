"""``aggregator poll`` clusters what it stored before it exits; ``stories --json`` and ``stories
show`` explain every entry's story with the clustering evidence; ``cluster --redo`` makes the
same decisions again; editors merge, split, pin, hide and undo from the command line. Real
command line, real model, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import aggregator, cli_env, rss, write_config
from tests.support.stories import AI_ACT_EN, AI_ACT_FR, RAIL_EN, rfc822

CATEGORIES = '[[category]]\nid = "news"\ntitle = "News"\n'


def test_poll_clusters_and_stories_explain_why(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    # Two hours old: well inside the default horizon of the real clock.
    recent = rfc822(datetime.now(UTC) - timedelta(hours=2))
    feeds = {"wire": ("en", [AI_ACT_EN, RAIL_EN]), "journal": ("fr", [AI_ACT_FR])}
    sources = []
    for source_id, (language, items) in feeds.items():
        body = rss(source_id, [{**item, "date": recent} for item in items], language)
        feed_server.set(f"/{source_id}.xml", Resource(body=body))
        url = feed_server.url(f"/{source_id}.xml")
        sources.append(
            f'[[source]]\nid = "{source_id}"\nurl = "{url}"\n'
            f'categories = ["news"]\nlanguage = "{language}"\n'
        )
    config = write_config(tmp_path / "config", "\n".join(sources), CATEGORIES)
    options = ["--config", str(config), "--database", database_url]

    polled = aggregator("poll", *options).stdout
    assert "3 new entries" in polled
    assert "clustered 3 entries (2 new, 1 join, 0 merge, 0 kept)" in polled, polled

    stories = [
        json.loads(line) for line in aggregator("stories", "--json", *options).stdout.splitlines()
    ]
    assert sorted(len(s["entries"]) for s in stories) == [1, 2]
    [pair] = [s for s in stories if len(s["entries"]) == 2]
    assert {e["language"] for e in pair["entries"]} == {"en", "fr"}
    evidence = sorted((e["evidence"] for e in pair["entries"]), key=lambda found: found["decision"])
    joined, founder = evidence
    assert (founder["signal"], founder["decision"]) == ("new", "new")
    assert (joined["signal"], joined["decision"]) == ("embedding", "join")
    assert joined["matched_entry_id"] in {e["entry_id"] for e in pair["entries"]}
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
    again = [
        json.loads(line) for line in aggregator("stories", "--json", *options).stdout.splitlines()
    ]
    assert sorted((s["uid"], len(s["entries"])) for s in again) == sorted(
        (s["uid"], len(s["entries"])) for s in stories
    )


def test_editors_correct_stories_from_the_command_line(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    # SQLite and exact clustering (no model to load): the store's side of every correction
    # runs on both engines with the model in tests/e2e/test_corrections.py.
    env = cli_env(AGGREGATOR_CLUSTERING="exact", USER="bob")
    recent = rfc822(datetime.now(UTC) - timedelta(hours=2))
    sources = []
    for source_id, (language, items) in {
        "wire": ("en", [AI_ACT_EN, RAIL_EN]),
        "journal": ("fr", [AI_ACT_FR]),
    }.items():
        body = rss(source_id, [{**item, "date": recent} for item in items], language)
        feed_server.set(f"/{source_id}.xml", Resource(body=body))
        sources.append(
            f'[[source]]\nid = "{source_id}"\nurl = '
            f'"{feed_server.url(f"/{source_id}.xml")}"\ncategories = ["news"]\n'
        )
    config = write_config(tmp_path / "config", "\n".join(sources), CATEGORIES)
    options = ["--config", str(config), "--database", f"sqlite:///{tmp_path / 'a.db'}"]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return aggregator(*args, *options, env=env, check=check)

    run("poll")
    stories = {
        s["entries"][0]["title"]: s
        for s in map(json.loads, run("stories", "--json").stdout.splitlines())
    }
    first, second, rail = (stories[item["title"]]["id"] for item in (AI_ACT_EN, AI_ACT_FR, RAIL_EN))
    french = stories[AI_ACT_FR["title"]]["entries"][0]
    assert french["categories"] == [
        {"category": "news", "score": 1.0, "reason": "all entries of source"}
    ]
    assert french["evidence"]["signal"] == "new"

    kept = min(first, second)
    assert (
        f"into #{kept} (correction #1)"
        in run(
            "stories", "merge", str(first), str(second), "--by", "alice", "--note", "one story"
        ).stdout
    )
    assert (
        f"split entry #{french['entry_id']} into new story #"
        in run("stories", "split", str(french["entry_id"])).stdout
    )
    assert "correction #3" in run("stories", "pin", str(rail), "--category", "news").stdout
    refused = run("stories", "hide", str(kept), "--category", "sports", check=False)
    assert refused.returncode == 2
    assert "unknown category 'sports'" in refused.stderr
    missing = run("stories", "hide", "99999", check=False)
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no story 99999")

    shown = run("stories", "show", str(rail)).stdout
    assert "founded the story" in shown
    assert "in news: all entries of source (score 1)" in shown
    assert "pinned first in news" in shown
    assert "#3 category_pin: pin story" in shown
    assert "by bob" in shown  # $USER when --by is not given

    assert "undid correction #1" in run("stories", "undo", "1").stdout
    again = run("stories", "undo", "1", check=False)
    assert (again.returncode, again.stderr.strip()) == (1, "error: no active correction 1")
    listed = [
        json.loads(line)
        for line in run("stories", "corrections", "--all", "--json").stdout.splitlines()
    ]
    assert [(c["id"], c["kind"], c["created_by"], c["active"]) for c in listed] == [
        (1, "merge", "alice", False),
        (2, "split", "bob", True),
        (3, "category_pin", "bob", True),
    ]
    assert (listed[0]["note"], listed[0]["undone_by"], listed[2]["category"]) == (
        "one story",
        "bob",
        "news",
    )
    gone = max(first, second)
    detail = json.loads(run("stories", "show", str(gone), "--json").stdout)
    assert detail["merged_into_id"] is None  # the merged-away story is back...
    # ...with the entry it gave up, unless that is the French one, still split out.
    assert [e["title"] for e in detail["entries"]] == (
        [AI_ACT_EN["title"]] if gone == first else []
    )
