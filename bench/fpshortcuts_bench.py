"""What each of parse.py's feedparser shortcuts is worth: CPU of ``parse.run_feedparser`` with
all of them, with each one switched off in turn (feedparser's own object put back), and with
all of them off, in one process, the configurations interleaved round by round.

    python bench/fpshortcuts_bench.py synthetic|corpus [--rounds 3] [--feeds 300]

``synthetic`` is the poll benchmark's first N feeds, ``corpus`` every document under
``../shared/data/feeds/``. Prints a table of CPU ms per document (median, then each round).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import feedparser.api
import feedparser.mixin
from feedparser.util import FeedParserDict
from synthfeeds import make_feed

from aggregator.polling import parse
from aggregator.safety.xml import defuse_entities

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"
NOT_DOCUMENTS = frozenset({".md", ".tsv"})
# Configuration name -> the shortcuts switched off.
CONFIGURATIONS: dict[str, frozenset[str]] = {
    "all on": frozenset(),
    "FeedParserDict methods off": frozenset({"dict"}),
    "deep copy off": frozenset({"copy"}),
    "cp1252 table off": frozenset({"table"}),
    "buffered reader off (standard reader)": frozenset({"buffer"}),
    "feedparser's parser list back (drv_libxml2 import tried)": frozenset({"parsers"}),
    "all off (plain feedparser)": frozenset({"dict", "copy", "table", "parsers"}),
}


def installed() -> dict[str, Any]:
    return {
        "dict": {name: FeedParserDict.__dict__[name] for name in parse._fp_dict_methods},
        "copy": feedparser.mixin.copy,
        "table": feedparser.mixin._cp1252,
        "parsers": list(feedparser.api.PREFERRED_XML_PARSERS),
    }


def configure(shortcuts: dict[str, Any], off: frozenset[str]) -> None:
    methods = parse._fp_dict_methods if "dict" in off else shortcuts["dict"]
    for name, method in methods.items():
        setattr(FeedParserDict, name, method)
    feedparser.mixin.copy = parse._fp_copy if "copy" in off else shortcuts["copy"]
    feedparser.mixin._cp1252 = parse._fp_cp1252 if "table" in off else shortcuts["table"]
    if "parsers" in off:
        parsers = list(parse._fp_xml_parsers)
    elif "buffer" in off:
        parsers = []  # xml.sax's default: the standard expat reader
    else:
        parsers = shortcuts["parsers"]
    feedparser.api.PREFERRED_XML_PARSERS[:] = parsers


def documents(which: str, feeds: int) -> list[tuple[bytes, dict[str, str]]]:
    if which == "synthetic":
        made = [make_feed(index) for index in range(feeds)]
        return [(defuse_entities(f.body), {"content-type": f.content_type}) for f in made]
    paths = sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix not in NOT_DOCUMENTS)
    return [(defuse_entities(path.read_bytes()), {}) for path in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=("synthetic", "corpus"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--feeds", type=int, default=300, help="synthetic feeds")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    docs = documents(args.which, args.feeds)
    shortcuts = installed()
    times: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(args.rounds):
        for name, off in CONFIGURATIONS.items():
            configure(shortcuts, off)
            started = time.process_time()
            for body, headers in docs:
                with contextlib.suppress(Exception):  # timed, not judged
                    parse.run_feedparser(body, headers)
            times[name].append(time.process_time() - started)
    configure(shortcuts, frozenset())
    base = statistics.median(times["all on"])
    print(
        f"{args.which}: {len(docs)} documents, CPU ms per document, "
        f"median of {args.rounds} interleaved rounds"
    )
    print("| configuration | ms/doc | × all on | rounds |\n|---|---|---|---|")
    for name, measured in times.items():
        median = statistics.median(measured)
        rounds = ", ".join(f"{1000 * t / len(docs):.3f}" for t in measured)
        print(f"| {name} | {1000 * median / len(docs):.3f} | {median / base:.2f} | {rounds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
