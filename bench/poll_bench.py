"""Poll benchmark: this project against lemon24/reader on the same loopback feeds, same run.

    .venv-bench/bin/python bench/poll_bench.py --feeds 1000 10000 --workers 8

For each N a feed host process (``feedhost``) serves N synthetic feeds (``synthfeeds``). Then each
system runs in a child process of its own, so its CPU seconds (user+sys, all threads) and peak RSS
come from ``resource.getrusage(RUSAGE_SELF)`` in that child alone. Each child polls every feed
four times, the parent changing the host between polls:

1. ``first``: empty database, every feed answers 200;
2. ``304``: nothing changed, every feed answers 304 to the conditional GET;
3. ``changed5``: 5% of feeds got a new entry (new ETag, later Last-Modified): 5% 200, 95% 304;
4. ``unchanged200``: the host stops sending validators and ignores conditional headers, so every
   feed answers 200 with the very bytes of the previous poll; this shows unchanged-body skipping.

Between systems the host is reset to the original documents. Ours is driven through its public
classes (``Catalog``, ``open_store`` + ``upgrade``, ``Service.poll()``) on a fresh
SQLite (WAL) file; reader through ``make_reader`` + ``add_feed`` + ``update_feeds_iter(
scheduled=False, workers=W)``. The table goes to stdout and the figures to a JSON file
(``bench/results/`` by default, which ``bench/.gitignore`` keeps out of git).

``--profile`` attaches py-spy to the children during the first and 304 polls and writes the
collapsed stacks plus a summary by stage (see ``profsummary``) next to the JSON.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import proctree
from feedhost import KINDS, HostOptions, HostProcess, feed_url
from oursprocs import PollProcess, RunService

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
# ours: in one process, through its classes (``Service.poll``); ours-poll: `aggregator poll
# --all --json` as a new process per phase; ours-run: one `aggregator run` service, its poll
# rounds timed from its log (``oursprocs``); reader: lemon24/reader in one process.
SYSTEMS = ("ours", "ours-poll", "ours-run", "reader")
CHILD_SYSTEMS = ("ours", "reader")
PHASES = ("first", "304", "changed5", "unchanged200")
CHANGED_FRACTION = 0.05
# A child that does not answer a poll within this many seconds is killed.
PHASE_TIMEOUT_SECONDS = 3600
PROFILE_PHASES = ("first", "304")
# Default spread: one feed per loopback host, so per-host politeness never delays a fetch
# and the figures measure the pipeline; --hosts smaller than N measures politeness too.
FEEDS_PER_HOST = 1


# -- children ------------------------------------------------------------------------------


def _descendants() -> set[int]:
    """Process ids of this process's live descendants (poll workers are grandchildren: they
    are started by a fork server)."""
    return set(proctree.tree(os.getpid())) - {os.getpid()}


def _descendants_peak_rss_mb() -> float:
    """Sum of the live descendants' peak resident memory (VmHWM), in MB."""
    total_kb = 0
    for pid in _descendants():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def _descendants_cpu() -> tuple[float, float]:
    """CPU seconds (user, sys) of this process's live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for pid in _descendants():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def _usage() -> tuple[float, float, float]:
    """User and sys CPU seconds of this process and its children (live or reaped), peak RSS."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    live_user, live_sys = _descendants_cpu()
    # Peak RSS: this process's plus its live helpers' (poll workers, fork server).
    return (
        usage.ru_utime + reaped.ru_utime + live_user,
        usage.ru_stime + reaped.ru_stime + live_sys,
        usage.ru_maxrss / 1024 + _descendants_peak_rss_mb(),
    )


