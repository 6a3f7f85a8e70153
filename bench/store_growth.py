"""How the store's CPU per feed grows with what is stored: a first poll's saves, slice by slice.

    .venv/bin/python bench/store_growth.py --feeds 3000 [--slices 10] [--batch 50] [--cache-mb 0]
        [--pragma NAME=VALUE ...]
        [--index-batch 5000] [--drop-index NAME ...] [--statements]
        [--prepared FILE]

Prepares the poll benchmark's first N synthetic feeds (parse, normalize, classify with its two
categories; not timed), then saves them into a fresh SQLite store in ``--slices`` slices, and
prints for each slice the CPU milliseconds per feed (``time.process_time``) of the saves
(``Store.save_polls``, ``--batch`` feeds per transaction; 1 is one transaction per feed) and of
indexing entries for search (``Store.index_pending``) apart. The saves index what they wrote
whenever ``--index-batch`` entries wait (the store's ``INDEX_BATCH`` by default, as in a poll),
and the last slice indexes the rest, as a poll does at its end. ``--cache-mb`` sets SQLite's
page cache of every connection (0: SQLite's default, 2 MB), ``--pragma`` any other setting.
``--drop-index`` drops an index of the migrated store before the first save, to price what
writing it costs per feed. ``--prepared`` keeps the prepared feeds in a file for the next run
(preparing 10,000 takes minutes). ``--statements`` adds, per slice, the CPU milliseconds per
feed of each kind of statement (its first words; the commits apart), the read and write calls
per feed and the WAL file's size, to see which one grows with the store.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import tempfile
import time
from collections import Counter, defaultdict
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


def _io() -> Counter[str]:
    """This process's read and write calls and bytes so far (Linux), SQLite's page traffic
    counted without the noise a shared machine adds to CPU time."""
    try:
        with open("/proc/self/io") as handle:
            return Counter({k: int(v) for k, v in (line.split(": ") for line in handle)})
    except OSError:
        return Counter()


def _label(statement: str) -> str:
    """A statement's kind: its verb and what follows its table, without the column lists."""
    text = " ".join(statement.split())
    verb = text.split(" ", 1)[0].upper()
    tail = re.split(r"\b(?:FROM|INTO|UPDATE)\b", text, maxsplit=1)
    return f"{verb} {tail[-1].strip()[:60]}"


def _time_statements(store: Any, spent: defaultdict[str, float]) -> None:
    """Add each statement's CPU seconds to ``spent`` under its label, the commits under "COMMIT"."""

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def _before(connection: Any, *_args: Any) -> None:
        connection.info["began"] = time.process_time()

    @sa.event.listens_for(store.engine, "after_cursor_execute")
    def _after(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        spent[_label(statement)] += time.process_time() - connection.info["began"]

    dialect = store.engine.dialect
    commit = dialect.do_commit

    def timed_commit(dbapi_connection: Any) -> None:
        began = time.process_time()
        commit(dbapi_connection)
        spent["COMMIT"] += time.process_time() - began

    dialect.do_commit = timed_commit


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
    parser.add_argument(
        "--pragma",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an SQLite PRAGMA set on every connection, e.g. wal_autocheckpoint=4000",
    )
    parser.add_argument("--index-batch", type=int, default=repository.INDEX_BATCH)
    parser.add_argument("--drop-index", action="append", default=[], metavar="NAME")
    parser.add_argument("--statements", action="store_true")
    parser.add_argument(
        "--prepared",
        metavar="FILE",
        help="keep the prepared feeds in FILE (a pickle) and reuse them",
    )
    args = parser.parse_args()
    if args.prepared and os.path.exists(args.prepared):
        with open(args.prepared, "rb") as source:
            saves = pickle.load(source)[: args.feeds]
    else:
        saves = prepare(args.feeds)
        if args.prepared:
            with open(args.prepared, "wb") as sink:
                pickle.dump(saves, sink, protocol=pickle.HIGHEST_PROTOCOL)
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
        f"{args.cache_mb or 'default'} MB, pragmas: {', '.join(args.pragma) or 'none'}, "
        f"dropped: {', '.join(args.drop_index) or 'none'}; "
        "CPU ms per feed"
    )
    print("| feeds | entries stored before | saves | search index |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        store = open_store(f"sqlite:///{workdir}/growth.db")
        pragmas = [
            *args.pragma,
            *([f"cache_size=-{args.cache_mb * 1024}"] if args.cache_mb else []),
        ]
        if pragmas:

            @sa.event.listens_for(store.engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                for pragma in pragmas:
                    dbapi_connection.execute(f"PRAGMA {pragma}")

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
            statements: defaultdict[str, float] = defaultdict(float)
            if args.statements:
                _time_statements(store, statements)
            stored = 0
            for start in range(0, args.feeds, step):
                part = saves[start : start + step]
                statements.clear()
                io_before = _io()
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
                if args.statements:
                    io = _io() - io_before
                    wal = os.path.getsize(f"{workdir}/growth.db-wal")
                    print(
                        f"    per feed: {io['syscr'] / len(part):.0f} reads "
                        f"({io['rchar'] / len(part) / 1024:.0f} KiB), "
                        f"{io['syscw'] / len(part):.0f} writes "
                        f"({io['wchar'] / len(part) / 1024:.0f} KiB); "
                        f"WAL file {wal / 2**20:.1f} MiB; statements, CPU ms per feed:"
                    )
                    for label, seconds in sorted(statements.items(), key=lambda i: -i[1])[:14]:
                        print(f"    {1000 * seconds / len(part):7.3f}  {label}")
                stored += sum(len(s.entries) for s in part)
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
