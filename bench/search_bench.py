"""Search benchmark: the search index (migration 0013) against the same store without it, in
the same run, on SQLite (FTS5 trigram) and, when reachable, PostgreSQL (pg_trgm GIN).

    .venv/bin/python bench/search_bench.py [--entries 10000] [--queries 100] [--pg URL]

Entries are real news articles in 10 languages (en, de, es, zh, it, pl, tr, fr, ar, ru) from
../shared/data/semeval22-pairs-dev.jsonl, copied as often as needed (each copy its own entry),
written through ``Store.save_poll`` 250 at a time across 40 sources. For each engine it
measures, against a copy of the store without the index (SQLite: the triggers and FTS table
dropped; PostgreSQL: the index dropped): the time to write the entries (the index's cost), the
median time of ``Store.search`` for title words against the same query answered by a scan
(LIKE/ILIKE), and how many articles a word of their own title finds (the longest word; for
Chinese, four characters from the middle). Prints a markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.store import GrowthLimits, Store, open_store, upgrade
from aggregator.store.search import parse_query
from aggregator.types import CategoryMatch, FetchResult, NormalizedEntry

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semeval22-pairs-dev.jsonl"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SOURCES = 40
BATCH = 250
NO_SPACES = {"zh", "ja"}


def articles() -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for line in DATA.read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        for n in ("1", "2"):
            if pair.get(f"title{n}") and pair[f"id{n}"] not in seen:
                seen[pair[f"id{n}"]] = {
                    "lang": pair[f"lang{n}"],
                    "title": pair[f"title{n}"],
                    "text": pair.get(f"text{n}") or "",
                }
    return list(seen.values())


def title_word(article: dict[str, str]) -> str:
    title = article["title"]
    if article["lang"] in NO_SPACES:
        middle = max(0, len(title) // 2 - 2)
        return title[middle : middle + 4].strip()
    words = [w.strip(".,:;!?\"'«»()[]“”„") for w in title.split()]
    return max(words, key=len)


def entry(n: int, article: dict[str, str]) -> NormalizedEntry:
    text = f"{article['title']}. {article['text'][:2000]} ({n})"
    moment = NOW - timedelta(minutes=n)
    return NormalizedEntry(
        identity_key=f"guid:{n}",
        guid=str(n),
        url=f"https://news.example/{n}",
        link=f"https://news.example/{n}",
        title=article["title"][:1000],
        summary_html="",
        content_html="",
        text=text,
        language=article["lang"],
        published_at=moment,
        updated_at=moment,
        author=None,
        tags=(),
        enclosures=(),
        content_hash=hashlib.sha256(text.encode()).hexdigest()[:32],
    )


def fill(store: Store, pool: list[dict[str, str]], count: int) -> float:
    sources = tuple(
        SourceConfig(id=f"s{i}", url=f"https://feeds.example/{i}.xml", categories=("news",))
        for i in range(SOURCES)
    )
    store.sync_sources(
        Catalog(sources=sources, categories=(CategoryConfig(id="news", title="News"),)), NOW
    )
    fetch = FetchResult(
        url="https://feeds.example/x.xml",
        status=200,
        content=b"<rss/>",
        headers={},
        etag=None,
        last_modified=None,
        elapsed=0.01,
    )
    match = [CategoryMatch(category_id="news", score=1.0, reason="bench")]
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        batch = [
            (entry(n, pool[n % len(pool)]), match) for n in range(first, min(count, first + BATCH))
        ]
        store.save_poll(
            f"s{(first // BATCH) % SOURCES}",
            fetch,
            body_hash=None,
            feed_title=None,
            feed_link=None,
            entries=batch,
            next_check_at=NOW,
            now=NOW,
        )
    return time.perf_counter() - started


def scan(store: Store, terms: tuple[str, ...]) -> list[int]:
    """The same question answered without the index: every term by LIKE (ILIKE) on a scan."""
    like = "ILIKE" if store.engine.dialect.name == "postgresql" else "LIKE"
    where = " AND ".join(f"(title || ' ' || text) {like} :t{i}" for i in range(len(terms)))
    params = {f"t{i}": f"%{t}%" for i, t in enumerate(terms)}
    with store.engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    f"SELECT id FROM entries WHERE {where} ORDER BY published_at DESC, id DESC "
                    "LIMIT 20"
                ),
                params,
            ).scalars()
        )


def timed(call: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def drop_index(store: Store) -> None:
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "sqlite":
            for name in ("entry_search_update", "entry_search_delete", "entry_search_insert"):
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
            connection.exec_driver_sql("DROP TABLE entry_search")
        else:
            connection.exec_driver_sql("DROP INDEX IF EXISTS ix_entries_search_trgm")


def measure(
    engine: str, make: Any, pool: list[dict[str, str]], count: int, queries: int
) -> dict[str, Any]:
    indexed, plain = make(), make()
    drop_index(plain)
    write_indexed = fill(indexed, pool, count)
    write_plain = fill(plain, pool, count)
    sample = pool[:: max(1, len(pool) // queries)][:queries]
    search_times, scan_times = [], []
    for article in sample:
        terms = parse_query(title_word(article))
        search_times.append(timed(lambda t=terms: indexed.search(t, 20)))
        scan_times.append(timed(lambda t=terms: scan(plain, t)))
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for n, article in enumerate(pool[: min(len(pool), count)]):
        total[article["lang"]] += 1
        hits, _ = indexed.search(parse_query(title_word(article)), 500)
        if any(h.entry_id for h in hits if h.url == f"https://news.example/{n}"):
            found[article["lang"]] += 1
    indexed.close()
    plain.close()
    return {
        "engine": engine,
        "entries": count,
        "write_indexed_s": write_indexed,
        "write_plain_s": write_plain,
        "search_ms": statistics.median(search_times) * 1000,
        "scan_ms": statistics.median(scan_times) * 1000,
        "found": dict(found),
        "total": dict(total),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an admin URL to create throwaway databases on ('' to skip)",
    )
    args = parser.parse_args()
    pool = articles()
    limits = GrowthLimits(new_per_poll=0, per_source=0)
    results = []
    with tempfile.TemporaryDirectory() as folder:

        def sqlite() -> Store:
            store = open_store(f"sqlite:///{folder}/{uuid.uuid4().hex}.db", limits)
            upgrade(store.engine)
            return store

        results.append(measure("SQLite", sqlite, pool, args.entries, args.queries))
    made: list[str] = []
    if args.pg:

        def postgres() -> Store:
            name = f"searchbench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(args.pg, autocommit=True) as connection:
                connection.execute(f"CREATE DATABASE {name}")
            made.append(name)
            base = args.pg.rsplit("/", 1)[0]
            store = open_store(f"{base}/{name}", limits)
            upgrade(store.engine)
            return store

        try:
            results.append(measure("PostgreSQL", postgres, pool, args.entries, args.queries))
        finally:
            with psycopg.connect(args.pg, autocommit=True) as connection:
                for name in made:
                    connection.execute(f"DROP DATABASE IF EXISTS {name}")
    print(f"{len(pool)} articles, {args.entries} entries, {args.queries} title-word queries\n")
    print("| engine | write, index / none | search median, index / scan | found by a title word |")
    print("|---|---|---|---|")
    for r in results:
        found = sum(r["found"].values())
        total = sum(r["total"].values())
        missed = {
            k: f"{r['found'].get(k, 0)}/{v}"
            for k, v in sorted(r["total"].items())
            if r["found"].get(k, 0) < v
        }
        print(
            f"| {r['engine']} | {r['write_indexed_s']:.1f} s / {r['write_plain_s']:.1f} s "
            f"(×{r['write_indexed_s'] / r['write_plain_s']:.2f}) | "
            f"{r['search_ms']:.2f} ms / {r['scan_ms']:.2f} ms "
            f"(×{r['scan_ms'] / r['search_ms']:.0f} faster) | {found}/{total} "
            f"{missed or ''} |"
        )
    print(json.dumps(results, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
