"""Where `aggregator run`'s main process keeps its memory while it polls N sources: one service
on the benchmark's loopback feeds (``feedhost``), its main process probed from inside.

    .venv-bench/bin/python bench/run_probe.py --feeds 10000 [--trace 10] [--out DIR]

Every ``--every`` seconds the probe writes a line to ``DIR/samples.jsonl``: RSS and PSS split
into anonymous and file-backed pages, glibc's ``mallinfo2`` (bytes in use, free, mmapped),
SQLite's ``sqlite3_memory_used``, Python's allocated blocks and the thread count; every ten
seconds each SQLite connection's page cache, schema and statements (``sqlite3_db_status``).
With ``--trace N`` tracemalloc (N frames) runs from when the service starts serving: a snapshot
then (``start.snap``) and at each new high of the traced total (``peak.snap``), diffed in
``DIR/report.txt`` by file, by line and by traceback. At each new high of RSS (without
``--trace``) ``peak-smaps.txt`` keeps the resident memory by mapping. The service runs one round
(every source due at start), then ``--rounds`` - 1 more with every source made due again.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sqlite3
import sqlite3.dbapi2
import sys
import threading
import time
import traceback
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
# A block glibc mmapped on its own of at least this size is noted with every thread's stack.
BIG_BLOCK_MB = 8.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _smaps_rollup() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0])
    return values


def smaps_by_mapping() -> list[tuple[str, int, int, int]]:
    """(mapping, RSS kB, PSS kB, anonymous kB) summed per mapped file or kind, largest first."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    name = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            name = head[5] if len(head) > 5 else "[anon]"
            if "/site-packages/" in name:
                name = "site-packages/" + name.split("/site-packages/", 1)[1].split("/", 1)[0]
            continue
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Anonymous"):
            index = ("Rss", "Pss", "Anonymous").index(key)
            totals[name][index] += int(rest.split()[0])
    rows = [(n, rss, pss, anon) for n, (rss, pss, anon) in totals.items()]
    return sorted(rows, key=lambda row: -row[1])


_DBSTATUS = {"cache": 1, "schema": 2, "stmt": 3}


def sqlite_connections(library: ctypes.CDLL) -> list[dict[str, float]]:
    """Per open ``sqlite3.Connection`` of this process: its page cache, schema and prepared
    statements (``sqlite3_db_status``), in MB. The handle is the first field after the
    object's header in CPython's ``pysqlite_Connection``."""
    import gc  # noqa: PLC0415

    rows = []
    current, high = ctypes.c_int(), ctypes.c_int()
    for obj in gc.get_objects():
        if type(obj) is not sqlite3.Connection:
            continue
        handle = ctypes.c_void_p.from_address(id(obj) + object.__basicsize__).value
        if not handle:
            continue
        row = {}
        for name, op in _DBSTATUS.items():
            library.sqlite3_db_status(
                ctypes.c_void_p(handle), op, ctypes.byref(current), ctypes.byref(high), 0
            )
            row[name] = round(current.value / 2**20, 2)
        rows.append(row)
    return rows


