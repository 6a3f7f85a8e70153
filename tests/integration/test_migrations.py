"""Upgrades from every earlier schema revision to head, with data in the database, on SQLite and
PostgreSQL; and the service refusing a database newer than itself (or older, unmigrated).

The rows are written with plain SQL in the shape each revision had, as an older aggregator would
have left them; after the upgrade the data must be intact and the current code must read,
write, cluster and prune on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.clustering import ClusteringStage
from aggregator.runtime.retention import prune
from aggregator.store import Store, current_revision, head_revision, open_store, upgrade
from aggregator.store.migrate import MIGRATIONS_DIR
from tests.support.builders import NOW, entry, fetched, match
from tests.support.feeds import aggregator, cli_env, write_config

EARLIER = sorted(
    path.name.split("_", 1)[0]
    for path in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
)[:-1]
SEEN = NOW - timedelta(days=2)


@pytest.fixture
def empty(database_url: str) -> Iterator[Store]:
    store = open_store(database_url)
    yield store
    store.close()


def _stamp(store: Store, moment: datetime) -> str:
    """A timestamp as that dialect's column stores it, for plain SQL."""
    if store.engine.dialect.name == "sqlite":
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return moment.isoformat()


def _write_rows(store: Store, revision: str) -> None:
    t = _stamp(store, SEEN)
    statements: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO sources (id, url, site_url, title, feed_title, language, categories, "
            "state, interval_seconds, etag, last_modified, body_hash, next_check_at, "
            "last_checked_at, last_success_at, last_status, last_duration_ms, last_bytes, "
            "error_count, last_error, last_error_kind, lease_owner, leased_until, created_at) "
            "VALUES (:id, :url, NULL, :title, 'Wire feed', 'en', '[\"news\"]', 'active', 1800, "
            ":etag, NULL, 'abc', :t, :t, :t, 200, 12, 3456, :errors, :error, :kind, NULL, NULL, "
            ":t)",
            {
                "id": "wire",
                "url": "https://wire.example/feed.xml",
                "title": "Wire",
                "etag": '"e1"',
                "errors": 0,
                "error": None,
                "kind": None,
                "t": t,
            },
        ),
        (
            "INSERT INTO sources (id, url, site_url, title, feed_title, language, categories, "
            "state, interval_seconds, etag, last_modified, body_hash, next_check_at, "
            "last_checked_at, last_success_at, last_status, last_duration_ms, last_bytes, "
            "error_count, last_error, last_error_kind, lease_owner, leased_until, created_at) "
            "VALUES (:id, :url, NULL, :title, NULL, 'fr', '[\"news\"]', 'active', 3600, "
            ":etag, NULL, NULL, :t, :t, NULL, 500, 40, 0, :errors, :error, :kind, NULL, NULL, :t)",
            {
                "id": "paper",
                "url": "https://paper.example/rss",
                "title": "Paper",
                "etag": None,
                "errors": 2,
                "error": "HTTP 500 Internal Server Error",
                "kind": "http",
                "t": t,
            },
        ),
    ]
    for story_id, uid, title, merged in (
        (1, "u1", "AI law passes", None),
        (2, "u2", "Ferry aground", None),
        (3, "u3", "AI law (merged)", 1),
    ):
        statements.append(
            (
                "INSERT INTO stories (id, uid, title, first_seen_at, published_at, updated_at, "
                "entry_count, merged_into_id) VALUES (:id, :uid, :title, :t, :t, :t, :n, :m)",
                {
                    "id": story_id,
                    "uid": uid,
                    "title": title,
                    "t": t,
                    "m": merged,
                    "n": {1: 2, 2: 1, 3: 0}[story_id],
                },
            )
        )
    for entry_id, source_id, key, story, signal in (
        (1, "wire", "g1", 1, "new"),
        (2, "paper", "g2", 1, "url"),
        (3, "wire", "g3", 2, "new"),
    ):
        statements.append(
            (
                "INSERT INTO entries (id, source_id, identity_key, guid, url, link, title, "
                "summary_html, content_html, text, language, author, tags, enclosures, "
                "content_hash, published_at, updated_at, first_seen_at, fetched_at, story_id, "
                "story_signal, story_score, story_matched_entry_id) VALUES (:id, :source, :key, "
                ":guid, :url, :url, :title, '<p>Body</p>', '', 'Body', 'en', 'Ann', '[\"ai\"]', "
                '\'[{"url": "https://x.example/a.mp3", "type": "audio/mpeg", '
                '"length": 12}]\', :hash, :t, :t, :t, :t, :story, :signal, :score, :matched)',
                {
                    "id": entry_id,
                    "source": source_id,
                    "key": f"guid:{key}",
                    "guid": key,
                    "url": f"https://news.example/{story}",
                    "title": f"Entry {key}",
                    "hash": f"h{entry_id}",
                    "t": t,
                    "story": story,
                    "signal": signal,
                    "score": 1.0 if signal == "url" else None,
                    "matched": 1 if signal == "url" else None,
                },
            )
        )
        statements.append(
            (
                "INSERT INTO entry_categories (entry_id, category_id, score, reason) "
                "VALUES (:id, 'news', 1.0, 'all entries of source')",
                {"id": entry_id},
            )
        )
    if revision >= "0002":
        # From 0002 on, the aggregator kept the editors' URL beside the one it fetches.
        statements.append(("UPDATE sources SET configured_url = url", {}))
    if revision >= "0009":
        # From 0009 on, a published story is a settled one (the stage settled it).
        statements.append(("UPDATE stories SET settled_at = first_seen_at", {}))
    if revision >= "0003":
        statements.append(
            (
                "INSERT INTO story_overrides (id, kind, entry_id, other_entry_id, story_id, "
                "other_story_id, note, created_by, created_at, undone_at, undone_by) VALUES "
                "(1, 'cannot_link', 1, 3, NULL, NULL, 'different events', 'ed', :t, NULL, NULL)",
                {"t": t},
            )
        )
        statements.append(("UPDATE entries SET origin_story_id = story_id", {}))
        statements.append(
            ("UPDATE entries SET clustered_at = :t, story_decision = 'kept' WHERE id = 3", {"t": t})
        )
    if revision >= "0004":
        statements.append(
            (
                "INSERT INTO story_overrides (id, kind, story_id, category, created_by, "
                "created_at) VALUES (2, 'hide', 2, 'news', 'ed', :t)",
                {"t": t},
            )
        )
    with store.engine.begin() as connection:
        for statement, params in statements:
            connection.execute(sa.text(statement), params)
        if store.engine.dialect.name == "postgresql":
            # Rows written with their ids: the sequences must move past them, as they had.
            tables = ("stories", "entries") + (("story_overrides",) if revision >= "0003" else ())
            for table in tables:
                connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))"
                    )
                )


