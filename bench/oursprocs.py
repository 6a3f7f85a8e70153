"""Ours as a user runs it, for ``poll_bench``: ``ours-poll`` runs ``aggregator poll --all
--json`` as a new process for each phase (as cron does), ``ours-run`` keeps one
``aggregator run`` service and times its poll rounds from its log (``action=tick
outcome=start`` to ``outcome=done``) after the benchmark makes every source due.

CPU is user+sys of the whole process tree (the command, its fork server and poll workers);
``main_cpu_s`` is the command's own process, the rest is its helpers. Memory is the tree's
peak sum of RSS, PSS and USS, sampled (``proctree``). Run as a script, this module is the
``poll`` process itself: ``oursprocs.py USAGE_FILE ARGS...`` runs ``aggregator ARGS`` and
writes its CPU figures to USAGE_FILE.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import proctree

BENCH_DIR = Path(__file__).resolve().parent
ROUND_TIMEOUT_SECONDS = 3600
CATEGORIES_TOML = """[[category]]
id = "world"
title = "World news"

[[category]]
id = "tech"
title = "Technology"
include = ["software", "semiconductor", "/open\\\\s+source/"]
exclude = ["football"]
"""


def write_config(folder: Path, urls: list[str]) -> Path:
    """The editorial files of the in-process benchmark's catalog: same ids, same rules."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "categories.toml").write_text(CATEGORIES_TOML)
    (folder / "sources.toml").write_text(
        "".join(
            f'[[source]]\nid = "feed-{i:05d}"\nurl = "{url}"\ncategories = ["world", "tech"]\n\n'
            for i, url in enumerate(urls)
        )
    )
    return folder


def service_env(
    workdir: Path, workers: int, processes: int, clustering: str = "exact"
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        AGGREGATOR_CONFIG=str(workdir / "config"),
        AGGREGATOR_DATABASE_URL=f"sqlite:///{workdir / 'ours.db'}",
        AGGREGATOR_CLUSTERING=clustering,
        AGGREGATOR_FETCH_WORKERS=str(workers),
        # Every feed is on loopback and reader has no per-host limit: the gate opened to the
        # worker count, as in the in-process benchmark.
        AGGREGATOR_HOST_CONCURRENCY=str(workers),
        AGGREGATOR_HOST_DELAY="0",
        AGGREGATOR_LOG_LEVEL="INFO",
        PYTHONWARNINGS="ignore",
        # `-m` would otherwise put the current folder first on sys.path, and a baseline's
        # python would import the checkout the benchmark is started from.
        PYTHONSAFEPATH="1",
    )
    if processes >= 0:
        env["AGGREGATOR_POLL_PROCESSES"] = str(processes)
    return env


