"""What FTS5's table options cost the search index on SQLite: CPU per entry indexed and answers.

    .venv/bin/python bench/fts_options.py --feeds 1500 [--variants default,hash16m,...]

Prepares the poll benchmark's first N synthetic feeds (``store_growth.prepare``; not timed) and
takes each entry's title and text as the store keeps them. For each variant, a fresh SQLite file
(WAL, ``synchronous=NORMAL``, as the store opens it) holds them in a plain table, and an FTS5
trigram table indexes them 5,000 at a time (``repository.INDEX_BATCH``) with the statement
``search.index_pending`` runs, one transaction each. Prints the CPU milliseconds per entry
(``time.process_time``) of the statements and of the commits, the file's size, the CPU of one
search (the longest word of 300 titles, as a quoted term) and the hits summed over those
searches, which must be equal in every variant.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from store_growth import prepare

from aggregator.store import repository

# name: (FTS5 table options, commands run once on the new table)
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "default": ("tokenize='trigram'", ()),
    "external": ("content='entries', content_rowid='id', tokenize='trigram'", ()),
    "external-columnsize0": (
        "content='entries', content_rowid='id', columnsize=0, tokenize='trigram'",
        (),
    ),
    "automerge8": ("tokenize='trigram'", ("INSERT INTO s(s, rank) VALUES ('automerge', 8)",)),
    # The store's own setting (migration 0019) with fewer, larger merges on top.
    **{
        f"hash8m-automerge{level}": (
            "tokenize='trigram'",
            (
                f"INSERT INTO s(s, rank) VALUES ('hashsize', {8 * 1024 * 1024})",
                f"INSERT INTO s(s, rank) VALUES ('automerge', {level})",
            ),
        )
        for level in (8, 16)
    },
    **{
        f"hash{mib}m": (
            "tokenize='trigram'",
            (f"INSERT INTO s(s, rank) VALUES ('hashsize', {mib * 1024 * 1024})",),
        )
        for mib in (4, 8, 16, 32)
    },
}


def measure(name: str, rows: list[tuple[str, str]], words: list[str], path: Path) -> str:
    options, commands = VARIANTS[name]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, title TEXT, text TEXT)")
    db.execute(f"CREATE VIRTUAL TABLE s USING fts5(title, text, {options})")
    for command in commands:
        db.execute(command)
    db.execute("BEGIN")
    db.executemany("INSERT INTO entries (title, text) VALUES (?, ?)", rows)
    db.execute("COMMIT")
    statements = commits = 0.0
    batch = repository.INDEX_BATCH
    for first in range(1, len(rows) + 1, batch):
        began = time.process_time()
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO s (rowid, title, text) SELECT id, title, text FROM entries "
            "WHERE id >= ? AND id < ?",
            (first, first + batch),
        )
        written = time.process_time()
        db.execute("COMMIT")
        statements += written - began
        commits += time.process_time() - written
    began = time.process_time()
    hits = sum(
        db.execute("SELECT count(*) FROM s WHERE s MATCH ?", (w,)).fetchone()[0] for w in words
    )
    searched = (time.process_time() - began) / len(words)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = path.stat().st_size
    return (
        f"| {name} | {1000 * statements / len(rows):.3f} | {1000 * commits / len(rows):.3f} | "
        f"{size / 1e6:.0f} | {1000 * searched:.2f} | {hits:,} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1500)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    rows = [(e.title[:1000], e.text) for save in prepare(args.feeds) for e, _ in save.entries]
    sample = random.Random(1).sample(rows, min(300, len(rows)))
    words = ['"' + w.replace('"', '""') + '"' for w in (max(t.split(), key=len) for t, _ in sample)]
    print(f"{len(rows):,} entries, SQLite {sqlite3.sqlite_version}; CPU ms per entry")
    print("| variant | index statements | commits | file MB | one search, ms | hits |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for position, name in enumerate(names):
            path = Path(workdir) / f"{position}-{name}.db"
            print(measure(name, rows, words, path), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