class Probe:
    """Samples this process in a daemon thread until it exits."""

    def __init__(self, out: Path, every: float, trace: bool) -> None:
        self.out = out
        self.every = every
        self.trace = trace
        self.best = 0.0
        self.libc = ctypes.CDLL(None)
        self.libc.mallinfo2.restype = _MallInfo2
        sqlite_path = next(
            line.split()[-1]
            for line in Path("/proc/self/maps").read_text().splitlines()
            if "libsqlite3" in line
        )
        self.sqlite = ctypes.CDLL(sqlite_path)
        self.sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        self.sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
        self.started = time.monotonic()
        self.detailed = 0.0
        self.big_seen = False
        self.samples = (out / "samples.jsonl").open("a", buffering=1)
        threading.Thread(target=self._run, daemon=True, name="probe").start()

    def sample(self, label: str = "") -> dict[str, Any]:
        roll = _smaps_rollup()
        info = self.libc.mallinfo2()
        row: dict[str, Any] = {
            "t": round(time.monotonic() - self.started, 1),
            "label": label,
            "rss_mb": roll["Rss"] / 1024,
            "pss_mb": roll["Pss"] / 1024,
            "anon_mb": roll.get("Anonymous", 0) / 1024,
            "file_mb": (roll["Rss"] - roll.get("Anonymous", 0)) / 1024,
            "malloc_arena_mb": info.arena / 2**20,
            "malloc_used_mb": info.uordblks / 2**20,
            "malloc_free_mb": info.fordblks / 2**20,
            "malloc_mmap_mb": info.hblkhd / 2**20,
            "sqlite_mb": self.sqlite.sqlite3_memory_used() / 2**20,
            "sqlite_high_mb": self.sqlite.sqlite3_memory_highwater(0) / 2**20,
            "py_blocks": sys.getallocatedblocks(),
            "threads": threading.active_count(),
        }
        if self.trace and tracemalloc.is_tracing():
            row["traced_mb"], row["traced_peak_mb"] = (
                v / 2**20 for v in tracemalloc.get_traced_memory()
            )
        self.samples.write(
            json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
            + "\n"
        )
        return row

    def snapshot(self, name: str) -> None:
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(self.out / f"{name}.snap.tmp"))
            os.replace(self.out / f"{name}.snap.tmp", self.out / f"{name}.snap")

    def _run(self) -> None:
        while True:
            row = self.sample()
            # A new high by more than 2 MB: keep what the process holds there.
            if time.monotonic() - self.detailed >= 10:
                self.detailed = time.monotonic()
                self.samples.write(
                    json.dumps(
                        {
                            "t": row["t"],
                            "label": "detail",
                            "connections": sqlite_connections(self.sqlite),
                        }
                    )
                    + "\n"
                )
            # With tracemalloc on, its own traces swell RSS: the Python heap's high is the one.
            level = row.get("traced_mb", 0.0) if self.trace else row["rss_mb"]
            if level > self.best + 2:
                self.best = level
                (self.out / "peak-smaps.txt").write_text(
                    f"t={row['t']} rss={row['rss_mb']:.1f} MB\n"
                    + "".join(
                        f"{rss / 1024:8.1f} {pss / 1024:8.1f} {anon / 1024:8.1f}  {name}\n"
                        for name, rss, pss, anon in smaps_by_mapping()
                        if rss >= 256
                    )
                )
                self.snapshot("peak")
                self.sample("after peak snapshot")
            # Between two samples, every quarter of a second: a short-lived high of the traced
            # total, and a large block glibc gave its own mapping (a buffer of several MB),
            # whose holders the threads' stacks name.
            until = time.monotonic() + self.every
            while time.monotonic() < until:
                if (
                    self.trace
                    and tracemalloc.is_tracing()
                    and tracemalloc.get_traced_memory()[0] / 2**20 > self.best + 2
                ):
                    break
                self._catch_big_block()
                time.sleep(0.25)

    def _catch_big_block(self) -> None:
        mapped = self.libc.mallinfo2().hblkhd / 2**20
        if mapped < BIG_BLOCK_MB:
            self.big_seen = False
            return
        if self.big_seen:
            return
        self.big_seen = True
        frames = sys._current_frames()
        with (self.out / "big-blocks.txt").open("a") as sink:
            sink.write(f"t={time.monotonic() - self.started:.1f} mmapped={mapped:.1f} MB\n")
            for thread in threading.enumerate():
                frame = frames.get(thread.ident or -1)
                if frame is not None and thread.name != "probe":
                    sink.write(
                        f"  thread {thread.name}\n"
                        + "".join("    " + line for line in traceback.format_stack(frame)[-12:])
                    )


