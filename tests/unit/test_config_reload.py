"""``aggregator.editorial.reload.ConfigReloader``: changed files are applied, a broken one is
refused
(logged once, with file and key) and the running catalog kept, a fixed one is picked up."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from aggregator.catalog import Catalog
from aggregator.editorial.reload import ConfigReloader
from aggregator.errors import ConfigError
from tests.support.feeds import write_config

SOURCES = '[[source]]\nid = "a"\nurl = "https://a.example/feed"\ncategories = ["news"]\n'
CATEGORIES = '[[category]]\nid = "news"\ntitle = "News"\n'


def replace(path: Path, text: str) -> None:
    """Save as editors and our own edits do: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config", SOURCES, CATEGORIES)


def test_changes_are_applied_and_broken_files_refused_once(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    applied: list[Catalog] = []
    reloader = ConfigReloader(config, applied.append, interval=0)
    assert reloader.check() is False  # nothing changed since it started

    replace(config / "categories.toml", CATEGORIES.replace('"News"', '"World news"'))
    assert reloader.check() is True
    assert [c.title for c in applied[-1].categories] == ["World news"]

    caplog.set_level(logging.INFO, logger="aggregator.editorial.reload")
    replace(config / "categories.toml", CATEGORIES + "include = ['/(unclosed/']\n")
    assert reloader.check() is False
    assert reloader.check() is False
    refused = [r.getMessage() for r in caplog.records if "outcome=refused" in r.getMessage()]
    assert len(refused) == 1
    assert f"file={config / 'categories.toml'} item=news key=include problems=1" in refused[0]
    assert len(applied) == 1

    replace(config / "categories.toml", CATEGORIES.replace('"News"', '"News again"'))
    assert reloader.check() is True
    assert [c.title for c in applied[-1].categories] == ["News again"]


def test_reload_now_applies_or_raises(config: Path) -> None:
    applied: list[Catalog] = []
    reloader = ConfigReloader(config, applied.append, interval=0)
    assert [s.id for s in reloader.reload_now().sources] == ["a"]
    assert len(applied) == 1
    replace(config / "sources.toml", SOURCES.replace('"news"', '"nope"'))
    with pytest.raises(ConfigError, match="category 'nope' is not defined"):
        reloader.reload_now()
    assert len(applied) == 1
