"""Main-text extraction on real article pages (issue 17): trafilatura against readability-lxml.

    git clone https://github.com/adbar/trafilatura /tmp/trafilatura   # its tests/ folder
    .venv/bin/python bench/fulltext_extract.py /tmp/trafilatura/tests

The pages are the evaluation set of trafilatura's own repository: real article pages saved
from news sites, blogs and public bodies in many languages (``tests/eval``, ``tests/cache``),
each annotated in ``tests/evaldata.json`` with passages of the article ("with") and of the
page's furniture ("without": menus, footers, share buttons). For each library and page, the
page's HTML goes through the extractor as ``polling/fulltext/extract.py`` calls it (HTML out),
the output becomes plain text, and each passage counts as found or not. Reported: pages where
the extractor returned something, precision and recall of the passages, F1, and the time per
page (median, 95th percentile, total) in this process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lxml.html
import trafilatura
from readability import Document

Extractor = Callable[[str, str], str | None]


def with_trafilatura(page: str, url: str) -> str | None:
    return trafilatura.extract(
        page,
        url=url,
        output_format="html",
        include_comments=False,
        include_tables=True,
        include_links=True,
        include_images=True,
    )


def with_readability(page: str, url: str) -> str | None:
    return str(Document(page, url=url).summary(html_partial=True))


def plain(fragment: str | None) -> str:
    if not fragment or not fragment.strip():
        return ""
    try:
        text = lxml.html.fromstring(fragment).text_content()
    except Exception:  # an extractor's output we cannot even parse counts as nothing
        return ""
    return re.sub(r"\s+", " ", text).strip()


def score(text: str, wanted: list[str], unwanted: list[str]) -> tuple[int, int, int, int]:
    """(true positives, false negatives, false positives, true negatives) of the passages."""
    found = [re.sub(r"\s+", " ", w).strip() in text for w in wanted]
    leaked = [re.sub(r"\s+", " ", w).strip() in text for w in unwanted]
    return sum(found), len(found) - sum(found), sum(leaked), len(leaked) - sum(leaked)


@dataclass
class Tally:
    """One library's counts over the pages: passages found, missed and leaked, and CPU time."""

    found: int = 0
    missed: int = 0
    leaked: int = 0
    extracted: int = 0
    times: list[float] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", type=Path, help="trafilatura's tests/ folder")
    parser.add_argument("--limit", type=int, default=0, help="first N pages only")
    args = parser.parse_args()
    annotations = json.loads((args.tests / "evaldata.json").read_text(encoding="utf-8"))
    pages: list[tuple[str, str, list[str], list[str]]] = []
    for url, item in annotations.items():
        for folder in ("eval", "cache"):
            path = args.tests / folder / item["file"]
            if path.is_file():
                raw = path.read_bytes()
                pages.append((url, raw.decode("utf-8", "replace"), item["with"], item["without"]))
                break
    if args.limit:
        pages = pages[: args.limit]
    print(f"{len(pages)} annotated pages found of {len(annotations)}", file=sys.stderr)
    extractors: dict[str, Extractor] = {
        "trafilatura": with_trafilatura,
        "readability-lxml": with_readability,
    }
    # Pages alternate between the libraries (which goes first alternates too) and each call's
    # CPU time is counted, so load from other processes on a shared machine weighs on both
    # alike and on neither's figure much.
    tallies = {name: Tally() for name in extractors}
    for index, (url, page, wanted, unwanted) in enumerate(pages):
        order = list(extractors.items())
        if index % 2:
            order.reverse()
        for name, extract in order:
            tally = tallies[name]
            started = time.process_time()
            try:
                fragment = extract(page, url)
            except Exception:  # a crash on a page is an empty result for that page
                fragment = None
            tally.times.append(time.process_time() - started)
            text = plain(fragment)
            tally.extracted += bool(text)
            found, missed, leaked, _kept_out = score(text, wanted, unwanted)
            tally.found += found
            tally.missed += missed
            tally.leaked += leaked
    rows = []
    for name, tally in tallies.items():
        tp, fn, fp = tally.found, tally.missed, tally.leaked
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        times = sorted(tally.times)
        rows.append(
            (
                name,
                tally.extracted,
                precision,
                recall,
                f1,
                statistics.median(times) * 1000,
                times[int(len(times) * 0.95)] * 1000,
                sum(times),
            )
        )
    print(
        f"| library | pages with text (of {len(pages)}) | precision | recall | F1 | "
        "median CPU ms/page | p95 CPU ms/page | total CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, extracted, precision, recall, f1, median, p95, total in rows:
        print(
            f"| {name} | {extracted} | {precision:.3f} | {recall:.3f} | {f1:.3f} | "
            f"{median:.1f} | {p95:.1f} | {total:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