def _prepare(
    urls: list[str], workers: int, processes: int, system: str, clustering: str = "exact"
) -> tuple[Path, dict[str, str]]:
    workdir = Path(tempfile.mkdtemp(prefix=f"poll-bench-{system}-"))
    write_config(workdir / "config", urls)
    env = service_env(workdir, workers, processes, clustering)
    subprocess.run(
        [sys.executable, "-m", "aggregator", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    return workdir, env


class PollProcess:
    """``aggregator poll --all --json``, a new process per phase."""

    def __init__(
        self, urls: list[str], workers: int, processes: int, clustering: str = "exact"
    ) -> None:
        self.workdir, self.env = _prepare(urls, workers, processes, "ours-poll", clustering)
        self.setup: dict[str, Any] = {"ready": True}

    def poll(self) -> dict[str, Any]:
        usage_file = self.workdir / "usage.json"
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                str(usage_file),
                "poll",
                "--all",
                "--json",
            ],
            # PYTHONSAFEPATH keeps the script's folder off sys.path: this module needs proctree.
            env={**self.env, "PYTHONPATH": str(BENCH_DIR)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        memory = proctree.PeakMemory(process.pid)
        out, _ = process.communicate(timeout=ROUND_TIMEOUT_SECONDS)
        wall = time.perf_counter() - started
        memory.stop()
        if process.returncode not in (0, 1):
            raise RuntimeError(f"poll exited {process.returncode}")
        summary = json.loads(out.strip().splitlines()[-1])
        usage = json.loads(usage_file.read_text())
        peak = memory.peak()
        return {
            "wall_s": wall,
            "cpu_s": usage["cpu_s"],
            "main_cpu_s": usage["main_cpu_s"],
            "maxrss_mb": peak.rss_mb,
            "pss_mb": peak.pss_mb,
            "uss_mb": peak.uss_mb,
            "processes": peak.processes,
            "outcomes": {k: v for k, v in summary["results"].items() if v},
            "new_entries": summary["new_entries"],
            "clustered": summary["clustered"]["entries"],
        }

    def close(self) -> None:
        subprocess.run(["rm", "-rf", str(self.workdir)], check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunService:
    """One ``aggregator run``; each ``poll()`` makes every source due and times the round.
    Besides each round's peak memory, it reports the peak since the service started
    (``session_*``): with the model (``clustering="semantic"``), the clustering job loads
    and runs it between two rounds."""

    def __init__(
        self, urls: list[str], workers: int, processes: int, clustering: str = "exact"
    ) -> None:
        self.workdir, env = _prepare(urls, workers, processes, "ours-run", clustering)
        self.env = {**env, "AGGREGATOR_TICK_SECONDS": "1", "AGGREGATOR_PORT": str(_free_port())}
        self.database = self.workdir / "ours.db"
        self.process: subprocess.Popen[str] | None = None
        self.memory: proctree.PeakMemory | None = None
        self.session: proctree.PeakMemory | None = None
        self.lines: queue.Queue[tuple[str, dict[int, float]]] = queue.Queue()
        self.setup: dict[str, Any] = {"ready": True}

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "run"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.memory = proctree.PeakMemory(self.process.pid)
        self.session = proctree.PeakMemory(self.process.pid)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        """The round's start and end lines, each with the tree's CPU when it was read."""
        assert process.stderr is not None
        for line in process.stderr:
            if "action=tick outcome=start" in line or "action=tick outcome=done" in line:
                self.lines.put((line, proctree.tree_cpu(process.pid)))
            elif "Traceback" in line or "outcome=error" in line:
                print(f"  run: {line.rstrip()}", file=sys.stderr)

    def _next(self, marker: str) -> tuple[str, dict[int, float]]:
        deadline = time.monotonic() + ROUND_TIMEOUT_SECONDS
        while True:
            line, cpu = self.lines.get(timeout=max(1.0, deadline - time.monotonic()))
            if marker in line:
                return line, cpu

    def poll(self) -> dict[str, Any]:
        if self.process is None:
            self._start()  # its first tick finds every source due
        else:
            moment = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            with sqlite3.connect(self.database, timeout=60) as connection:
                connection.execute("UPDATE sources SET next_check_at = ?", (moment,))
        assert self.process is not None
        assert self.memory is not None
        start_line, before = self._next("outcome=start")
        self.memory.reset()
        done_line, after = self._next("outcome=done")
        self.memory.sample()
        peak = self.memory.peak()
        assert self.session is not None
        self.session.sample()
        session = self.session.peak()
        wall = (_stamp(done_line) - _stamp(start_line)).total_seconds()
        root = self.process.pid
        cpu = sum(after.values()) - sum(v for pid, v in before.items() if pid in after)
        fields = dict(part.split("=", 1) for part in done_line.split() if "=" in part)
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "main_cpu_s": after[root] - before[root],
            "maxrss_mb": peak.rss_mb,
            "pss_mb": peak.pss_mb,
            "uss_mb": peak.uss_mb,
            "processes": peak.processes,
            "by_process": peak.parts,
            "session_rss_mb": session.rss_mb,
            "session_pss_mb": session.pss_mb,
            "session_by_process": session.parts,
            "outcomes": {"sources": int(fields["sources"]), "errors": int(fields["errors"])},
            "new_entries": int(fields["new"]),
        }

    def settle(self, seconds: float) -> dict[str, Any]:
        """Keep the service running ``seconds`` more (its clustering job works through what
        the rounds stored) and return its peak memory since it started."""
        assert self.session is not None
        time.sleep(seconds)
        self.session.sample()
        peak = self.session.peak()
        return {
            "seconds": seconds,
            "session_rss_mb": peak.rss_mb,
            "session_pss_mb": peak.pss_mb,
            "session_by_process": peak.parts,
        }

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.memory is not None:
            self.memory.stop()
        if self.session is not None:
            self.session.stop()
        subprocess.run(["rm", "-rf", str(self.workdir)], check=False)


def _stamp(line: str) -> datetime:
    """The time at the head of a text log line: ``2026-12-07T07:35:23.563Z``."""
    return datetime.strptime(line.split(maxsplit=1)[0], "%Y-%m-%dT%H:%M:%S.%fZ")


def _poll_child(usage_file: str, args: list[str]) -> int:
    from aggregator.cli import main  # noqa: PLC0415

    code = main(args)
    time.sleep(0.3)  # the fork server reaps its workers, so their CPU is in its figures
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    helpers = sum(proctree.tree_cpu(os.getpid()).values()) - proctree.cpu_seconds(os.getpid())
    main_cpu = own.ru_utime + own.ru_stime
    Path(usage_file).write_text(
        json.dumps(
            {
                "main_cpu_s": main_cpu,
                "cpu_s": main_cpu + reaped.ru_utime + reaped.ru_stime + helpers,
            }
        )
    )
    return code


if __name__ == "__main__":
    sys.exit(_poll_child(sys.argv[1], sys.argv[2:]))
