"""Start-up benchmark: CPU seconds and peak RSS of `aggregator --help` and of a `poll` that finds
nothing due, this checkout against a baseline checkout, in one run.

    .venv/bin/python bench/startup_bench.py --baseline /path/to/other/.venv/bin/python

Each interpreter runs each command ``--rounds`` times, interleaved (baseline, ours, baseline,
...), so machine load falls on both alike; CPU is user+sys of the child from ``os.wait4``, wall
is from start to exit (on a shared machine it includes waiting for a core: the load average is
printed with the table). ``python -c pass`` is measured the same way as the floor.
The poll runs against a SQLite file at head with ``--sources`` sources, all scheduled an hour
ahead and synced with the catalog, so nothing is to do: it reads the catalog, checks the
schema, the catalog mark and the due sources, and polls nothing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "aggregator --help": ["-m", "aggregator", "--help"],
    "aggregator poll, nothing due": ["-m", "aggregator", "poll"],
}


def _config(folder: Path, sources: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "categories.toml").write_text('[[category]]\nid = "news"\ntitle = "News"\n')
    (folder / "sources.toml").write_text(
        "".join(
            f'[[source]]\nid = "s{i}"\nurl = "http://127.0.0.1:9/{i}.xml"\n'
            f'categories = ["news"]\n\n'
            for i in range(sources)
        )
    )
    return folder


def _env(config: Path, database: Path) -> dict[str, str]:
    # PYTHONSAFEPATH: `-m` would otherwise put the current folder first on sys.path, and both
    # interpreters would import the checkout the benchmark is started from.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env["PYTHONSAFEPATH"] = "1"
    env.update(
        AGGREGATOR_CONFIG=str(config),
        AGGREGATOR_CLUSTERING="exact",
        AGGREGATOR_DATABASE_URL=f"sqlite:///{database}",
    )
    return env


def _prepare(python: str, config: Path, database: Path) -> None:
    """A database at head whose sources are all due an hour from now."""
    env = _env(config, database)
    subprocess.run(
        [python, "-m", "aggregator", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    # A first poll syncs the sources (and fails fast on the closed port 9, with no delay
    # between two requests to the one host) ...
    subprocess.run(
        [python, "-m", "aggregator", "poll", "--all"],
        check=False,
        env={**env, "AGGREGATOR_HOST_DELAY": "0", "AGGREGATOR_CONNECT_TIMEOUT": "1"},
        capture_output=True,
    )
    # ... then none is due.
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE sources SET next_check_at = datetime('now', '+1 hour')")


def _run(python: str, args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """CPU seconds (user+sys), wall seconds and peak RSS in KB of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [python, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{python} {' '.join(args)} failed")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="python of the baseline checkout")
    parser.add_argument("--ours", default=str(Path(".venv/bin/python").absolute()))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sources", type=int, default=1000)
    args = parser.parse_args()
    pythons = {"baseline": args.baseline, "ours": args.ours}
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        config = _config(Path(tmp) / "config", args.sources)
        envs = {}
        for name, python in pythons.items():
            database = Path(tmp) / f"{name}.sqlite"
            _prepare(python, config, database)
            envs[name] = _env(config, database)
        cpu: dict[tuple[str, str], list[float]] = {}
        wall: dict[tuple[str, str], list[float]] = {}
        rss: dict[tuple[str, str], list[int]] = {}
        load = os.getloadavg()[0]
        for _ in range(args.rounds):
            for command, command_args in COMMANDS.items():
                for name, python in pythons.items():
                    seconds, elapsed, peak = _run(python, command_args, envs[name])
                    cpu.setdefault((command, name), []).append(seconds)
                    wall.setdefault((command, name), []).append(elapsed)
                    rss.setdefault((command, name), []).append(peak)
    print(
        f"{args.rounds} interleaved rounds, {args.sources} sources, load average "
        f"{load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; medians of CPU s "
        f"(user+sys), wall s and peak RSS"
    )
    print(
        "| command | baseline CPU s | ours CPU s | baseline/ours | baseline wall s "
        "| ours wall s | baseline RSS MB | ours RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for command in COMMANDS:
        before = statistics.median(cpu[(command, "baseline")])
        after = statistics.median(cpu[(command, "ours")])
        print(
            f"| {command} | {before:.3f} | {after:.3f} | {before / after:.2f}× "
            f"| {statistics.median(wall[(command, 'baseline')]):.3f} "
            f"| {statistics.median(wall[(command, 'ours')]):.3f} "
            f"| {statistics.median(rss[(command, 'baseline')]) / 1024:.0f} "
            f"| {statistics.median(rss[(command, 'ours')]) / 1024:.0f} |"
        )


if __name__ == "__main__":
    main()