def _emit(payload: dict[str, Any]) -> None:
    sys.__stdout__.write(json.dumps(payload) + "\n")  # type: ignore[union-attr]
    sys.__stdout__.flush()  # type: ignore[union-attr]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measured(poll: Any) -> dict[str, Any]:
    user0, sys0, _ = _usage()
    own0 = _own_cpu()
    started = time.perf_counter()
    outcomes, new_entries = poll()
    wall = time.perf_counter() - started
    user1, sys1, maxrss = _usage()
    return {
        "wall_s": wall,
        "cpu_user_s": user1 - user0,
        "cpu_sys_s": sys1 - sys0,
        "cpu_s": (user1 - user0) + (sys1 - sys0),
        "main_cpu_s": _own_cpu() - own0,
        "maxrss_mb": maxrss,
        "outcomes": dict(outcomes),
        "new_entries": new_entries,
    }


def _ours(urls: list[str], workers: int, workdir: Path, processes: int) -> Any:
    # Imported in the child only, so each system's RSS holds its own modules alone.
    from aggregator.catalog import Catalog, SourceConfig  # noqa: PLC0415
    from aggregator.runtime.service import Service  # noqa: PLC0415
    from aggregator.settings import Settings  # noqa: PLC0415
    from aggregator.store import open_store, upgrade  # noqa: PLC0415

    database_url = f"sqlite:///{workdir / 'ours.db'}"
    from benchcategories import CATEGORIES as categories  # noqa: PLC0415

    catalog = Catalog(
        sources=tuple(
            SourceConfig(id=f"feed-{i:05d}", url=url, categories=("world", "tech"))
            for i, url in enumerate(urls)
        ),
        categories=categories,
    )
    # Every feed sits on one loopback host here, and reader has no per-host limit: the
    # politeness gate is opened to the worker count so both systems fetch alike.
    settings = Settings.from_env({}).with_overrides(
        database_url=database_url,
        fetch_workers=workers,
        config_dir=str(workdir),
        host_concurrency=workers,
        host_delay=0.0,
    )
    if processes >= 0:
        settings = settings.with_overrides(poll_processes=processes)
    store = open_store(database_url)
    upgrade(store.engine)
    service = Service(settings, store, catalog)

    def poll() -> tuple[Counter[str], int]:
        summary = service.poll()
        return Counter(o.result for o in summary.outcomes), summary.new_entries

    return poll


def _reader(urls: list[str], workers: int, workdir: Path, _processes: int) -> Any:
    from reader import UpdatedFeed, make_reader  # noqa: PLC0415

    reader = make_reader(str(workdir / "reader.sqlite"))
    for url in urls:
        reader.add_feed(url)

    def poll() -> tuple[Counter[str], int]:
        outcomes: Counter[str] = Counter()
        new = 0
        for result in reader.update_feeds_iter(scheduled=False, workers=workers):
            value = result.value
            if value is None:
                outcomes["not_modified"] += 1
            elif isinstance(value, UpdatedFeed):
                new += value.new
                outcomes["updated" if value.new or value.modified else "unchanged"] += 1
            else:
                outcomes["error"] += 1
        return outcomes, new

    return poll


def child_main(
    system: str, port: int, hosts: int, feeds: int, workers: int, processes: int
) -> None:
    """Set up ``system``, then run one poll per ``poll`` line read from stdin."""
    workdir = Path(tempfile.mkdtemp(prefix=f"poll-bench-{system}-"))
    try:
        urls = [feed_url(i, hosts, port) for i in range(feeds)]
        user0, sys0, _ = _usage()
        started = time.perf_counter()
        setup = _ours if system == "ours" else _reader
        poll = setup(urls, workers, workdir, processes)
        user1, sys1, maxrss = _usage()
        _emit(
            {
                "ready": True,
                "setup_wall_s": time.perf_counter() - started,
                "setup_cpu_s": user1 - user0 + sys1 - sys0,
                "maxrss_mb": maxrss,
                "pid": os.getpid(),
            }
        )
        for line in sys.stdin:
            if line.strip() != "poll":
                break
            _emit(_measured(poll))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- parent --------------------------------------------------------------------------------


