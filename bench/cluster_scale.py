"""Clustering at scale (issue 14): is the serialized decision step the bound when several
workers share one PostgreSQL database? Time in the model step against time holding the lock.

    python bench/cluster_scale.py [--entries 300] [--workers 1 2] [--pg postgresql://…/test]
    python bench/cluster_scale.py --window 1000 10000 100000     # the decision vs its window
    python bench/cluster_scale.py --feed-rates ../shared/data/feeds   # entries/day of feeds

For each worker count a fresh PostgreSQL database (created beside ``--pg``'s, dropped after)
gets the same batch of dev-file entries (``clusterdata``: WMT stories and SemEval articles,
six hours old, stored as polls store them), all pending. Then that many worker processes, each
with its own model on one thread, loop over ``ClusteringStage.run()`` until nothing is
pending: the one holding the stage's turn decides (its batches compute the features still
missing), the others compute features newest first and store them (``ClusteringStage.extract``).
Each worker reports the wall and CPU seconds it spent in the model step (``_compute``), and the
seconds between taking the clustering lock and committing (``Store.clustering``); the run
reports entries/s and the decision step's capacity (entries decided per second of lock held),
and the bytes each entry adds to the database (its tables with their indexes and TOAST, less
an empty database's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import clusterdata as cd
import numpy as np
import psycopg
import realfeeds_check as rf
from psycopg import sql

from aggregator.catalog import Catalog
from aggregator.clustering import ClusteringStage, Models
from aggregator.clustering.dedup import evidence
from aggregator.clustering.dedup.cluster import Clusterer
from aggregator.clustering.dedup.embed import DIM, Embedder, LanguageCentering
from aggregator.clustering.dedup.features import EntryFeatures, FeatureExtractor
from aggregator.clustering.dedup.language import LanguageDetector, LanguageGuess
from aggregator.clustering.dedup.match import Matcher
from aggregator.clustering.dedup.shingles import NUM_PERM
from aggregator.errors import ParseError
from aggregator.polling.pipeline import prepare_feed
from aggregator.store import open_store, upgrade
from aggregator.store.clustering import ClusterWriter, PendingEntry

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# Tables an entry writes to (with their indexes and TOAST), for the bytes per entry.
ENTRY_TABLES = ("entries", "entry_features", "entry_categories", "stories")
# A worker without work waits this long before asking again (the holder is still deciding).
IDLE_SECONDS = 0.05
# New entries timed per window size.
WINDOW_PROBES = 50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=300, help="entries of the batch used")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pg", default=PG_ADMIN, help="an admin URL of the server (psycopg)")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="the dev files' folder")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument(
        "--window",
        type=int,
        nargs="+",
        metavar="STORIES",
        help="only time the in-memory decision with this many stories in the "
        "window (no database, no model)",
    )
    parser.add_argument(
        "--feed-rates",
        type=Path,
        metavar="FEEDS",
        help="only measure entries per day of the real-world feeds under FEEDS",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(worker(args.child, args.start_at)), flush=True)
        return 0
    if args.window:
        for row in window_cost(args.window):
            print(row, flush=True)
        return 0
    if args.feed_rates:
        print(feed_rates(args.feed_rates))
        return 0
    if args.entries < 1 or any(n < 1 for n in args.workers):
        parser.error("--entries and --workers must be positive")
    if not (args.data / cd.WMT_FILE).is_file():
        print(f"the dev files are absent from {args.data}", file=sys.stderr)
        return 2
    polls = cd.batch_polls(cd.split_dev(args.data))[: args.entries]
    runs: list[dict[str, Any]] = []
    results = {"entries": len(polls), "load_before": os.getloadavg(), "runs": runs}
    with database(args.pg) as url:
        empty = table_bytes(args.pg, url)
    for count in args.workers:
        with database(args.pg) as url:
            fill(url, polls)
            run = measure(url, count)
            grown = table_bytes(args.pg, url)
        run["bytes_per_entry"] = {
            table: round((size - empty[table]) / len(polls)) for table, size in grown.items()
        }
        run["load_after"] = os.getloadavg()
        runs.append(run)
        report(run)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


# -- the database --------------------------------------------------------------------------


@contextmanager
def database(admin: str) -> Iterator[str]:
    """A fresh database on ``admin``'s server, migrated, dropped afterwards."""
    name = f"g14scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = admin.rpartition("/")
    url = f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    try:
        store = open_store(url)
        try:
            upgrade(store.engine)
        finally:
            store.close()
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def fill(url: str, polls: list[cd.BatchPoll]) -> None:
    store = open_store(url)
    try:
        sources = tuple(
            s
            for s in cd.batch_sources(cd.split_dev(DATA_DIR))
            if s.id in {p.source_id for p in polls}
        )
        store.sync_sources(Catalog(sources=sources, categories=(cd.CATEGORY,)), cd.NOW)
        cd.store_polls(store, polls)
    finally:
        store.close()


