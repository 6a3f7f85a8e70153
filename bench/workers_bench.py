"""Workers benchmark: 1, 2 and 4 ``aggregator poll`` processes sharing one PostgreSQL database.

    .venv/bin/python bench/workers_bench.py --feeds 10000 --workers 1 2 4

A throwaway PostgreSQL cluster (initdb/pg_ctl on a free port, ``pg_stat_statements`` loaded,
fsync on as in production) holds one fresh database per worker count, migrated and synced
before the clock starts. A feed host process serves ``--feeds`` small RSS feeds (5 entries,
about 2 kB, ETag and 304) spread over ``--hosts`` loopback addresses. For each worker count W,
W ``aggregator poll`` processes run at once through the real claim path (leases, one host per
worker at a time), twice:

1. ``first``: every feed answers 200 (parse, store 5 entries and their stories);
2. ``304``: every source is made due again; every feed answers 304.

Figures per phase: the polling span (first save to last, from the sources' ``last_checked_at``)
and sources/s over it; the wall time from start to the last exit (startup and clustering
included); CPU seconds of the workers (``wait4``), of PostgreSQL (every server process, sampled
from /proc) and of the feed host; and the database's share: PostgreSQL's CPU against all CPU
spent, and statement execution time (``pg_stat_statements``) against the workers' wall time,
with the statements that took most. The load average is printed with each phase: this machine
has 2 cores and other work may be running. The JSON goes to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path[:0] = [str(ROOT)]

from feedhost import host_address  # noqa: E402

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig  # noqa: E402
from aggregator.store import open_store, upgrade  # noqa: E402
from tests.support.pgcluster import RUN_AS, Cluster, free_port, postgres_bin  # noqa: E402

ITEMS = 5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the feed host ---------------------------------------------------------------------------


def _feed(index: int) -> bytes:
    items = "".join(
        f"<item><title>Source {index} story {i}: a headline of ordinary length</title>"
        f"<link>https://s{index}.example/{i}</link><guid>s{index}-{i}</guid>"
        f"<pubDate>Tue, 17 Nov 2026 0{i}:00:00 GMT</pubDate><description>"
        f"{'Body text of an ordinary news item, about two hundred characters long. ' * 3}"
        f"</description></item>"
        for i in range(ITEMS)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Source {index}</title><link>https://s{index}.example/</link>"
        f"<description>Feed {index}</description>{items}</channel></rss>"
    ).encode()


def _host_main(conn: multiprocessing.connection.Connection, feeds: int, hosts: int) -> None:
    answers: dict[bytes, tuple[bytes, bytes]] = {}
    for index in range(feeds):
        body = _feed(index)
        etag = '"' + sha1(body).hexdigest() + '"'
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            f"Content-Length: {len(body)}\r\nETag: {etag}\r\n\r\n"
        ).encode()
        answers[f"/s{index}.xml".encode()] = (head + body, etag.encode())
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n"
    counts = {200: 0, 304: 0, 404: 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1]
                found = answers.get(path)
                inm = next(
                    (
                        line.split(b":", 1)[1].strip()
                        for line in lines[1:]
                        if line.lower().startswith(b"if-none-match:")
                    ),
                    None,
                )
                if found is None:
                    counts[404] += 1
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                elif inm is not None and found[1] in inm:
                    counts[304] += 1
                    writer.write(not_modified)
                else:
                    counts[200] += 1
                    writer.write(found[0])
                await writer.drain()
        writer.close()

    async def main() -> None:
        first = await asyncio.start_server(handle, host_address(0, hosts), 0, backlog=1024)
        port = first.sockets[0].getsockname()[1]
        servers = [first] + [
            await asyncio.start_server(handle, host_address(n, hosts), port, backlog=1024)
            for n in range(1, hosts)
        ]
        conn.send(port)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()

        def stopped() -> None:
            if not stop.done():
                stop.set_result(None)

        loop.add_reader(conn.fileno(), stopped)
        await stop
        for server in servers:
            server.close()

    asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send({"cpu": usage.ru_utime + usage.ru_stime, "statuses": counts})


@dataclass
class FeedHost:
    feeds: int
    hosts: int

    def __enter__(self) -> FeedHost:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_host_main, args=(child, self.feeds, self.hosts), daemon=True
        )
        self._process.start()
        self.port = int(self._conn.recv())
        return self

    def url(self, index: int) -> str:
        return f"http://{host_address(index % self.hosts, self.hosts)}:{self.port}/s{index}.xml"

    def finish(self) -> dict[str, Any]:
        self._conn.send("stop")
        stats: dict[str, Any] = self._conn.recv()
        self._process.join(10)
        return stats

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            self._process.kill()


# -- the database ----------------------------------------------------------------------------


def start_cluster() -> Cluster:
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    directory = Path(tempfile.mkdtemp(prefix="aggregator-bench-pg-"))
    if os.geteuid() == 0:
        import pwd  # noqa: PLC0415

        user = pwd.getpwnam(RUN_AS)
        os.chown(directory, user.pw_uid, user.pw_gid)
    cluster = Cluster(bin_dir, directory, free_port())
    cluster.init()
    options = (
        f"-p {cluster.port} -c listen_addresses=127.0.0.1 "
        f"-c unix_socket_directories={directory} -c max_connections=200 "
        "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=1000"
    )
    cluster._run(
        "pg_ctl",
        "-D",
        str(cluster.data),
        "-l",
        str(directory / "server.log"),
        "-o",
        options,
        "-w",
        "start",
    )
    return cluster


def admin_execute(cluster: Cluster, *statements: str, database: str = "postgres") -> list[Any]:
    import psycopg  # noqa: PLC0415

    rows: list[Any] = []
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{cluster.port}/{database}", autocommit=True
    ) as connection:
        for statement in statements:
            cursor = connection.execute(statement)
            if cursor.description is not None:
                rows = cursor.fetchall()
    return rows


def postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


class PostgresCpu:
    """CPU seconds of every server process, sampled from /proc (a backend's time is kept once
    it exits: the last sample stands for it, so at most one sampling interval is lost)."""

    def __init__(self, cluster: Cluster) -> None:
        self.root = postmaster_pid(cluster)
        self.seen: dict[int, float] = {}

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(entry.name), int(fields[1])
            if self.root in (pid, ppid):
                self.seen[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def total(self) -> float:
        return sum(self.seen.values())


# -- one phase -------------------------------------------------------------------------------


def run_workers(
    count: int, database: str, config: Path, cluster: Cluster, dbname: str, args: argparse.Namespace
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        {
            "AGGREGATOR_POLL_PROCESSES": "0",
            "AGGREGATOR_CLUSTERING": "exact",
            "AGGREGATOR_FETCH_WORKERS": str(args.fetch_workers),
            "AGGREGATOR_HOST_CONCURRENCY": "4",
            "AGGREGATOR_HOST_DELAY": "0",
            "AGGREGATOR_LOG_LEVEL": "WARNING",
        }
    )
    admin_execute(cluster, "SELECT pg_stat_statements_reset()", database=dbname)
    pg_cpu = PostgresCpu(cluster)
    pg_cpu.sample()
    before_pg = pg_cpu.total()
    load_before = os.getloadavg()
    started = time.time()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator",
                "poll",
                "--config",
                str(config),
                "--database",
                database,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    cpu = 0.0
    outputs = []
    pending = {p.pid: p for p in processes}
    while pending:
        pg_cpu.sample()
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.25)
            continue
        process = pending.pop(pid, None)
        if process is None:
            continue
        process.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        outputs.append(
            (
                process.returncode,
                process.stdout.read().decode() if process.stdout else "",
                process.stderr.read().decode() if process.stderr else "",
            )
        )
    wall = time.time() - started
    pg_cpu.sample()
    for code, out, err in outputs:
        if code != 0:
            raise SystemExit(f"a worker exited {code}:\n{out}\n{err[-3000:]}")
    span = admin_execute(
        cluster,
        "SELECT extract(epoch FROM max(last_checked_at) - min(last_checked_at)), "
        f"count(*) FILTER (WHERE last_checked_at >= to_timestamp({started})) FROM sources",
        database=dbname,
    )[0]
    statements = admin_execute(
        cluster,
        "SELECT sum(total_exec_time) / 1000, sum(calls) FROM pg_stat_statements",
        database=dbname,
    )[0]
    top = admin_execute(
        cluster,
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls, "
        "round((total_exec_time / 1000)::numeric, 2) FROM pg_stat_statements "
        "ORDER BY total_exec_time DESC LIMIT 6",
        database=dbname,
    )
    polled = [
        int(line.split()[1])
        for _, out, _ in outputs
        for line in out.splitlines()
        if line.startswith("polled ")
    ]
    pg_seconds = pg_cpu.total() - before_pg
    exec_seconds = float(statements[0] or 0)
    return {
        "workers": count,
        "wall_s": round(wall, 2),
        "span_s": round(float(span[0] or 0), 2),
        "sources_checked": int(span[1]),
        "polled_by_worker": polled,
        "sources_per_s": round(int(span[1]) / max(float(span[0] or 0), 1e-9), 1),
        "worker_cpu_s": round(cpu, 2),
        "postgres_cpu_s": round(pg_seconds, 2),
        "db_cpu_share": round(pg_seconds / max(cpu + pg_seconds, 1e-9), 3),
        "db_exec_s": round(exec_seconds, 2),
        "db_calls": int(statements[1] or 0),
        "db_exec_share_of_worker_wall": round(exec_seconds / max(wall * count, 1e-9), 3),
        "top_statements": [list(map(str, row)) for row in top],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def prepare(
    cluster: Cluster, dbname: str, host: FeedHost, feeds: int, folder: Path
) -> tuple[str, Path]:
    admin_execute(
        cluster, f'CREATE DATABASE "{dbname}"', "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
    )
    admin_execute(cluster, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database=dbname)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/{dbname}"
    sources = [SourceConfig(id=f"s{i}", url=host.url(i), categories=("all",)) for i in range(feeds)]
    config = folder / "config"
    config.mkdir(exist_ok=True)
    (config / "sources.toml").write_text(
        "".join(
            f'[[source]]\nid = "{s.id}"\nurl = "{s.url}"\ncategories = ["all"]\n\n' for s in sources
        ),
        encoding="utf-8",
    )
    (config / "categories.toml").write_text(
        '[[category]]\nid = "all"\ntitle = "All"\n', encoding="utf-8"
    )
    store = open_store(url)
    try:
        upgrade(store.engine)
        from datetime import UTC, datetime  # noqa: PLC0415

        store.sync_sources(
            Catalog(sources=tuple(sources), categories=(CategoryConfig(id="all", title="All"),)),
            datetime.now(UTC),
        )
    finally:
        store.close()
    return url, config


def format_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| W | phase | span s | sources/s | wall s | worker CPU s | PostgreSQL CPU s | "
        "DB share of CPU | DB exec s | DB exec / worker wall | load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results:
        lines.append(
            f"| {run['workers']} | {run['phase']} | {run['span_s']} | {run['sources_per_s']} | "
            f"{run['wall_s']} | {run['worker_cpu_s']} | {run['postgres_cpu_s']} | "
            f"{run['db_cpu_share']:.0%} | {run['db_exec_s']} | "
            f"{run['db_exec_share_of_worker_wall']:.0%} | "
            f"{run['load_before'][0]} → {run['load_after'][0]} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--fetch-workers", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    out = args.out or RESULTS_DIR / f"workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    cluster = start_cluster()
    results: list[dict[str, Any]] = []
    folder = Path(tempfile.mkdtemp(prefix="aggregator-bench-"))
    try:
        with FeedHost(args.feeds, args.hosts) as host:
            for count in args.workers:
                dbname = f"workers{count}"
                url, config = prepare(cluster, dbname, host, args.feeds, folder)
                for phase in ("first", "304"):
                    if phase == "304":
                        admin_execute(
                            cluster, "UPDATE sources SET next_check_at = now()", database=dbname
                        )
                    print(f"W={count} {phase}…", file=sys.stderr, flush=True)
                    run = run_workers(count, url, config, cluster, dbname, args)
                    run["phase"] = phase
                    results.append(run)
                    print(format_table([run]).splitlines()[-1], file=sys.stderr, flush=True)
            host_stats = host.finish()
    finally:
        with contextlib.suppress(RuntimeError):
            cluster.stop()
    report = {
        "feeds": args.feeds,
        "hosts": args.hosts,
        "fetch_workers": args.fetch_workers,
        "nproc": os.cpu_count(),
        "host": host_stats,
        "runs": results,
    }
    out.write_text(json.dumps(report, indent=2))
    print(format_table(results))
    print(f"\nfeed host: {host_stats}")
    for run in results:
        print(f"\nW={run['workers']} {run['phase']}: top statements (calls, seconds)")
        for query, calls, seconds in run["top_statements"]:
            print(f"  {seconds:>7} s {calls:>7}  {query}")
    print(f"figures written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
