"""Parse benchmark: CPU milliseconds per feed, side by side, over real-world corpora.

    .venv-bench/bin/python bench/parse_bench.py [--repeat 3] [--synthetic 100]

For every document of the real-world corpora in ``../shared/data/feeds/`` (see its README) and a
sample of the poll benchmark's synthetic feeds, in one run and interleaved per document:

- ``fp-default``: ``feedparser.parse`` with its defaults (sanitize_html and
  resolve_relative_uris on), what lemon24/reader and most Python aggregators pay;
- ``fp-raw``: ``feedparser.parse`` with ``sanitize_html=False, resolve_relative_uris=False``;
- ``parse``: our ``aggregator.polling.parse.parse_feed`` (feedparser raw + our own entry
extraction);
- ``normalize``: our ``aggregator.polling.normalize.normalize_feed`` on that result (URLs, identity,
  dates, nh3 sanitizing, plain text);
- ``ours``: parse + normalize.

Times are ``time.process_time`` (CPU of this process), the minimum of ``--repeat`` runs per
document and method, summed per corpus and divided by the number of documents. Documents our
parser refuses (HTML pages, gzip bodies) are counted under "refused" and still timed.

    .venv/bin/python bench/parse_bench.py --stages 300 [--rounds 3]

instead splits a first poll's CPU per feed by stage over the poll benchmark's first N synthetic
feeds and its two categories, in this process: ``feedparser`` (as ``parse_feed`` calls it:
``parse.run_feedparser``), ``parse wrapper`` (our ``parse_feed`` minus that), ``normalize``,
``classify``, ``store`` (``save_polls`` into a fresh SQLite store, ``poller.SAVE_BATCH`` feeds
per transaction as a poll saves them, search indexing left out)
and ``search index`` (the batch that indexes those entries, ``Store.index_pending``). Each
round is a fresh store; the table shows the median of the rounds.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
from synthfeeds import make_feed

from aggregator.errors import ParseError
from aggregator.polling.normalize import normalize_feed
from aggregator.polling.parse import parse_feed

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"
CORPORA = (
    "fastfeedparser-realworld",
    "rss-parser-inputs",
    "miniflux-testdata",
    "node-feedparser-feeds",
    "feed-rs-fixtures",
)
METHODS = ("fp-default", "fp-raw", "parse", "normalize", "ours")
SKIP_SUFFIXES = frozenset({".tsv", ".md", ".txt", ".html", ".htm"})
NOW = datetime(2025, 6, 1, tzinfo=UTC)
BASE_URL = "https://feeds.example.com/feed.xml"


@dataclass
class Totals:
    files: int = 0
    bytes: int = 0
    entries: int = 0
    refused: int = 0
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(METHODS, 0.0))


def _cpu(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = fn()
        best = min(best, time.process_time() - started)
    return best, result


def measure(body: bytes, repeat: int, totals: Totals) -> None:
    totals.files += 1
    totals.bytes += len(body)
    cpu, _ = _cpu(lambda: feedparser.parse(io.BytesIO(body)), repeat)
    totals.cpu["fp-default"] += cpu
    cpu, _ = _cpu(
        lambda: feedparser.parse(
            io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False
        ),
        repeat,
    )
    totals.cpu["fp-raw"] += cpu

    def ours_parse() -> Any:
        try:
            return parse_feed(body, url=BASE_URL, headers={})
        except ParseError:
            return None

    cpu, parsed = _cpu(ours_parse, repeat)
    totals.cpu["parse"] += cpu
    totals.cpu["ours"] += cpu
    if parsed is None:
        totals.refused += 1
        return
    cpu, entries = _cpu(
        lambda: normalize_feed(parsed, feed_url=BASE_URL, source_language=None, now=NOW), repeat
    )
    totals.cpu["normalize"] += cpu
    totals.cpu["ours"] += cpu
    totals.entries += len(entries)


STAGES = ("feedparser", "parse wrapper", "normalize", "classify", "store", "search index")


def stage_round(count: int) -> dict[str, float]:
    """CPU seconds per stage for the first poll of ``count`` synthetic feeds."""
    import tempfile  # noqa: PLC0415

    from benchcategories import CATEGORIES as categories  # noqa: PLC0415

    from aggregator.catalog import Catalog, SourceConfig  # noqa: PLC0415
    from aggregator.editorial.classify import classify  # noqa: PLC0415
    from aggregator.polling import parse, poller  # noqa: PLC0415
    from aggregator.safety.xml import defuse_entities  # noqa: PLC0415
    from aggregator.store import open_store, repository, upgrade  # noqa: PLC0415
    from aggregator.types import FetchResult  # noqa: PLC0415

    by_id = {c.id: c for c in categories}
    feeds = [make_feed(i) for i in range(count)]
    urls = [f"https://feeds.example/{i}.xml" for i in range(count)]
    catalog = Catalog(
        sources=tuple(
            SourceConfig(id=f"feed-{i:05d}", url=url, categories=("world", "tech"))
            for i, url in enumerate(urls)
        ),
        categories=categories,
    )
    cpu = dict.fromkeys(STAGES, 0.0)

    # A baseline checkout (PYTHONPATH) may predate these two: then feedparser runs with the
    # options parse_feed used then, and the index is written by the store's triggers.
    def baseline_feedparser(content: bytes, headers: dict[str, str]) -> object:
        return feedparser.parse(
            io.BytesIO(content),
            sanitize_html=False,
            resolve_relative_uris=False,
            response_headers={
                **headers,
                "content-location": "shttp://document-base.invalid/_/document",
            },
        )

    run_feedparser = getattr(parse, "run_feedparser", baseline_feedparser)
    batched = hasattr(repository.Store, "index_pending")
    # Saved as the poller saves them: a batch of feeds per transaction where the store can
    # (a baseline checkout may save one feed per transaction).
    save_batch: int | None = getattr(poller, "SAVE_BATCH", None)
    pending: list[Any] = []
    repository.INDEX_BATCH = 10**9  # indexed once at the end, timed apart
    with tempfile.TemporaryDirectory() as workdir:
        store = open_store(f"sqlite:///{workdir}/stages.db")
        try:
            upgrade(store.engine)
            store.sync_sources(catalog, NOW)
            for index, feed in enumerate(feeds):
                headers = {"content-type": feed.content_type}
                source_id = f"feed-{index:05d}"
                started = time.process_time()
                run_feedparser(defuse_entities(feed.body), headers)
                cpu["feedparser"] += time.process_time() - started
                started = time.process_time()
                parsed = parse_feed(feed.body, url=urls[index], headers=headers)
                cpu["parse wrapper"] += time.process_time() - started
                started = time.process_time()
                entries = normalize_feed(
                    parsed, feed_url=urls[index], source_language=None, now=NOW
                )
                cpu["normalize"] += time.process_time() - started
                started = time.process_time()
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
                cpu["classify"] += time.process_time() - started
                fetched = FetchResult(
                    url=urls[index],
                    status=200,
                    content=feed.body,
                    headers=headers,
                    etag=f'"{index}"',
                )
                if save_batch is None:
                    started = time.process_time()
                    store.save_poll(
                        source_id,
                        fetched,
                        body_hash=None,
                        feed_title=parsed.title,
                        feed_link=parsed.link,
                        entries=classified,
                        next_check_at=NOW,
                        now=NOW,
                    )
                    cpu["store"] += time.process_time() - started
                    continue
                pending.append(
                    repository.PollSave(
                        source_id,
                        fetched,
                        body_hash=None,
                        feed_title=parsed.title,
                        feed_link=parsed.link,
                        entries=classified,
                        next_check_at=NOW,
                        now=NOW,
                    )
                )
                if len(pending) >= save_batch or index == len(feeds) - 1:
                    started = time.process_time()
                    store.save_polls(pending)
                    cpu["store"] += time.process_time() - started
                    pending.clear()
            if batched:
                started = time.process_time()
                store.index_pending()
                cpu["search index"] += time.process_time() - started
        finally:
            store.close()
    cpu["parse wrapper"] -= cpu["feedparser"]
    return cpu


def stages_table(count: int, rounds: int) -> str:
    measured = [stage_round(count) for _ in range(rounds)]
    lines = [
        f"{count} synthetic feeds, median of {rounds} rounds, CPU ms per feed",
        "",
        "| stage | ms/feed |",
        "|---|---|",
    ]
    for stage in STAGES:
        values = sorted(m[stage] for m in measured)
        lines.append(f"| {stage} | {1000 * values[len(values) // 2] / count:.2f} |")
    ours = [m["parse wrapper"] + m["normalize"] + m["classify"] for m in measured]
    lines.append(
        f"| ours (wrapper + normalize + classify) | "
        f"{1000 * sorted(ours)[len(ours) // 2] / count:.2f} |"
    )
    return "\n".join(lines)


def corpus_files(name: str) -> list[Path]:
    return sorted(
        p for p in (DATA / name).rglob("*") if p.is_file() and p.suffix.lower() not in SKIP_SUFFIXES
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--synthetic",
        type=int,
        default=100,
        help="how many synthetic feeds (poll benchmark's) to add as a row",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument(
        "--stages",
        type=int,
        default=0,
        help="split a first poll of this many synthetic feeds by stage instead",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --stages")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.stages:
        print(stages_table(args.stages, args.rounds))
        return 0

    rows: dict[str, Totals] = {}
    for name in CORPORA:
        totals = rows.setdefault(name, Totals())
        for path in corpus_files(name):
            measure(path.read_bytes(), args.repeat, totals)
        print(f"{name}: {totals.files} files", file=sys.stderr, flush=True)
    if args.synthetic:
        totals = rows.setdefault("synthetic (poll bench)", Totals())
        for index in range(args.synthetic):
            measure(make_feed(index).body, args.repeat, totals)
    everything = Totals()
    for name, totals in rows.items():
        if name.startswith("synthetic"):
            continue
        everything.files += totals.files
        everything.bytes += totals.bytes
        everything.entries += totals.entries
        everything.refused += totals.refused
        for method in METHODS:
            everything.cpu[method] += totals.cpu[method]
    rows["all real-world"] = everything

    print(
        "| corpus | docs | KB/doc | entries/doc | refused | "
        + " | ".join(f"{m} ms/doc" for m in METHODS)
        + " | ours/fp-default |"
    )
    print("|" + "---|" * (6 + len(METHODS)))
    for name, t in rows.items():
        per = {m: 1000 * t.cpu[m] / max(1, t.files) for m in METHODS}
        print(
            f"| {name} | {t.files} | {t.bytes / 1024 / max(1, t.files):.1f} | "
            f"{t.entries / max(1, t.files):.1f} | {t.refused} | "
            + " | ".join(f"{per[m]:.2f}" for m in METHODS)
            + f" | {per['ours'] / per['fp-default']:.2f}× |"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    name: {
                        "files": t.files,
                        "bytes": t.bytes,
                        "entries": t.entries,
                        "refused": t.refused,
                        "cpu_s": t.cpu,
                    }
                    for name, t in rows.items()
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