def _rows(store: Store, query: str) -> list[Any]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(query))]


@pytest.mark.parametrize("start", EARLIER)
def test_upgrade_to_head_keeps_the_data_and_the_code_works_on_it(empty: Store, start: str) -> None:
    upgrade(empty.engine, start)
    assert current_revision(empty.engine) == start
    _write_rows(empty, start)
    upgrade(empty.engine)
    store = empty
    assert current_revision(store.engine) == head_revision()

    sources = {s.id: s for s in store.sources()}
    assert sources["wire"].etag == '"e1"'
    assert sources["wire"].configured_url == "https://wire.example/feed.xml"
    assert sources["paper"].last_error == "HTTP 500 Internal Server Error"
    assert sources["paper"].error_count == 2
    assert sources["wire"].last_success_at == SEEN
    assert _rows(store, "SELECT id, story_id, origin_story_id FROM entries ORDER BY id") == [
        (1, 1, 1),
        (2, 1, 1),
        (3, 2, 2),
    ]
    assert _rows(store, "SELECT count(*) FROM entry_categories") == [(3,)]
    hidden = start >= "0004"
    shown = {s.uid: len(s.entries) for s in store.category_stories("news", 10)}
    assert shown == ({"u1": 2} if hidden else {"u1": 2, "u2": 1})
    [story] = [s for s in store.iter_stories() if s.uid == "u1"]
    assert {e.source_id for e in story.entries} == {"wire", "paper"}
    assert story.entries[0].summary_html == "<p>Body</p>"

    # Rows from before 0008 do not say where their date came from.
    assert _rows(store, "SELECT count(*) FROM entries WHERE date_source IS NOT NULL") == [(0,)]
    # New writes get fresh ids, join the stories by URL, cluster and prune as today's do. The
    # wire feed no longer lists g1 and lists its text under a new guid, g4: the same item under
    # a rotated id (issue 16), so g1's row takes the new guid and stays in its story; g5 is new.
    outcome = store.save_poll(
        "wire",
        fetched(),
        body_hash="def",
        feed_title="Wire",
        feed_link=None,
        entries=[
            (
                entry(
                    "g4",
                    url="https://news.example/1",
                    link="https://news.example/1",
                    content_hash="h1",
                ),
                [match("news")],
            ),
            (entry("g5", url="https://news.example/5"), [match("news")]),
        ],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    assert (outcome.new_entries, outcome.updated_entries) == (1, 0)
    assert _rows(store, "SELECT id FROM entries WHERE guid = 'g4'") == [(1,)]
    assert _rows(store, "SELECT date_source FROM entries WHERE guid = 'g5'") == [("feed",)]
    summary = ClusteringStage(store, semantic=False).run()
    pending_before = 1 + (3 if start < "0003" else 2)  # entry 3 was clustered from 0003 on
    assert summary.entries == pending_before
    assert _rows(store, "SELECT story_id FROM entries WHERE guid = 'g4'") == [(1,)]
    assert len(store.overrides()) == (0 if start < "0003" else 1 if start < "0004" else 2)
    assert prune(store, days=1, now=NOW, dry_run=True).entries == 3


@pytest.mark.parametrize("command", ["run", "poll"])
def test_the_service_refuses_a_database_newer_than_itself(
    database_url: str, tmp_path: Path, command: str
) -> None:
    store = open_store(database_url)
    try:
        upgrade(store.engine)
        with store.engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        store.close()
    config = write_config(tmp_path / "config", "", "")
    result = aggregator(
        command,
        "--config",
        str(config),
        "--database",
        database_url,
        env=cli_env(AGGREGATOR_PORT="0"),
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "newer than this aggregator" in result.stderr
    assert "action=serve" not in result.stderr


def test_run_asks_for_an_upgrade_on_an_older_database(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'old.db'}"
    store = open_store(database)
    try:
        upgrade(store.engine, EARLIER[0])
        _write_rows(store, EARLIER[0])
    finally:
        store.close()
    config = write_config(tmp_path / "config", "", "")
    options = ["--config", str(config), "--database", database]
    refused = aggregator("run", *options, env=cli_env(AGGREGATOR_PORT="0"), check=False)
    assert refused.returncode == 1
    assert "aggregator db upgrade" in refused.stderr
    upgraded = aggregator("db", "upgrade", *options)
    assert f"{EARLIER[0]} -> {head_revision()}" in upgraded.stdout
