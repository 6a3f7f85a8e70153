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
CORPORA = ("fastfeedparser-realworld", "rss-parser-inputs", "miniflux-testdata",
           "node-feedparser-feeds", "feed-rs-fixtures")
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
    cpu, _ = _cpu(lambda: feedparser.parse(io.BytesIO(body), sanitize_html=False,
                                           resolve_relative_uris=False), repeat)
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
    cpu, entries = _cpu(lambda: normalize_feed(parsed, feed_url=BASE_URL, source_language=None,
                                               now=NOW), repeat)
    totals.cpu["normalize"] += cpu
    totals.cpu["ours"] += cpu
    totals.entries += len(entries)


def corpus_files(name: str) -> list[Path]:
    return sorted(p for p in (DATA / name).rglob("*")
                  if p.is_file() and p.suffix.lower() not in SKIP_SUFFIXES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=100,
                        help="how many synthetic feeds (poll benchmark's) to add as a row")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

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

    print("| corpus | docs | KB/doc | entries/doc | refused | " +
          " | ".join(f"{m} ms/doc" for m in METHODS) + " | ours/fp-default |")
    print("|" + "---|" * (6 + len(METHODS)))
    for name, t in rows.items():
        per = {m: 1000 * t.cpu[m] / max(1, t.files) for m in METHODS}
        print(f"| {name} | {t.files} | {t.bytes / 1024 / max(1, t.files):.1f} | "
              f"{t.entries / max(1, t.files):.1f} | {t.refused} | " +
              " | ".join(f"{per[m]:.2f}" for m in METHODS) +
              f" | {per['ours'] / per['fp-default']:.2f}× |")
    if args.out:
        args.out.write_text(json.dumps(
            {name: {"files": t.files, "bytes": t.bytes, "entries": t.entries,
                    "refused": t.refused, "cpu_s": t.cpu} for name, t in rows.items()},
            indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
