"""``aggregator sources pause|resume|remove|import-opml|export-opml``: the command line edits
sources.toml (and categories.toml) in place, refuses what would break them, and imports real
OPML subscription lists idempotently."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.catalog import load_catalog
from aggregator.editorial.opml import read_outlines
from tests.support.feeds import (
    CLI_TIMEOUT_SECONDS,
    aggregator,
    cli_env,
    toml_tables,
    write_config,
)
from tests.support.shared import in_ci, require_shared

SOURCES = "# Our sources. This comment must survive.\n\n" + toml_tables(
    "source",
    {
        "id": "first",
        "title": "First",
        "url": "https://first.example/feed.xml",
        "categories": ["news"],
    },
    {"id": "second", "url": "https://second.example/feed.xml", "categories": ["news"]},
)
CATEGORIES = toml_tables("category", {"id": "news", "title": "News"})
SUMMARY_RE = re.compile(
    r"added (\d+) sources(?:, (\d+) new categories)?; skipped (\d+) "
    r"duplicates and (\d+) bad URLs"
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config", SOURCES, CATEGORIES)


def summary(output: str) -> tuple[int, int, int, int]:
    match = SUMMARY_RE.search(output)
    assert match is not None, output
    added, categories, duplicates, bad = match.groups()
    return int(added), int(categories or 0), int(duplicates), int(bad)


def test_pause_resume_remove(config: Path) -> None:
    paused = aggregator("sources", "pause", "second", "--config", str(config))
    assert "source 'second' paused" in paused.stdout
    assert load_catalog(config).source("second").enabled is False
    aggregator("sources", "resume", "second", "--config", str(config))
    assert (config / "sources.toml").read_text(encoding="utf-8") == SOURCES
    removed = aggregator("sources", "remove", "first", "--config", str(config))
    assert "stored entries are kept" in removed.stdout
    text = (config / "sources.toml").read_text(encoding="utf-8")
    assert text.startswith('# Our sources. This comment must survive.\n\n[[source]]\nid = "second"')
    assert [s.id for s in load_catalog(config).sources] == ["second"]


def test_refusals_name_file_id_and_key(config: Path) -> None:
    unknown = aggregator("sources", "pause", "nope", "--config", str(config), check=False)
    assert unknown.returncode == 3
    assert f"{config / 'sources.toml'}, id='nope', key='id'" in unknown.stderr
    aggregator("sources", "remove", "first", "--config", str(config))
    last = aggregator("sources", "remove", "second", "--config", str(config), check=False)
    assert last.returncode == 3
    assert f"{config / 'categories.toml'}, id='news', key='id'" in last.stderr
    assert "no source uses this category" in last.stderr
    assert [s.id for s in load_catalog(config).sources] == ["second"]


def run_on_read_only_folder(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with ``config`` read-only: a read-only bind mount when we are root (root
    ignores file modes), the folder's mode otherwise."""
    command = [sys.executable, "-m", "aggregator", *args]
    if os.geteuid() != 0:
        config.chmod(0o555)
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=cli_env(),
                timeout=CLI_TIMEOUT_SECONDS,
                check=False,
            )
        finally:
            config.chmod(0o755)
    mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" || exit 99; exec "$@"'
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", mount, str(config), *command],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode == 99 or (result.returncode != 0 and "unshare:" in result.stderr):
        message = f"cannot make a read-only mount here: {result.stderr.strip()}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return result


@pytest.mark.skipif(
    shutil.which("unshare") is None and os.geteuid() == 0,
    reason="needs unshare(1) to make a read-only folder as root",
)
def test_a_read_only_folder_is_refused_clearly(config: Path) -> None:
    refused = run_on_read_only_folder(config, "sources", "pause", "first", "--config", str(config))
    assert refused.returncode == 3, refused.stderr
    assert "not writable" in refused.stderr
    assert str(config) in refused.stderr
    assert (config / "sources.toml").read_text(encoding="utf-8") == SOURCES


def test_import_dry_run_then_import_then_export(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "list.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        '<outline text="Again" xmlUrl="http://first.example/feed.xml/"/>'
        '<outline text="Tech"><outline text="Third" xmlUrl="https://third.example/rss"/>'
        '<outline text="Bad" xmlUrl="mailto:someone@example.com"/></outline>'
        "</body></opml>",
        encoding="utf-8",
    )
    dry = aggregator(
        "sources",
        "import-opml",
        str(opml),
        "--category",
        "news",
        "--folders-as-categories",
        "--dry-run",
        "--config",
        str(config),
    )
    assert "nothing written" in dry.stdout
    assert (config / "sources.toml").read_text(encoding="utf-8") == SOURCES
    done = aggregator(
        "sources",
        "import-opml",
        str(opml),
        "--category",
        "news",
        "--folders-as-categories",
        "--config",
        str(config),
    )
    assert summary(done.stdout) == (1, 1, 1, 1)
    assert (
        "= duplicate: Again <http://first.example/feed.xml/>: already configured as "
        "'first'" in done.stdout
    )
    assert "! bad URL: Bad <mailto:someone@example.com>" in done.stdout
    catalog = load_catalog(config)
    assert catalog.source("third").categories == ("tech",)
    assert catalog.category("tech").include == ()

    exported = aggregator("sources", "export-opml", "--config", str(config))
    out = tmp_path / "exported.opml"
    aggregator("sources", "export-opml", "--out", str(out), "--config", str(config))
    assert out.read_text(encoding="utf-8") == exported.stdout
    outlines, note = read_outlines(out)
    assert note is None
    assert sorted((o.url, o.folders) for o in outlines) == [
        ("https://first.example/feed.xml", ("News",)),
        ("https://second.example/feed.xml", ("News",)),
        ("https://third.example/rss", ("Tech",)),
    ]


def test_import_every_shared_opml_file_twice(tmp_path: Path) -> None:
    """Issue 6, acceptance 3: every OPML file of the shared collection into a fresh config;
    the second run adds nothing and skips everything."""
    folder = require_shared("data/feeds/opml-awesome-rss-feeds")
    files = sorted(str(p) for p in folder.rglob("*.opml"))
    assert len(files) > 100
    outlines = sum(len(read_outlines(Path(f))[0]) for f in files)
    config = write_config(
        tmp_path / "config",
        "# Imported sources.\n",
        '[[category]]\nid = "world"\ntitle = "World"\n',
    )
    first = aggregator(
        "sources",
        "import-opml",
        *files,
        "--folders-as-categories",
        "--category",
        "world",
        "--config",
        str(config),
    )
    added, categories, duplicates, bad = summary(first.stdout)
    assert added > 500
    assert categories > 20
    assert added + duplicates + bad == outlines
    catalog = load_catalog(config)
    assert len(catalog.sources) == added
    assert len(catalog.categories) == categories + 1
    second = aggregator(
        "sources",
        "import-opml",
        *files,
        "--folders-as-categories",
        "--category",
        "world",
        "--config",
        str(config),
    )
    assert summary(second.stdout) == (0, 0, added + duplicates, bad)
    checked = aggregator("check", "--config", str(config))
    assert f"OK, {added} sources" in checked.stdout
