"""Broken storage (issue 16, items 10 and 12): with the disk full, public feeds keep serving
their last good bytes and /readyz answers 503 naming ``disk``; a SQLite file damaged in the
middle turns /readyz to 503 naming ``integrity`` while trivial queries still answer.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests

from aggregator.store import open_store
from aggregator.web.health import Readiness
from tests.support.browser import TOKEN, Workbench
from tests.support.webserver import serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_disk_full_keeps_the_last_good_feed_and_turns_readyz(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_app(bench.app) as base:
        good = requests.get(f"{base}/feeds/news.atom", timeout=10)
        assert good.status_code == 200
        assert requests.get(f"{base}/readyz", timeout=10).json()["checks"]["disk"]["ok"]

        def disk_full(*_args: Any, **_kwargs: Any) -> Any:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(bench.outputs.archives, "observe", disk_full)
        # A change makes the category re-render, which writes its archive first.
        story_id = next(iter(bench.story_ids("news").values()))
        assert (
            requests.post(
                f"{base}/api/stories/{story_id}/hide", json={}, headers=AUTH, timeout=10
            ).status_code
            == 200
        )
        served = requests.get(f"{base}/feeds/news.atom", timeout=10)
        assert served.status_code == 200
        assert served.content == good.content
        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["disk"]
        assert "No space left" in ready.json()["checks"]["disk"]["detail"]

        monkeypatch.undo()  # space freed: the next check writes and renders the change
        recovered = requests.get(f"{base}/feeds/news.atom", timeout=10)
        assert recovered.status_code == 200
        assert recovered.content != good.content
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200


def _damage_middle_page(path: Path, table: str) -> None:
    """Overwrite the first page of ``table`` (not the schema's, nor the sources') with junk."""
    with sqlite3.connect(path) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    assert 1 < root < pages
    with path.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xa5" * page_size)


def test_damaged_sqlite_file_turns_readyz(bench: Workbench, tmp_path: Path) -> None:
    copy = tmp_path / "damaged.db"
    bench.store.engine.dispose()
    shutil.copyfile(tmp_path / "store.db", copy)
    _damage_middle_page(copy, "entries")
    damaged = open_store(f"sqlite:///{copy}")
    try:
        damaged.ping()  # a trivial query still answers: SELECT 1 cannot see the damage
        report = Readiness(damaged).check()
        assert not report.ready
        assert report.as_json()["failed"] == ["integrity"]
        assert report.checks["integrity"].detail.startswith("the database file is damaged")
    finally:
        damaged.close()
    sound = Readiness(bench.store).check()
    assert sound.ready
    assert sound.checks["integrity"].ok
