"""``aggregator rules apply`` and ``POST /api/categories/{id}/apply``: after the editors saved
changed rules, the stored entries of the last N days are re-filed as the dry run shows, as one
correction with who and when; ``stories undo`` (or the API's undo) leaves the category rows as
before; ``stories search`` finds the story to correct. On SQLite and PostgreSQL, after a real
poll."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from aggregator.catalog import load_catalog
from aggregator.cli import ExitCode, main
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.publishing.outputs import Outputs
from aggregator.store import open_store
from aggregator.web import create_app
from tests.e2e.test_rules_cli import items
from tests.support.feeds import rss, write_config
from tests.support.webserver import serve_app

TOKEN = "rules-apply-token-0123456789"
SAVED = """
[[category]]
id = "ai-policy"
title = "AI policy"
include = ["AI Act", "export rules"]
exclude = ["Black Friday", "Strasbourg"]
"""


def rows(database_url: str) -> list[tuple[Any, ...]]:
    store = open_store(database_url)
    try:
        with store.engine.connect() as connection:
            return sorted(
                tuple(row)
                for row in connection.execute(
                    sa.text(
                        "SELECT e.guid, c.category_id, c.score, c.reason, c.origin "
                        "FROM entry_categories c JOIN entries e ON e.id = c.entry_id"
                    )
                )
            )
    finally:
        store.close()


@pytest.fixture
def options(
    feed_server: FeedServer,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    """Polled with the old rules, then the new ones saved in categories.toml."""
    from tests.e2e.test_rules_cli import CATEGORIES

    feed_server.set("/wire.xml", Resource(body=rss("wire", items(datetime.now(UTC)))))
    sources = (
        f'[[source]]\nid = "wire"\nurl = "{feed_server.url("/wire.xml")}"\n'
        'categories = ["ai-policy"]\nlanguage = "en"\n'
    )
    config = write_config(tmp_path / "config", sources, CATEGORIES)
    for name in ("AGGREGATOR_CONFIG", "AGGREGATOR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGGREGATOR_CLUSTERING", "exact")
    options = ["--config", str(config), "--database", database_url]
    assert main(["poll", *options]) == 0
    (config / "categories.toml").write_text(SAVED, encoding="utf-8")
    capsys.readouterr()
    return options


def test_apply_then_undo_from_the_command_line(
    options: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = rows(database_url)
    assert [r[0] for r in before] == ["w1"]
    assert (
        main(
            [
                "rules",
                "apply",
                "ai-policy",
                "--days",
                "7",
                "--by",
                "Mia",
                "--note",
                "new rules",
                "--json",
                *options,
            ]
        )
        == 0
    )
    applied = json.loads(capsys.readouterr().out)
    assert applied["category"] == "ai-policy"
    assert applied["days"] == 7
    assert [e["title"] for e in applied["added"]] == ["Chip export rules tighten"]
    assert [e["title"] for e in applied["removed"]] == ["AI Act: final vote in Strasbourg"]
    assert applied["removed"][0]["previous_reason"] == before[0][3]
    override = applied["override_id"]
    assert applied["message"].endswith(f"1 added, 1 removed (correction #{override})")
    assert [r[0] for r in rows(database_url)] == ["w3"]
    assert main(["stories", "corrections", "--json", *options]) == 0
    [logged] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (logged["id"], logged["kind"], logged["created_by"], logged["note"]) == (
        override,
        "rules",
        "Mia",
        "new rules",
    )
    # Applied once, there is nothing left to apply; every category is the default.
    assert main(["rules", "apply", "--days", "7", *options]) == 0
    assert "change nothing stored over the last 7 days" in capsys.readouterr().out
    assert main(["stories", "undo", str(override), "--by", "Lou", *options]) == 0
    assert rows(database_url) == before


@pytest.mark.parametrize(
    ("arguments", "code", "said"),
    [
        (["ai-policy", "--days", "0"], ExitCode.USAGE, "days"),
        (["nope", "--days", "7"], ExitCode.PROBLEMS, "no category 'nope'"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    options: list[str],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    code: int,
    said: str,
) -> None:
    before = rows(database_url)
    assert main(["rules", "apply", *arguments, *options]) == code
    assert said in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["rules", "apply", "ai-policy", *options])
    assert usage.value.code == ExitCode.USAGE
    assert "--days" in capsys.readouterr().err
    assert rows(database_url) == before


def test_apply_then_undo_through_the_api(options: list[str], database_url: str) -> None:
    before = rows(database_url)
    config = Path(options[1])
    store = open_store(database_url)
    catalog = load_catalog(config)
    outputs = Outputs(
        store=store,
        catalog=catalog,
        base_url="http://agg.test",
        tag_authority="agg.test",
        feed_size=10,
    )
    app = create_app(store=store, outputs=outputs, admin_token=TOKEN, config_dir=config)
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Editor": "Ana"}
    try:
        with serve_app(app) as base:
            refused = requests.post(
                f"{base}/api/categories/ai-policy/apply", json={"days": 7}, timeout=10
            )
            assert refused.status_code == 401
            bad = requests.post(
                f"{base}/api/categories/ai-policy/apply",
                json={"days": 400},
                headers=auth,
                timeout=10,
            )
            assert bad.status_code == 422
            assert rows(database_url) == before
            done = requests.post(
                f"{base}/api/categories/ai-policy/apply",
                json={"days": 7, "note": "api"},
                headers=auth,
                timeout=10,
            )
            assert done.status_code == 200, done.text
            applied = done.json()
            assert [e["title"] for e in applied["added"]] == ["Chip export rules tighten"]
            assert [r[0] for r in rows(database_url)] == ["w3"]
            log = requests.get(f"{base}/api/corrections", headers=auth, timeout=10).json()
            assert [(c["kind"], c["created_by"], c["category"]) for c in log] == [
                ("rules", "Ana", "ai-policy")
            ]
            undo = requests.post(
                f"{base}/api/corrections/{applied['override_id']}/undo", headers=auth, timeout=10
            )
            assert undo.status_code == 200
            assert rows(database_url) == before
    finally:
        store.close()


def test_stories_search_finds_the_story_to_correct(
    options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stories", "search", "STRASBOURG", "--json", *options]) == 0
    [hit] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert hit["title"] == "AI Act: final vote in Strasbourg"
    assert hit["story_id"] is not None
    assert set(hit) == {
        "entry_id",
        "source_id",
        "title",
        "url",
        "language",
        "published_at",
        "story_id",
        "story_title",
    }  # the API's shape (SearchHitOut)
    assert main(["stories", "search", "AI", "act", *options]) == 0
    shown = capsys.readouterr().out
    assert "AI Act: final vote in Strasbourg" in shown
    assert "Black Friday deals on AI Act books" in shown
    assert f"story #{hit['story_id']}" in shown
    assert main(["stories", "search", "nothing-like-this", *options]) == 0
    assert capsys.readouterr().out == "nothing found\n"
    assert main(["stories", "search", '""', *options]) == ExitCode.USAGE
    assert "give at least one word" in capsys.readouterr().err
