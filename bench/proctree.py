"""A process and its descendants, read from /proc: their CPU seconds and their memory (sum of
RSS, of PSS and of USS), sampled in a thread so a peak between two reads of the benchmark is
still seen. Linux only; used by ``poll_bench`` for the ``poll`` process and ``run`` service.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.25


def tree(root: int) -> list[int]:
    """``root`` and its live descendants (poll workers are grandchildren, under a fork
    server)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found = [root]
    for pid in found:  # grows while walking: breadth first
        found.extend(child for child, parent in parents.items() if parent == pid)
    return found


def cpu_seconds(pid: int) -> float:
    """User+sys CPU of ``pid`` and of its children it has waited for (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime: fields 14-17 of proc(5), 11-14 after the command name.
    return sum(int(value) for value in fields[11:15]) / _TICK


def tree_cpu(root: int) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in tree(root)}


@dataclass
class Memory:
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    uss_mb: float = 0.0
    processes: int = 0
    # Each process's "role RSS/PSS/USS" when the tree's PSS sum was at its peak.
    parts: list[str] = field(default_factory=list)


def role(pid: int, root: int) -> str:
    """What a process of the tree is: the command itself, multiprocessing's helpers, or a
    poll worker (a child of the fork server, whose command line it shares)."""
    if pid == root:
        return "main"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return "gone"
    if "resource_tracker" in command:
        return "tracker"
    if "forkserver" in command:
        return "forkserver" if parent == root else "worker"
    return "other"


def tree_memory(root: int) -> Memory:
    """The tree's memory now: RSS counts shared pages once per process, PSS splits them
    between the processes sharing them, USS counts only each process's own pages."""
    total = Memory()
    for pid in tree(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        values = {}
        for line in text.splitlines()[1:]:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[name] = int(parts[0])
        total.rss_mb += values.get("Rss", 0) / 1024
        total.pss_mb += values.get("Pss", 0) / 1024
        total.uss_mb += (values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)) / 1024
        total.processes += 1
        own = values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
        total.parts.append(
            f"{role(pid, root)} {values.get('Rss', 0) / 1024:.0f}/"
            f"{values.get('Pss', 0) / 1024:.0f}/{own / 1024:.0f}"
        )
    return total


class PeakMemory:
    """Samples ``tree_memory(root)`` until stopped; ``peak()`` is the largest sum of each."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._peak = Memory()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_SECONDS)

    def sample(self) -> None:
        now = tree_memory(self.root)
        with self._lock:
            self._peak.rss_mb = max(self._peak.rss_mb, now.rss_mb)
            if now.pss_mb > self._peak.pss_mb:
                self._peak.parts = now.parts
            self._peak.pss_mb = max(self._peak.pss_mb, now.pss_mb)
            self._peak.uss_mb = max(self._peak.uss_mb, now.uss_mb)
            self._peak.processes = max(self._peak.processes, now.processes)

    def reset(self) -> None:
        with self._lock:
            self._peak = Memory()

    def peak(self) -> Memory:
        with self._lock:
            return Memory(**{**vars(self._peak), "parts": list(self._peak.parts)})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
