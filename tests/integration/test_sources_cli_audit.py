"""``aggregator sources`` edits leave the audit row an editor's edit in the admin pages leaves:
pause, resume, remove and an OPML import each one row naming who (``--by``, else $USER); a
refused edit leaves neither the file change nor the row; with no database yet the file is
edited and the command says the edit went unrecorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.catalog import load_catalog
from aggregator.cli import main
from tests.support.feeds import toml_tables, write_config

SOURCES = toml_tables(
    "source",
    {"id": "first", "url": "https://first.example/feed.xml", "categories": ["news"]},
    {"id": "second", "url": "https://second.example/feed.xml", "categories": ["news"]},
)
CATEGORIES = toml_tables("category", {"id": "news", "title": "News"})
OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>mine</title></head><body>
<outline text="Third" type="rss" xmlUrl="https://third.example/feed.xml"/>
</body></opml>
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config", SOURCES, CATEGORIES)


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'agg.db'}"
    assert main(["db", "upgrade", "--database", url]) == 0
    return url


def _audit(capsys: pytest.CaptureFixture[str], database: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["editors", "audit", "--json", "--database", database]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return list(reversed(rows))  # oldest first


def test_each_edit_writes_one_row_naming_who(
    config: Path,
    database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USER", "ops-olga")
    common = ["--config", str(config), "--database", database]
    assert main(["sources", "pause", "second", *common]) == 0
    assert main(["sources", "resume", "second", "--by", "mia", *common]) == 0
    opml = tmp_path / "mine.opml"
    opml.write_text(OPML, encoding="utf-8")
    assert main(["sources", "import-opml", str(opml), "--category", "news", *common]) == 0
    assert main(["sources", "remove", "first", *common]) == 0
    rows = _audit(capsys, database)
    assert [(r["editor"], r["kind"], r["action"], r["target"]) for r in rows] == [
        ("ops-olga", "source", "pause", "second"),
        ("mia", "source", "resume", "second"),
        ("ops-olga", "source", "import", "1 sources"),
        ("ops-olga", "source", "remove", "first"),
    ]
    assert rows[0]["detail"] == {"enabled": {"before": True, "after": False}}
    assert rows[2]["detail"] == {"sources": ["third"], "categories": []}
    assert rows[3]["detail"] == {"url": "https://first.example/feed.xml", "categories": ["news"]}
    assert [s.id for s in load_catalog(config).sources] == ["second", "third"]


def test_refused_edit_writes_no_row(
    config: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--config", str(config), "--database", database]
    assert main(["sources", "remove", "first", *common]) == 0
    before = (config / "sources.toml").read_bytes()
    # The last source of a category: the config editor refuses inside the audited edit.
    assert main(["sources", "remove", "second", *common]) == 3
    assert main(["sources", "pause", "nope", *common]) == 3
    assert (config / "sources.toml").read_bytes() == before
    assert [r["action"] for r in _audit(capsys, database)] == ["remove"]


def test_without_a_database_the_file_is_edited_and_the_gap_said(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"
    assert (
        main(
            [
                "sources",
                "pause",
                "second",
                "--config",
                str(config),
                "--database",
                f"sqlite:///{missing}",
            ]
        )
        == 0
    )
    assert load_catalog(config).source("second").enabled is False
    assert "not recorded in the audit log" in capsys.readouterr().err
    assert not missing.exists()