class Child:
    """One system's polling process, driven line by line."""

    def __init__(
        self, system: str, host: HostProcess, feeds: int, workers: int, processes: int
    ) -> None:
        self.system = system
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                system,
                "--port",
                str(host.port),
                "--hosts",
                str(host.options.hosts),
                "--feeds",
                str(feeds),
                "--workers",
                str(workers),
                "--processes",
                str(processes),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        self.setup = self._read()
        self.memory = proctree.PeakMemory(self.process.pid)

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.system} child exited with {self.process.wait()}")
        return dict(json.loads(line))

    def poll(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("poll\n")
        self.process.stdin.flush()
        self.memory.reset()
        result = self._read()
        peak = self.memory.peak()
        result.update(pss_mb=peak.pss_mb, uss_mb=peak.uss_mb, processes=peak.processes)
        return result

    def close(self) -> None:
        assert self.process.stdin is not None
        self.memory.stop()
        self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _server_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    statuses = {k: v - before["statuses"].get(k, 0) for k, v in after["statuses"].items()}
    cpu = (after["cpu_user"] + after["cpu_sys"]) - (before["cpu_user"] + before["cpu_sys"])
    return {"cpu_s": cpu, "statuses": {k: v for k, v in statuses.items() if v}}


def _start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found; no profile", file=sys.stderr)
        return None
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--subprocesses",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)  # let it attach before the poll starts
    return process


def _stop_profiler(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def _driver(
    system: str,
    host: HostProcess,
    feeds: int,
    workers: int,
    processes: int,
    clustering: str = "exact",
) -> Child | PollProcess | RunService:
    if system in CHILD_SYSTEMS:
        return Child(system, host, feeds, workers, processes)
    urls = [feed_url(i, host.options.hosts, host.port) for i in range(feeds)]
    return (PollProcess if system == "ours-poll" else RunService)(
        urls, workers, processes, clustering
    )


def run_system(
    system: str,
    host: HostProcess,
    feeds: int,
    workers: int,
    processes: int,
    profile_dir: Path | None,
    only: Sequence[str] = PHASES,
    clustering: str = "exact",
    settle: float = 0.0,
) -> dict[str, Any]:
    host.reset()
    child = _driver(system, host, feeds, workers, processes, clustering)
    phases: dict[str, Any] = {}
    try:
        for phase in PHASES:
            if phase not in only:
                if phase == "changed5":
                    host.mutate(CHANGED_FRACTION, "changed")
                continue
            if phase == "changed5":
                host.mutate(CHANGED_FRACTION, "changed")
            elif phase == "unchanged200":
                host.validators(False)
            profiler = None
            if profile_dir is not None and phase in PROFILE_PHASES and "pid" in child.setup:
                profiler = _start_profiler(
                    int(child.setup["pid"]), profile_dir / f"profile-{system}-{phase}-n{feeds}.txt"
                )
            before = host.stats()
            result = child.poll()
            after = host.stats()
            _stop_profiler(profiler)
            result["feeds_per_s"] = feeds / result["wall_s"]
            result["cpu_ms_per_feed"] = 1000 * result["cpu_s"] / feeds
            result["main_ms_per_feed"] = 1000 * result["main_cpu_s"] / feeds
            result["server"] = _server_delta(before, after)
            phases[phase] = result
            print(
                f"  {system:9} {phase:12} {result['feeds_per_s']:8.1f} feeds/s  "
                f"cpu {result['cpu_s']:7.2f} s (main {result['main_cpu_s']:6.2f})  "
                f"rss {result['maxrss_mb']:6.0f} MB  pss {result.get('pss_mb', 0):6.0f} MB  "
                f"server cpu {result['server']['cpu_s']:5.2f} s  {result['outcomes']}"
                + (
                    f"\n    at the PSS peak, RSS/PSS/USS MB: {', '.join(result['by_process'])}"
                    if result.get("by_process")
                    else ""
                )
                + (
                    f"\n    since the service started: rss {result['session_rss_mb']:.0f} MB  "
                    f"pss {result['session_pss_mb']:.0f} MB; at its PSS peak: "
                    f"{', '.join(result['session_by_process'])}"
                    if result.get("session_by_process")
                    else ""
                ),
                file=sys.stderr,
                flush=True,
            )
        settled = None
        if settle > 0 and isinstance(child, RunService):
            settled = child.settle(settle)
            print(
                f"  {system:9} settled {settle:.0f} s: since the service started rss "
                f"{settled['session_rss_mb']:.0f} MB  pss {settled['session_pss_mb']:.0f} MB;"
                f" at its PSS peak: {', '.join(settled['session_by_process'])}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        child.close()
        host.validators(True)
    return {"setup": child.setup, "phases": phases, "settled": settled}


MEDIAN_KEYS = (
    "wall_s",
    "cpu_s",
    "main_cpu_s",
    "maxrss_mb",
    "pss_mb",
    "uss_mb",
    "feeds_per_s",
    "cpu_ms_per_feed",
    "main_ms_per_feed",
)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase, the median of each figure over the runs (the outcomes of the first run)."""
    phases: dict[str, Any] = {}
    for phase in PHASES:
        results = [run["phases"][phase] for run in runs if phase in run["phases"]]
        if not results:
            continue
        merged = dict(results[0])
        for key in MEDIAN_KEYS:
            values = [r[key] for r in results if key in r]
            if values:
                merged[key] = statistics.median(values)
        merged["server"] = {"cpu_s": statistics.median(r["server"]["cpu_s"] for r in results)}
        merged["runs"] = len(results)
        phases[phase] = merged
    return {"phases": phases}


def format_table(feeds: int, systems: dict[str, Any]) -> str:
    header = (
        f"| N={feeds:,} phase | system | feeds/s | wall s | CPU s | CPU ms/feed "
        f"(main + helpers) | peak RSS / PSS MB | outcomes | host CPU s |"
    )
    lines = [header, "|" + "---|" * 9]
    for phase in PHASES:
        for system, data in systems.items():
            r = data["phases"].get(phase)
            if r is None:
                continue
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
            helpers = r["cpu_ms_per_feed"] - r["main_ms_per_feed"]
            lines.append(
                f"| {phase} | {system} | {r['feeds_per_s']:,.0f} | {r['wall_s']:.2f} | "
                f"{r['cpu_s']:.2f} | {r['cpu_ms_per_feed']:.2f} ({r['main_ms_per_feed']:.2f} + "
                f"{helpers:.2f}) | {r['maxrss_mb']:.0f} / {r.get('pss_mb', 0):.0f} | "
                f"{outcomes} | {r['server']['cpu_s']:.2f} |"
            )
        theirs = systems.get("reader", {}).get("phases", {}).get(phase)
        for system, data in systems.items():
            ours = data["phases"].get(phase)
            if system == "reader" or theirs is None or ours is None:
                continue
            speed = ours["feeds_per_s"] / theirs["feeds_per_s"]
            lines.append(
                f"| {phase} | **{system}/reader** | **{speed:.2f}×**"
                f" | {ours['wall_s'] / theirs['wall_s']:.2f}× | "
                f"{ours['cpu_s'] / theirs['cpu_s']:.2f}× | | "
                f"{ours['maxrss_mb'] / theirs['maxrss_mb']:.2f}× | | |"
            )
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    found = {"python": platform.python_version()}
    for name in ("aggregator", "reader", "feedparser", "requests", "urllib3", "sqlalchemy", "nh3"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    # Read-only git queries: which code was measured, and whether the tree had local changes.
    repo = BENCH_DIR.parent
    for key, command in (
        ("commit", ["git", "rev-parse", "--short", "HEAD"]),
        ("local_changes", ["git", "status", "--porcelain", "aggregator"]),
    ):
        try:
            found[key] = subprocess.run(
                command, cwd=repo, capture_output=True, text=True, check=False, timeout=30
            ).stdout.strip()
        except OSError:
            found[key] = "unknown"
    return found


def byte_compile_ours() -> None:
    """Write the .pyc files of the checkout's package, as pip does for an installed one (it
    did for reader). An editable checkout has none where PYTHONDONTWRITEBYTECODE is set, and
    every `poll` process, fork server and `run` service would compile ~0.2 s of modules again
    that no installed copy compiles."""
    spec = importlib.util.find_spec("aggregator")
    if spec is None or spec.origin is None:
        raise SystemExit("the aggregator package is not importable from this interpreter")
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--feeds",
        type=int,
        nargs="+",
        default=[1000],
        help="N, the number of feeds (several values: one run each)",
    )
    parser.add_argument("--workers", type=int, default=8, help="worker threads for both")
    parser.add_argument(
        "--systems",
        default="ours,ours-poll,ours-run,reader",
        help="comma-separated subset of " + ", ".join(SYSTEMS),
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--hosts",
        type=int,
        default=None,
        help="loopback addresses the feeds are spread over (default: N, one feed per host)",
    )
    parser.add_argument(
        "--server",
        choices=KINDS,
        default="asyncio",
        help="feed host implementation (see bench/feedhost.py)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every answer")
    parser.add_argument("--slow-fraction", type=float, default=0.0)
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument(
        "--error-fraction", type=float, default=0.0, help="fraction of feeds answering 500"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=-1,
        help="ours only: AGGREGATOR_POLL_PROCESSES (default: its own default, auto = one per CPU)",
    )
    parser.add_argument(
        "--clustering",
        choices=("exact", "semantic"),
        default="exact",
        help="ours-poll and ours-run: AGGREGATOR_CLUSTERING (semantic: the "
        "model, the service's default)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="ours-run: seconds the service keeps running after the last "
        "phase (its clustering job at work), reporting its peak since start",
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="comma-separated subset of " + ", ".join(PHASES) + " (the "
        "host still changes between the phases left out)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of every system, interleaved; the table shows medians",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the children during the first and 304 polls"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--child", choices=CHILD_SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child_main(args.child, args.port, args.hosts, args.feeds[0], args.workers, args.processes)
        return 0

    systems = [s for s in args.systems.split(",") if s]
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"poll-{stamp}.json"
    profile_dir = RESULTS_DIR if args.profile else None
    report: dict[str, Any] = {
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "versions": _versions(),
        },
        "workers": args.workers,
        "processes": args.processes,
        "seed": args.seed,
        "clustering": args.clustering,
        "server": args.server,
        "runs": {},
    }
    byte_compile_ours()
    for feeds in args.feeds:
        hosts = args.hosts if args.hosts is not None else max(1, feeds // FEEDS_PER_HOST)
        options = HostOptions(
            feeds=feeds,
            seed=args.seed,
            kind=args.server,
            hosts=hosts,
            latency=args.latency_ms / 1000,
            slow_fraction=args.slow_fraction,
            slow_seconds=args.slow_seconds,
            error_fraction=args.error_fraction,
        )
        started = time.perf_counter()
        with HostProcess(options) as host:
            print(
                f"N={feeds}: {hosts} hosts ready on port {host.port} in "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            runs: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
            for repeat in range(args.repeat):
                for system in systems:
                    print(f" run {repeat + 1}/{args.repeat}: {system}", file=sys.stderr, flush=True)
                    runs[system].append(
                        run_system(
                            system,
                            host,
                            feeds,
                            args.workers,
                            args.processes,
                            profile_dir,
                            args.phases.split(","),
                            args.clustering,
                            args.settle,
                        )
                    )
        results = {system: medians(system_runs) for system, system_runs in runs.items()}
        report["runs"][str(feeds)] = {
            "host": asdict(options),
            "repeat": args.repeat,
            "systems": runs,
            "medians": results,
            "load_average": os.getloadavg(),
        }
        print(
            f"N={feeds:,}: medians of {args.repeat} interleaved runs; load average at the "
            f"end {os.getloadavg()[0]:.1f}"
        )
        print(format_table(feeds, results))
        print()
        out.write_text(json.dumps(report, indent=2))
    print(f"figures written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
