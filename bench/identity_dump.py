"""Identity dump: what parse + normalize + classify make of every corpus document, one line
per entry, for comparing two checkouts byte for byte (issue 19: results stay identical).

    python bench/identity_dump.py OUT [--synthetic 1000]
    PYTHONPATH=/tmp/base python bench/identity_dump.py BEFORE    # a checkout exported elsewhere
    cmp BEFORE OUT

Every file under ``../shared/data/feeds/`` and the poll benchmark's first N synthetic feeds,
each parsed with a feed URL and without one, through ``parse_feed``, ``normalize_feed`` and
``classify`` with two categories (no rules; keywords, a regex and an exclude rule). A line is
the document, the URL and ``repr`` of the entry and of its category matches; refusals and
errors get a line of their own.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from benchcategories import CATEGORIES as BENCH_CATEGORIES
from synthfeeds import make_feed

from aggregator.catalog import Rule
from aggregator.editorial.classify import classify
from aggregator.errors import ParseError
from aggregator.polling.normalize import normalize_feed
from aggregator.polling.parse import parse_feed

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
FEED_URLS = ("https://feeds.example.com/dir/feed.xml", "")
# The poll benchmark's categories, and a keyword that matches nearly every English entry.
WORLD, TECH = BENCH_CATEGORIES
CATEGORIES = (WORLD, replace(TECH, include=(*TECH.include, Rule("the", False))))


def documents(synthetic: int) -> list[tuple[str, bytes]]:
    files = sorted(path for path in DATA.rglob("*") if path.is_file())
    found = [(str(path.relative_to(DATA)), path.read_bytes()) for path in files]
    return found + [(f"synthetic/{index}", make_feed(index).body) for index in range(synthetic)]


def dump_lines(name: str, body: bytes) -> list[str]:
    by_id = {category.id: category for category in CATEGORIES}
    lines: list[str] = []
    for url in FEED_URLS:
        try:
            parsed = parse_feed(body, url=url, headers={})
            entries = normalize_feed(parsed, feed_url=url, source_language=None, now=NOW)
        except ParseError as exc:
            lines.append(f"{name} {url} refused {exc!r}")
            continue
        except Exception as exc:  # a crash is an outcome to compare too
            lines.append(f"{name} {url} error {exc!r}")
            continue
        for entry in entries:
            matches = classify(
                entry, source_categories=("world", "tech"), categories=by_id, source_id="s"
            )
            lines.append(f"{name} {url} {entry!r} {tuple(matches)!r}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--synthetic", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    count = 0
    docs = documents(args.synthetic)
    with args.out.open("w", encoding="utf-8", errors="surrogatepass") as out:
        for name, body in docs:
            for line in dump_lines(name, body):
                out.write(line + "\n")
                count += 1
    print(f"{len(docs)} documents, {count} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
