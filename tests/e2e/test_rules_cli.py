"""``aggregator rules test``: the dry run of changed category rules from the command line (once
in a subprocess as a user runs it, then through ``main`` to stay fast), after a real poll, on
SQLite and PostgreSQL; flags, an edited categories file, JSON output and the errors an editor
can make."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.cli import ExitCode, main
from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import aggregator, rss, write_config
from tests.support.stories import rfc822

CATEGORIES = """
[[category]]
id = "ai-policy"
title = "AI policy"
include = ["AI Act"]
exclude = ["Black Friday"]
"""


def items(now: datetime) -> list[dict[str, str]]:
    def item(guid: str, title: str, hours_ago: int) -> dict[str, str]:
        return {
            "guid": guid,
            "title": title,
            "link": f"https://news.example/{guid}",
            "date": rfc822(now - timedelta(hours=hours_ago)),
        }

    return [
        item("w1", "AI Act: final vote in Strasbourg", 5),
        item("w2", "Black Friday deals on AI Act books", 6),
        item("w3", "Chip export rules tighten", 7),
    ]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_rules_test_shows_what_changed_rules_would_do(
    feed_server: FeedServer,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed_server.set("/wire.xml", Resource(body=rss("wire", items(datetime.now(UTC)))))
    sources = (
        f'[[source]]\nid = "wire"\nurl = "{feed_server.url("/wire.xml")}"\n'
        'categories = ["ai-policy"]\nlanguage = "en"\n'
    )
    config = write_config(tmp_path / "config", sources, CATEGORIES)
    options = ["--config", str(config), "--database", database_url]
    for name in ("AGGREGATOR_CONFIG", "AGGREGATOR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGGREGATOR_CLUSTERING", "exact")  # no model needed to store entries
    assert main(["poll", *options]) == 0
    assert "3 new entries" in capsys.readouterr().out

    shown = aggregator(
        "rules",
        "test",
        "ai-policy",
        "--add-include",
        "export rules",
        "--add-exclude",
        "Strasbourg",
        *options,
    ).stdout
    assert "category ai-policy: 3 entries of 1 source published since" in shown
    assert "1 added, 1 removed, 1 unchanged" in shown
    assert "+ " in shown
    assert "[wire]  Chip export rules tighten" in shown
    assert "include 'export rules' matched in title" in shown
    assert "[wire]  AI Act: final vote in Strasbourg" in shown
    assert "exclude 'Strasbourg' matched in title" in shown
    assert "(was: include 'AI Act' matched in title)" in shown

    # Replacing the lists, as JSON; a short window sees nothing.
    result = run_json(
        capsys,
        "rules",
        "test",
        "ai-policy",
        "--include",
        "Black Friday",
        "--exclude",
        "export",
        "--since",
        "30d",
        *options,
    )
    assert (result["category"], result["examined"], result["unchanged"]) == ("ai-policy", 3, 1)
    assert [e["title"] for e in result["added"]] == ["Black Friday deals on AI Act books"]
    assert [e["title"] for e in result["removed"]] == ["AI Act: final vote in Strasbourg"]
    added = result["added"][0]
    assert added["source_id"] == "wire"
    assert added["url"] == "https://news.example/w2"
    assert added["reason"] == "include 'Black Friday' matched in title"
    assert datetime.fromisoformat(added["published_at"]) < datetime.now(UTC)
    quiet = run_json(capsys, "rules", "test", "ai-policy", "--since", "1h", *options)
    assert (quiet["examined"], quiet["added"], quiet["removed"]) == (0, [], [])

    # An edited copy of categories.toml, not yet saved over the real one.
    edited = tmp_path / "edited.toml"
    edited.write_text(
        CATEGORIES.replace('include = ["AI Act"]', 'include = ["chip"]'), encoding="utf-8"
    )
    result = run_json(capsys, "rules", "test", "ai-policy", "--file", str(edited), *options)
    assert [e["title"] for e in result["added"]] == ["Chip export rules tighten"]
    assert [e["title"] for e in result["removed"]] == ["AI Act: final vote in Strasbourg"]
    # The real file and the store were left as they were.
    again = run_json(capsys, "rules", "test", "ai-policy", *options)
    assert (again["examined"], again["unchanged"], again["added"], again["removed"]) == (
        3,
        3,
        [],
        [],
    )


def test_rules_test_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        tmp_path / "config",
        '[[source]]\nid = "wire"\nurl = "https://wire.example/feed"\ncategories = ["ai-policy"]\n',
        CATEGORIES,
    )
    options = ["--config", str(config), "--database", f"sqlite:///{tmp_path / 'db.sqlite'}"]
    broken = tmp_path / "broken.toml"
    broken.write_text(CATEGORIES + "min_score = 3\n", encoding="utf-8")
    cases = [
        (["ai-policy", "--include", "/(unclosed/"], ["bad rule '/(unclosed/'", "'--include'"]),
        (["nope"], ["unknown category 'nope'; known: ai-policy"]),
        (["ai-policy", "--since", "a week"], ["'--since'"]),
        (["ai-policy", "--file", str(broken)], ["broken.toml", "'min_score'"]),
    ]
    for args, messages in cases:
        capsys.readouterr()
        assert main(["rules", "test", *args, *options]) == ExitCode.CONFIG, args
        error = capsys.readouterr().err
        for message in messages:
            assert message in error, (args, error)
