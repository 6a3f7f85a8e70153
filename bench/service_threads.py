"""CPU of each thread and memory of a running ``aggregator run``'s main process, sampled.

    .venv/bin/python bench/service_threads.py [--pid PID] [--every 15] [--stacks FILE]

Attaches to ``PID`` (default: the newest ``python -m aggregator run`` on this machine) and
prints, every ``--every`` seconds until it exits, its RSS and PSS and each thread's user+sys
CPU seconds so far (``/proc/PID/task/*/stat``) under its Python name, which ``py-spy dump``
(installed beside this interpreter) reports with each thread's id; ``--stacks`` keeps those
dumps. Python threads do not name their OS threads, so py-spy is the only source of names.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
THREAD_LINE = re.compile(r'^Thread (\d+) \((?:idle|active|[a-z ]+)\): "(.*)"', re.MULTILINE)


def find_service() -> int:
    """The newest process whose command line is ``... -m aggregator run``."""
    found: list[tuple[float, int]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            started = (entry / "stat").stat().st_mtime
        except OSError:
            continue
        if b"-m" in args and b"aggregator" in args and b"run" in args:
            found.append((started, int(entry.name)))
    if not found:
        raise SystemExit("no `aggregator run` process found")
    return max(found)[1]


def thread_cpu(pid: int) -> dict[int, float]:
    """Each thread's user+sys CPU seconds."""
    cpu: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields 14 and 15 of stat (utime, stime); the split starts at field 3.
        cpu[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return cpu


def memory_mb(pid: int) -> tuple[float, float]:
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return rss, pss


def dump(pid: int, py_spy: str) -> str:
    return subprocess.run(
        [py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60, check=False
    ).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, default=None)
    parser.add_argument("--every", type=float, default=15.0)
    parser.add_argument("--stacks", type=Path, default=None, help="append py-spy dumps here")
    args = parser.parse_args(argv)
    pid = args.pid or find_service()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    names: dict[int, str] = {}
    started = time.monotonic()
    print(f"pid {pid}", flush=True)
    while Path(f"/proc/{pid}").exists():
        try:
            stacks = dump(pid, py_spy)
            cpu = thread_cpu(pid)
            rss, pss = memory_mb(pid)
        except (OSError, subprocess.TimeoutExpired):
            break
        names.update((int(tid), name) for tid, name in THREAD_LINE.findall(stacks))
        if args.stacks is not None:
            with args.stacks.open("a") as out:
                out.write(f"=== {time.strftime('%H:%M:%S')}\n{stacks}\n")
        busy = sorted(cpu.items(), key=lambda item: -item[1])
        shown = " ".join(
            f"{names.get(tid, tid)}={seconds:.1f}" for tid, seconds in busy if seconds >= 0.5
        )
        print(
            f"{time.strftime('%H:%M:%S')} t={time.monotonic() - started:.0f}s "
            f"rss={rss:.0f} pss={pss:.0f} total={sum(cpu.values()):.1f} {shown}",
            flush=True,
        )
        time.sleep(args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