def table_bytes(admin: str, url: str) -> dict[str, int]:
    """Bytes of the tables an entry writes to, with their indexes and TOAST, and their sum
    (the caller subtracts an empty database's: what the entries added)."""
    name = url.rpartition("/")[2]
    base = admin.rpartition("/")[0]
    with psycopg.connect(f"{base}/{name}", autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        sizes = {}
        for table in ENTRY_TABLES:
            row = connection.execute(
                sql.SQL("SELECT pg_total_relation_size({})").format(sql.Literal(table))
            ).fetchone()
            sizes[table] = int(row[0]) if row else 0
    sizes["total"] = sum(sizes.values())
    return sizes


# -- the workers ---------------------------------------------------------------------------


def measure(url: str, count: int) -> dict[str, Any]:
    """``count`` worker processes on ``url`` until nothing is pending."""
    # Each child loads its model before the common start, so the start is the work's.
    start_at = time.time() + 25 + 5 * count
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", url, "--start-at", str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    workers = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"a worker failed ({child.returncode})")
        workers.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(w["finished_at"] for w in workers) - start_at
    decided = sum(w["decided"] for w in workers)
    hold = sum(w["lock_hold_s"] for w in workers)
    return {
        "workers": count,
        "wall_s": round(wall, 2),
        # On free cores the run lasts as long as its busiest worker's CPU: the figure a
        # shared machine does not distort.
        "busiest_worker_cpu_s": max(w["cpu_s"] for w in workers),
        "entries_per_s": round(decided / wall, 2),
        "decided": decided,
        "model_entries": sum(w["model_entries"] for w in workers),
        "model_ms_per_entry": round(
            1000
            * sum(w["model_s"] for w in workers)
            / max(1, sum(w["model_entries"] for w in workers)),
            1,
        ),
        "model_cpu_ms_per_entry": round(
            1000
            * sum(w["model_cpu_s"] for w in workers)
            / max(1, sum(w["model_entries"] for w in workers)),
            1,
        ),
        "lock_hold_ms_per_entry": round(1000 * hold / max(1, decided), 2),
        "lock_hold_cpu_ms_per_entry": round(
            1000 * sum(w["lock_hold_cpu_s"] for w in workers) / max(1, decided), 2
        ),
        "lock_busy_share": round(hold / wall, 3),
        "decision_capacity_entries_per_s": round(decided / hold, 1) if hold else None,
        "per_worker": workers,
    }


def worker(url: str, start_at: float) -> dict[str, Any]:
    """One worker: the stage in a loop, timed where the model runs and where the lock is
    held."""
    store = open_store(url)
    models = Models(FeatureExtractor(LanguageDetector(), Embedder(num_threads=1)))
    models.reference()  # loads the model: not part of the measured work
    stage = ClusteringStage(store, models=models, clock=lambda: cd.NOW)
    timing: dict[str, Any] = {
        "model_s": 0.0,
        "model_cpu_s": 0.0,
        "model_entries": 0,
        "lock_wait_s": 0.0,
        "lock_hold_s": 0.0,
        "lock_hold_cpu_s": 0.0,
        "batches": 0,
        "decided": 0,
        "extracted": 0,
        "skipped_runs": 0,
    }
    stage._compute = _timed_compute(stage._compute, timing)  # type: ignore[method-assign,assignment]
    store.clustering = _timed_lock(store.clustering, timing)  # type: ignore[method-assign]
    time.sleep(max(0.0, start_at - time.time()))
    cpu_started = _cpu()
    try:
        while True:
            summary = stage.run()
            timing["decided"] += summary.entries
            timing["extracted"] += summary.extracted
            if summary.skipped:
                timing["skipped_runs"] += 1
            if store.pending_count() == 0:
                break
            if summary.skipped and summary.extracted == 0:
                time.sleep(IDLE_SECONDS)
    finally:
        store.close()
    timing["finished_at"] = time.time()
    timing["cpu_s"] = round(_cpu() - cpu_started, 2)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in timing.items()}


def _timed_compute(
    compute: Callable[[list[PendingEntry], datetime], dict[int, EntryFeatures]],
    timing: dict[str, Any],
) -> Callable[[list[PendingEntry], datetime], dict[int, EntryFeatures]]:
    def timed(rows: list[PendingEntry], now: datetime) -> dict[int, EntryFeatures]:
        started, cpu = time.perf_counter(), _cpu()
        found = compute(rows, now)
        timing["model_s"] += time.perf_counter() - started
        timing["model_cpu_s"] += _cpu() - cpu
        timing["model_entries"] += len(found)
        return found

    return timed


