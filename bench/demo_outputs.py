"""Publish the demo's outputs into a folder, through the command line only, for comparisons.

Serves the bundled demo feeds on a fixed loopback port, polls every source once into a fresh
SQLite file, clusters, then ``publish --out``. Two runs of the same code on the same input give
the same bytes apart from times; comparing two commits' folders shows what a change did to the
outputs (used for the house-keeping refactors, which must not change them):

    python bench/demo_outputs.py /tmp/before && git checkout NEW && \
    python bench/demo_outputs.py /tmp/after --compare /tmp/before

``--compare`` masks what differs between two runs of one commit (the times the run itself
stamps, and story ids where polling order decides them) and lists every other difference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from aggregator.demo import FEEDS_DIR, write_demo_config
from aggregator.demo.feedserver import FeedServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="written anew: config/, demo.db, out/")
    parser.add_argument("--port", type=int, default=18765, help="loopback port of the feeds")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="OTHER",
        help="then compare out/ with OTHER/out, run-dependent values masked",
    )
    parser.add_argument(
        "--order",
        choices=["config", "reversed"],
        default="config",
        help="the order of the sources in sources.toml",
    )
    args = parser.parse_args()
    shutil.rmtree(args.folder, ignore_errors=True)
    args.folder.mkdir(parents=True)
    # The sample feeds are dated November 2026: no age limit on clustering them (as the demo).
    env = dict(
        os.environ,
        AGGREGATOR_BASE_URL="http://demo.example",
        AGGREGATOR_LOG_LEVEL="WARNING",
        AGGREGATOR_CLUSTERING_MAX_AGE_HOURS="0",
    )
    with FeedServer(port=args.port) as feeds:
        feeds.serve_directory(FEEDS_DIR)
        config = write_demo_config(args.folder / "config", feeds.base_url)
        if args.order == "reversed":
            _reverse_sources(config / "sources.toml")
        common = ["--config", str(config), "--database", f"sqlite:///{args.folder}/demo.db"]
        for command in (["poll", "--all"], ["publish", "--out", str(args.folder / "out")]):
            subprocess.run(
                [sys.executable, "-m", "aggregator", *command, *common], env=env, check=True
            )
    if args.compare is None:
        return 0
    return _compare(args.folder / "out", args.compare / "out")


# Times stamped by the run (today's date in any of the outputs' formats) and story ids.
_RUN_DEPENDENT = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    r"|[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d (?:[+-]\d{4}|GMT)"
    r"|story/[0-9a-f]{20}|/stories/\d+"
)


def _masked(data: bytes, today: tuple[str, ...]) -> str:
    text = data.decode("utf-8", "replace")
    return _RUN_DEPENDENT.sub(
        lambda m: (
            "<run>" if "stor" in m.group() or any(t in m.group() for t in today) else m.group()
        ),
        text,
    )


def _compare(mine: Path, other: Path) -> int:
    now = dt.datetime.now(dt.UTC)
    today = (now.strftime("%Y-%m-%d"), now.strftime("%d %b %Y"))
    names = sorted(
        {p.relative_to(mine) for p in mine.rglob("*") if p.is_file()}
        | {p.relative_to(other) for p in other.rglob("*") if p.is_file()}
    )
    differing = [
        str(name)
        for name in names
        if not (mine / name).is_file()
        or not (other / name).is_file()
        or _masked((mine / name).read_bytes(), today) != _masked((other / name).read_bytes(), today)
    ]
    print(f"compared {len(names)} files: {len(differing)} differ")
    for name in differing:
        print(f"  {name}")
    return 1 if differing else 0


def _reverse_sources(path: Path) -> None:
    head, *blocks = path.read_text(encoding="utf-8").split("[[source]]")
    path.write_text(
        head + "".join("[[source]]" + b.rstrip("\n") + "\n\n" for b in reversed(blocks)),
        encoding="utf-8",
    )


if __name__ == "__main__":
    raise SystemExit(main())