def child(
    out: Path, every: float, trace: int, sqlite_limit: float, statements: int, lifo: bool
) -> int:
    """`aggregator run` with the probe in it."""
    if lifo:  # the store builds its engine with sqlalchemy.create_engine, looked up per call
        import sqlalchemy  # noqa: PLC0415

        create = sqlalchemy.create_engine

        def create_lifo(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("pool_use_lifo", True)
            return create(*args, **kwargs)

        sqlalchemy.create_engine = create_lifo
    if statements >= 0:  # SQLAlchemy's pysqlite dialect calls sqlite3.dbapi2.connect
        connect = sqlite3.dbapi2.connect

        def connect_caching(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            kwargs.setdefault("cached_statements", statements)
            connection: sqlite3.Connection = connect(*args, **kwargs)
            return connection

        sqlite3.dbapi2.connect = connect_caching  # type: ignore[assignment]
    if sqlite_limit:  # process-wide: every connection SQLAlchemy opens later obeys it
        sqlite3.connect(":memory:").execute(
            f"PRAGMA soft_heap_limit={int(sqlite_limit * 2**20)}"
        ).fetchall()
    probe = Probe(out, every, bool(trace))
    from aggregator.cli import main  # noqa: PLC0415
    from aggregator.runtime.service import Service  # noqa: PLC0415

    serve = Service.serve

    def probed_serve(self: Service, *args: Any, **kwargs: Any) -> None:
        probe.sample("serve")
        if trace:
            # From here only: what the running service allocates and keeps (the web stack, the
            # rounds), and start-up is not slowed down by the traces.
            tracemalloc.start(trace)
            probe.snapshot("start")
        serve(self, *args, **kwargs)

    Service.serve = probed_serve  # type: ignore[method-assign]
    return main(["run"])


def report(out: Path, limit: int = 40) -> str:
    """The peak snapshot against the start one, by line (traceback's last frame) and file."""
    start = tracemalloc.Snapshot.load(str(out / "start.snap"))
    peak = tracemalloc.Snapshot.load(str(out / "peak.snap"))
    lines = [
        f"traced at start {sum(s.size for s in start.statistics('filename')) / 2**20:.1f}"
        f" MB, at peak {sum(s.size for s in peak.statistics('filename')) / 2**20:.1f} MB"
    ]
    for key in ("filename", "lineno"):
        lines.append(f"\n-- growth by {key} --")
        for stat in peak.compare_to(start, key)[:limit]:
            lines.append(
                f"{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks "
                f"(now {stat.size / 2**20:7.2f})  {stat.traceback[0]}"
            )
    lines.append("\n-- growth by traceback, largest --")
    for stat in peak.compare_to(start, "traceback")[:15]:
        lines.append(f"{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks")
        lines.extend(f"      {frame}" for frame in list(stat.traceback)[-10:])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument(
        "--processes",
        type=int,
        default=-1,
        help="AGGREGATOR_POLL_PROCESSES (default: the service's own)",
    )
    parser.add_argument(
        "--sqlite-limit",
        type=float,
        default=0.0,
        help="MB: SQLite's soft heap limit, set in the service before it starts",
    )
    parser.add_argument(
        "--cached-statements",
        type=int,
        default=-1,
        help="each SQLite connection's statement cache (default: the store's)",
    )
    parser.add_argument(
        "--pool-lifo",
        action="store_true",
        help="the store's connection pool hands out its last returned one first",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help="only print the report of DIR")
    args = parser.parse_args()
    if args.child:
        return child(
            args.child,
            args.every,
            args.trace,
            args.sqlite_limit,
            args.cached_statements,
            args.pool_lifo,
        )
    if args.report:
        print(report(args.report))
        return 0

    sys.path.insert(0, str(BENCH_DIR))
    from feedhost import HostOptions, HostProcess, feed_url  # noqa: PLC0415
    from oursprocs import RunService  # noqa: PLC0415

    out = args.out or BENCH_DIR / "results" / time.strftime("probe-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)

    import subprocess  # noqa: PLC0415

    popen = subprocess.Popen

    def probed_popen(command: list[str], *a: Any, **kw: Any) -> Any:
        if command[1:] == ["-m", "aggregator", "run"]:
            command = [
                command[0],
                str(Path(__file__).resolve()),
                "--child",
                str(out),
                "--every",
                str(args.every),
                "--trace",
                str(args.trace),
                "--sqlite-limit",
                str(args.sqlite_limit),
                "--cached-statements",
                str(args.cached_statements),
                *(["--pool-lifo"] if args.pool_lifo else []),
            ]
        return popen(command, *a, **kw)

    subprocess.Popen = probed_popen  # type: ignore[misc,assignment]
    options = HostOptions(feeds=args.feeds, hosts=args.feeds)
    with HostProcess(options) as host:
        urls = [feed_url(i, host.options.hosts, host.port) for i in range(args.feeds)]
        service = RunService(urls, args.workers, args.processes)
        try:
            for number in range(args.rounds):
                result = service.poll()
                print(
                    f"round {number + 1}: {result['wall_s']:.0f} s, tree peak "
                    f"{result['maxrss_mb']:.0f} / {result['pss_mb']:.0f} MB, "
                    f"{result['by_process']}, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        finally:
            service.close()
    if args.trace:
        (out / "report.txt").write_text(report(out))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