def _timed_lock(clustering: Callable[[], Any], timing: dict[str, Any]) -> Callable[[], Any]:
    @contextmanager
    def timed() -> Iterator[ClusterWriter]:
        asked = time.perf_counter()
        with clustering() as writer:
            held, cpu = time.perf_counter(), _cpu()
            timing["lock_wait_s"] += held - asked
            yield writer
        # Measured after the commit: the lock is held until then.
        timing["lock_hold_s"] += time.perf_counter() - held
        timing["lock_hold_cpu_s"] += _cpu() - cpu
        timing["batches"] += 1

    return timed


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(run: dict[str, Any]) -> None:
    print(
        f"\n{run['workers']} worker(s): {run['decided']} entries in {run['wall_s']} s "
        f"= {run['entries_per_s']} entries/s; busiest worker's CPU "
        f"{run['busiest_worker_cpu_s']} s"
    )
    print(
        f"  model step: {run['model_ms_per_entry']} ms per entry (wall, in its worker; "
        f"{run['model_cpu_ms_per_entry']} ms CPU); "
        f"{run['model_entries']} entries through the model"
    )
    print(
        f"  lock held: {run['lock_hold_ms_per_entry']} ms per entry decided "
        f"({run['lock_hold_cpu_ms_per_entry']} ms CPU in the worker), "
        f"busy {100 * run['lock_busy_share']:.1f}% of the run: the decision step alone "
        f"would take {run['decision_capacity_entries_per_s']} entries/s"
    )
    print(f"  bytes per entry: {run['bytes_per_entry']}")
    print(f"  load average after: {run['load_after']}")
    for number, w in enumerate(run["per_worker"]):
        print(
            f"  worker {number}: decided {w['decided']}, extracted {w['extracted']}, "
            f"model {w['model_s']} s ({w['model_entries']} entries, cpu "
            f"{w['model_cpu_s']} s), lock held {w['lock_hold_s']} s in {w['batches']} "
            f"batches (cpu {w['lock_hold_cpu_s']} s, waited {w['lock_wait_s']} s), "
            f"cpu {w['cpu_s']} s"
        )


# -- the decision core against the size of the window ---------------------------------------


def window_cost(sizes: list[int], entries: int = WINDOW_PROBES) -> Iterator[dict[str, Any]]:
    """CPU ms per decision of the in-memory clusterer (``Clusterer.add``) with ``size`` stories
    in its window: the part of the decision step that grows with entries per day (the store's
    reads and writes per batch do not). Synthetic unit vectors, one member per story; the new
    entries join none, the costliest path (every candidate is compared)."""
    rng = np.random.default_rng(14)
    for size in sizes:
        clusterer = Clusterer(Matcher(centering=LanguageCentering()))
        for number in range(size):
            moment = cd.NOW - timedelta(hours=48 * number / size)
            clusterer.load(number + 1, [_synthetic(f"s{number}", rng, moment)])
        probes = [_synthetic(f"n{number}", rng, cd.NOW) for number in range(entries)]
        started = time.process_time()
        for probe in probes:
            clusterer.add(probe, cd.NOW)
        cpu = time.process_time() - started
        yield {
            "window_stories": size,
            "decision_cpu_ms": round(1000 * cpu / entries, 2),
            "load": os.getloadavg()[0],
        }


def _synthetic(entry_id: str, rng: np.random.Generator, moment: datetime) -> EntryFeatures:
    vector = rng.standard_normal(DIM).astype(np.float32)
    return EntryFeatures(
        entry_id=entry_id,
        language=LanguageGuess("en", "en", "en", 0.9),
        published=moment,
        embedding=vector / np.linalg.norm(vector),
        # Random signatures: distinct texts, which share no LSH bucket.
        minhash=rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32),
        evidence=evidence.extract("", ""),
    )


# -- entries per day of real feeds -----------------------------------------------------------


def feed_rates(root: Path) -> dict[str, Any]:
    """Entries per day per real-world feed of the corpus: its dated entries over the days
    between its oldest and newest one (feeds with at least two dated entries a day apart)."""
    rates = []
    for path in rf.documents(root):
        try:
            prepared = prepare_feed(
                rf.load(path),
                url="https://rates.example/feed",
                headers={},
                source_language=None,
                source_categories=(),
                categories={},
                now=rf.NOW,
            )
        except ParseError:
            continue
        dates = sorted(
            e.published_at
            for e, _ in prepared.entries
            if e.date_source == "feed" and e.published_at < rf.NOW
        )
        if len(dates) >= 2 and dates[-1] - dates[0] >= timedelta(days=1):
            rates.append(len(dates) / ((dates[-1] - dates[0]).total_seconds() / 86400))
    rates.sort()
    if not rates:
        return {"feeds": 0}
    return {
        "feeds": len(rates),
        "median": round(statistics.median(rates), 3),
        "mean": round(statistics.fmean(rates), 3),
        "p90": round(rates[int(0.9 * (len(rates) - 1))], 3),
        "max": round(rates[-1], 1),
    }


if __name__ == "__main__":
    sys.exit(main())
