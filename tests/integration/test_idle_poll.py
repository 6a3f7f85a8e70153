"""`aggregator poll` with nothing due answers from the SQLite file before the store is imported
(``cli.idle``, ``store.idle``): the same output and exit code as the normal path, and the
normal path whenever something is to do (issue 19, start-up)."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import aggregator.cli.context as cli_context
import aggregator.store.idle as store_idle
from aggregator.catalog import load_catalog
from aggregator.cli import ExitCode, main
from aggregator.cli import idle as cli_idle
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.settings import Settings
from aggregator.store.marks import files_mark
from tests.support.feeds import (
    CLI_TIMEOUT_SECONDS,
    TomlValue,
    cli_env,
    rss,
    toml_tables,
    write_config,
)

ITEMS = [
    {"guid": f"g{i}", "title": f"Story {i}", "link": f"https://n.example/{i}"} for i in range(3)
]
CATEGORIES = toml_tables("category", {"id": "news", "title": "News"})
# Modules an idle poll answered early must not load (the fast path's whole point).
NOT_FOR_FAST_IDLE_POLL = {
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "numpy",
    "feedparser",
    "requests",
    "nh3",
    "babel",
    "prometheus_client",
}


@dataclass
class Poll:
    code: int
    out: str
    answered_early: bool | None  # None: the check was not asked


@dataclass
class Setup:
    config: Path
    database: Path
    feed_server: FeedServer
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def sources(self, **extra: TomlValue) -> None:
        write_config(
            self.config,
            toml_tables(
                "source",
                {
                    "id": "good",
                    "url": self.feed_server.url("/good.xml"),
                    "categories": ["news"],
                    **extra,
                },
            ),
            CATEGORIES,
        )

    def sql(self, statement: str) -> None:
        with sqlite3.connect(self.database) as connection:
            connection.execute(statement)

    def poll(self, *args: str, fast: bool = True) -> Poll:
        """``aggregator poll ARGS`` in this process; ``fast=False`` keeps it on the normal
        path, as if the check had found something to do."""
        asked: list[bool] = []
        real = store_idle.nothing_to_do

        def spy(url: str, **options: Any) -> bool:
            answer = real(url, **options) and fast
            asked.append(answer)
            return answer

        with self.monkeypatch.context() as patch:
            patch.setattr(store_idle, "nothing_to_do", spy)
            code = main(["poll", *args])
        out = self.capsys.readouterr().out
        return Poll(code, out, any(asked) if asked else None)

    def compare(self, *args: str) -> Poll:
        """The fast path's poll and the normal path's, which must say the same."""
        fast, normal = self.poll(*args), self.poll(*args, fast=False)
        assert (fast.code, fast.out) == (normal.code, normal.out)
        return fast


@pytest.fixture
def setup(
    tmp_path: Path,
    feed_server: FeedServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Setup:
    """One source, polled once, clustered, next due in an hour: nothing is due."""
    feed_server.set("/good.xml", Resource(body=rss("Good", ITEMS)))
    database = tmp_path / "agg.db"
    for key in [k for k in os.environ if k.startswith("AGGREGATOR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AGGREGATOR_CLUSTERING", "exact")
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", f"sqlite:///{database}")
    bench = Setup(tmp_path / "config", database, feed_server, capsys, monkeypatch)
    bench.sources()
    first = bench.poll()
    assert first.code == ExitCode.OK, first.out
    assert first.answered_early is False  # a new database has no catalog mark yet
    bench.sql("UPDATE sources SET next_check_at = datetime('now', '+1 hour')")
    return bench


def test_nothing_due_answers_early_as_the_normal_path_does(setup: Setup) -> None:
    text = setup.compare()
    assert text.answered_early is True
    assert text.code == ExitCode.OK
    assert text.out == "no source is due (use --all to poll every active source)\n"
    summary = setup.compare("--json")
    assert summary.answered_early is True
    assert json.loads(summary.out)["sources"] == 0


def test_a_due_source_takes_the_normal_path(setup: Setup) -> None:
    setup.sql("UPDATE sources SET next_check_at = datetime('now', '-1 minute')")
    polled = setup.poll()
    assert polled.answered_early is False
    assert polled.out.startswith("polled 1 sources")
    # Polled: next due later again, so the next poll answers early.
    assert setup.poll().answered_early is True


def test_all_never_asks(setup: Setup) -> None:
    polled = setup.poll("--all")
    assert polled.answered_early is None
    assert polled.out.startswith("polled 1 sources")


def test_a_changed_catalog_is_synced_by_the_normal_path(setup: Setup) -> None:
    setup.sources(title="Renamed")
    changed = setup.poll()
    assert changed.answered_early is False
    assert changed.out.startswith("no source is due")
    with sqlite3.connect(setup.database) as connection:
        assert connection.execute("SELECT title FROM sources").fetchone() == ("Renamed",)
    assert setup.poll().answered_early is True


def test_a_pending_migration_takes_the_normal_path(setup: Setup) -> None:
    setup.sql("UPDATE alembic_version SET version_num = '0014'")
    for poll in (setup.poll(), setup.poll(fast=False)):
        assert poll.answered_early is False
        assert poll.code == ExitCode.PROBLEMS


def test_an_entry_waiting_for_clustering_takes_the_normal_path(setup: Setup) -> None:
    setup.sql("UPDATE entries SET clustered_at = NULL WHERE id = (SELECT min(id) FROM entries)")
    pending = setup.poll("--json")
    assert pending.answered_early is False
    assert json.loads(pending.out)["clustered"]["entries"] == 1
    assert setup.poll().answered_early is True


def test_webhooks_and_full_text_take_the_normal_path(setup: Setup) -> None:
    (setup.config / "webhooks.toml").write_text("")
    assert setup.poll().answered_early is None
    (setup.config / "webhooks.toml").unlink()
    setup.sql(
        "INSERT INTO webhook_subscribers (id, url, categories, languages, events, "
        "origin, active, created_at) VALUES ('hook', 'https://h.example/', '[]', '[]', "
        "'[]', 'file', 1, '2026-01-01 00:00:00')"
    )
    assert setup.poll().answered_early is False  # the sync with no file deactivates it
    assert setup.poll().answered_early is True


def test_a_full_text_source_takes_the_normal_path(setup: Setup) -> None:
    # Not polled: the full-text stage would fetch the entries' article pages. The store is
    # taken as idle, so only the catalog decides.
    setup.monkeypatch.setattr(store_idle, "nothing_to_do", lambda url, **_: True)
    settings = Settings.from_env()
    setup.sources(full_text=True)
    assert not cli_idle.nothing_to_do(settings, load_catalog(setup.config))
    setup.sources(full_text=True, enabled=False)  # paused: its pages are not checked
    assert cli_idle.nothing_to_do(settings, load_catalog(setup.config))


def test_only_a_plain_sqlite_file_at_head_is_read(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    for url in (
        "postgresql://u@127.0.0.1:1/x",
        "sqlite://",
        "sqlite:///:memory:",
        f"sqlite:///{tmp_path / 'absent.db'}",
        f"sqlite:///{tmp_path}/x.db?mode=ro",
    ):
        assert not store_idle.nothing_to_do(url, head="0015", digest="d", now=now)
    assert not (tmp_path / "absent.db").exists()
    plain = tmp_path / "plain.db"
    with sqlite3.connect(plain) as connection:  # not in WAL mode: the store never made it
        connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
    assert not store_idle.nothing_to_do(f"sqlite:///{plain}", head="0015", digest="d", now=now)


def test_an_early_answer_loads_neither_the_store_nor_the_pipeline(setup: Setup) -> None:
    probe = (
        "import json, sys\nfrom aggregator.cli import main\ncode = main(['poll'])\n"
        "print(json.dumps({'code': code, 'loaded': sorted(sys.modules)}))"
    )
    env = cli_env(
        AGGREGATOR_CLUSTERING="exact",
        AGGREGATOR_CONFIG=str(setup.config),
        AGGREGATOR_DATABASE_URL=f"sqlite:///{setup.database}",
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("no source is due")
    report = json.loads(lines[-1])
    assert report["code"] == 0
    loaded = {name.split(".")[0] for name in report["loaded"]}
    assert loaded & NOT_FOR_FAST_IDLE_POLL == set()
    assert "aggregator.store.repository" not in report["loaded"]


def test_unchanged_files_answer_before_the_catalog_is_parsed(setup: Setup) -> None:
    def parse(*_: object, **__: object) -> None:
        raise AssertionError("the catalog was parsed")

    with setup.monkeypatch.context() as patch:
        patch.setattr(cli_context, "load_catalog", parse)
        early = setup.poll()
    assert early.answered_early is True
    assert (early.code, early.out) == (ExitCode.OK, setup.poll(fast=False).out)
    # A comment changes the bytes, not the sources: the parsed catalog answers early, until
    # the normal path's sync notes the new bytes.
    with (setup.config / "sources.toml").open("a") as handle:
        handle.write("# a note\n")
    assert setup.poll().answered_early is True
    with setup.monkeypatch.context() as patch:
        patch.setattr(cli_context, "load_catalog", parse)
        with pytest.raises(AssertionError, match="parsed"):
            setup.poll()
    assert setup.poll(fast=False).out.startswith("no source is due")
    with setup.monkeypatch.context() as patch:
        patch.setattr(cli_context, "load_catalog", parse)
        assert setup.poll().answered_early is True


def test_the_files_answer_only_for_the_catalog_read_from_them(setup: Setup) -> None:
    catalog = load_catalog(setup.config)
    assert files_mark(catalog, "0016") is not None
    renamed = dataclasses.replace(
        catalog, sources=tuple(dataclasses.replace(s, title="Other") for s in catalog.sources)
    )
    assert files_mark(renamed, "0016") is None
    assert files_mark(load_catalog(setup.config), "0016") == files_mark(catalog, "0016")
    assert files_mark(load_catalog(setup.config), "0017") != files_mark(catalog, "0016")
    setup.sources(full_text=True)
    assert files_mark(load_catalog(setup.config), "0016") is None
