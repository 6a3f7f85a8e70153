"""How the store's CPU per feed grows with what is stored: a first poll's saves, slice by slice.

    .venv/bin/python bench/store_growth.py --feeds 3000 [--slices 10] [--batch 50] [--cache-mb 0]
        [--index-batch 5000] [--drop-index NAME ...]

Prepares the poll benchmark's first N synthetic feeds (parse, normalize, classify with its two
categories; not timed), then saves them into a fresh SQLite store in ``--slices`` slices, and
prints for each slice the CPU milliseconds per feed (``time.process_time``) of the saves
(``Store.save_polls``, ``--batch`` feeds per transaction; 1 is one transaction per feed) and of
indexing entries for search (``Store.index_pending``) apart. The saves index what they wrote
whenever ``--index-batch`` entries wait (the store's ``INDEX_BATCH`` by default, as in a poll),
and the last slice indexes the rest, as a poll does at its end. ``--cache-mb`` sets
SQLite's page cache of every connection (0: SQLite's default, 2 MB). ``--drop-index`` drops an
index of the migrated store before the first save, to price what writing it costs per feed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import sqlalchemy as sa
from benchcategories import CATEGORIES
from parse_bench import NOW
from synthfeeds import make_feed

from aggregator.catalog import Catalog, SourceConfig
from aggregator.editorial.classify import classify
from aggregator.polling import poller
from aggregator.polling.normalize import normalize_feed
from aggregator.polling.parse import parse_feed
from aggregator.store import PollSave, open_store, repository, upgrade
from aggregator.types import FetchResult


def prepare(count: int) -> list[PollSave]:
    by_id = {c.id: c for c in CATEGORIES}
    saves = []
    for index in range(count):
        feed = make_feed(index)
        url, source_id = f"https://feeds.example/{index}.xml", f"feed-{index:05d}"
        headers = {"content-type": feed.content_type}
        parsed = parse_feed(feed.body, url=url, headers=headers)
        entries = normalize_feed(parsed, feed_url=url, source_language=None, now=NOW)
        classified = [
            (
                e,
                tuple(
                    classify(
                        e,
                        source_categories=("world", "tech"),
                        categories=by_id,
                        source_id=source_id,
                    )
                ),
            )
            for e in entries
        ]
        saves.append(
            PollSave(
                source_id,
                FetchResult(url=url, status=200, content=b"", headers=headers, etag=f'"{index}"'),
                body_hash=None,
                feed_title=parsed.title,
                feed_link=parsed.link,
                entries=classified,
                next_check_at=NOW,
                now=NOW,
            )
        )
    return saves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=3000)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument(
        "--batch",
        type=int,
        default=poller.SAVE_BATCH,
        help="feeds per transaction (default: the poller's)",
    )
    parser.add_argument("--cache-mb", type=int, default=0)
    parser.add_argument("--index-batch", type=int, default=repository.INDEX_BATCH)
    parser.add_argument("--drop-index", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    saves = prepare(args.feeds)
    catalog = Catalog(
        sources=tuple(
            SourceConfig(id=s.source_id, url=s.fetch.url, categories=("world", "tech"))
            for s in saves
        ),
        categories=CATEGORIES,
    )
    repository.INDEX_BATCH = args.index_batch
    step = max(1, args.feeds // args.slices)
    print(
        f"{args.feeds} feeds, {args.batch} per transaction, cache "
        f"{args.cache_mb or 'default'} MB, dropped: {', '.join(args.drop_index) or 'none'}; "
        "CPU ms per feed"
    )
    print("| feeds | entries stored before | saves | search index |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        store = open_store(f"sqlite:///{workdir}/growth.db")
        if args.cache_mb:

            @sa.event.listens_for(store.engine, "connect")
            def _cache(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute(f"PRAGMA cache_size=-{args.cache_mb * 1024}")

        try:
            upgrade(store.engine)
            with store.engine.begin() as connection:
                for name in args.drop_index:
                    connection.exec_driver_sql(f'DROP INDEX "{name}"')
            store.engine.dispose()
            store.sync_sources(catalog, NOW)
            indexing = [0.0]
            index_pending = store.index_pending

            def timed_index() -> None:
                began = time.process_time()
                index_pending()
                indexing[0] += time.process_time() - began

            store.index_pending = timed_index  # type: ignore[method-assign]
            stored = 0
            for start in range(0, args.feeds, step):
                part = saves[start : start + step]
                started, indexing[0] = time.process_time(), 0.0
                for first in range(0, len(part), args.batch):
                    store.save_polls(part[first : first + args.batch])
                if start + step >= args.feeds:
                    store.index_pending()
                spent = time.process_time() - started
                print(
                    f"| {start}–{start + len(part)} | {stored:,} | "
                    f"{1000 * (spent - indexing[0]) / len(part):.2f} | "
                    f"{1000 * indexing[0] / len(part):.2f} |",
                    flush=True,
                )
                stored += sum(len(s.entries) for s in part)
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
