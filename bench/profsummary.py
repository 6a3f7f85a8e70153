"""Summarise py-spy ``--format raw`` output (collapsed stacks) by pipeline stage and by leaf.

    .venv-bench/bin/python bench/profsummary.py bench/results/profile-ours-first-n1000.txt

py-spy samples only threads that are on the CPU (no ``--idle``), so the shares are shares of
CPU time across all threads. A sample goes to the first stage rule its stack matches (rules are
tried in order), and separately to the library of its innermost frame (self time).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (label, substrings any of which puts a stack in the stage); order matters.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "fetch (requests/urllib3/http.client, worker threads)",
        (
            "aggregator/polling/fetch/",
            "Refresher._fetch",
            "fetch_group (",
            "reader/_parser/requests",
            "reader/_parser/_http",
            "_parser/http",
            "retrieve",
        ),
    ),
    ("parse: feedparser", ("feedparser/",)),
    ("parse: our parse.py (outside feedparser)", ("parse_feed (aggregator/polling/parse.py",)),
    ("normalize: sanitize (nh3 + sanitize.py)", ("aggregator/safety/sanitize.py", "nh3")),
    ("normalize: other", ("aggregator/polling/normalize.py",)),
    ("classify", ("aggregator/editorial/classify.py",)),
    ("store: SQL executed in SQLite", ("do_execute (", "do_executemany (", "do_commit (")),
    ("store: SQLAlchemy/SQLModel Python overhead", ("sqlalchemy/", "sqlmodel/")),
    ("store: our repository.py", ("aggregator/store/",)),
    ("reader: storage", ("reader/_storage",)),
    ("reader: update logic", ("reader/_update", "reader/core.py")),
    ("body hash", ("sha256", "hashlib")),
    ("thread pool / scheduling", ("concurrent/futures", "threading.py")),
    ("poll workers: pipes and pickling", ("aggregator/polling/workers.py", "multiprocessing/")),
)
# A stack under the fork server belongs to a poll worker process (py-spy --subprocesses).
WORKER_MARK = "multiprocessing.forkserver"
LIBRARIES = (
    "feedparser",
    "sgmllib",
    "sqlalchemy",
    "sqlmodel",
    "sqlite3",
    "nh3",
    "requests",
    "urllib3",
    "http/client",
    "socket",
    "ssl",
    "email",
    "xml",
    "aggregator",
    "reader",
    "concurrent",
    "threading",
    "json",
    "re/",
    "zlib",
    "gzip",
    "selectors",
)
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_FILE = re.compile(r"\(([^():]+)(?::\d+)?\)$")


def _library(frame: str) -> str:
    match = _FRAME_FILE.search(frame)
    where = match.group(1) if match else frame
    for name in LIBRARIES:
        if name in where:
            return name.rstrip("/")
    return where.rsplit("/", 1)[-1] if "/" in where else where


def summarise(path: Path, top: int = 15) -> str:
    stages: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    processes: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        stack, count = match.group("stack"), int(match.group("count"))
        total += count
        label = next(
            (name for name, needles in STAGES if any(n in stack for n in needles)), "other"
        )
        stages[label] += count
        processes["poll workers" if WORKER_MARK in stack else "main process"] += count
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf] += count
        libraries[_library(leaf)] += count
    if not total:
        return f"{path.name}: no samples\n"
    out = [
        f"{path.name}: {total} samples (all threads, on-CPU)",
        "",
        "| stage | share |",
        "|---|---|",
    ]
    out += [f"| {name} | {count / total:.1%} |" for name, count in stages.most_common()]
    out += ["", "| process | share |", "|---|---|"]
    out += [f"| {name} | {count / total:.1%} |" for name, count in processes.most_common()]
    out += ["", "| leaf library (self time) | share |", "|---|---|"]
    out += [f"| {name} | {count / total:.1%} |" for name, count in libraries.most_common(top)]
    out += ["", "| leaf function (self time) | share |", "|---|---|"]
    out += [f"| `{name}` | {count / total:.1%} |" for name, count in leaves.most_common(top)]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for file in args.files:
        print(summarise(file, args.top))


if __name__ == "__main__":
    main()
