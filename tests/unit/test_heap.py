"""The service's C heap (``runtime.heap``): freed pages go back to the system, on glibc and
nowhere else; the arena limit is glibc's own setting."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from aggregator.runtime import heap

GLIBC = platform.libc_ver()[0] == "glibc"


# Blocks under the mmap threshold, each kept apart by a small live one: freeing the big ones
# leaves 64 MiB of free pages inside the heap, which glibc keeps until a trim. In a process of
# its own, whose heap nothing else has shaped.
_SCRIPT = """
import ctypes
from pathlib import Path
from aggregator.runtime import heap

def rss():
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
big, small = [], []
for _ in range(2048):
    block = libc.malloc(32 * 1024)
    ctypes.memset(block, 1, 32 * 1024)
    big.append(block)
    small.append(libc.malloc(64))
for block in big:
    libc.free(block)
before = rss()
given = heap.give_back()
print(given, before - rss())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc_trim")
def test_freed_heap_pages_go_back_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "True"
    assert int(out[1]) > 32 * 1024  # KiB


# Four threads that each allocate: glibc gives each a heap of its own (64 MiB aligned, the rest
# of its reservation inaccessible) unless the arena limit says otherwise.
_ARENAS = """
import ctypes, sys, threading
from aggregator.runtime import heap

if sys.argv[1] == "limit":
    assert heap.limit_arenas(1)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
kept = []
def work():
    kept.extend(libc.malloc(256) for _ in range(10000))
threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
spans = []
for line in open("/proc/self/maps"):
    fields = line.split()
    low, high = (int(x, 16) for x in fields[0].split("-"))
    spans.append((low, high, fields[1], len(fields) > 5))
print(sum(1 for a, b in zip(spans, spans[1:])
          if a[0] % (64 << 20) == 0 and a[2] == "rw-p" and not a[3]
          and b[2] == "---p" and b[0] == a[1]))
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's arenas")
def test_the_arena_limit_keeps_threads_on_the_shared_heaps() -> None:
    def arenas(mode: str) -> int:
        return int(
            subprocess.run(
                [sys.executable, "-c", _ARENAS, mode],
                capture_output=True,
                text=True,
                check=True,
                env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"},
            ).stdout
        )

    assert arenas("free") >= 2
    assert arenas("limit") == 0


def test_an_operators_own_arena_limit_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.limit_arenas() is False


def test_without_glibc_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_LIBC", None)
    assert heap.give_back() is False
    assert heap.limit_arenas() is False
    assert heap.fix_mmap_threshold() is False


# A 4 MiB block freed raises glibc's own threshold to 4 MiB; the 256 KiB blocks after it then
# come from the heap (no mapping of their own) unless the threshold was fixed.
_THRESHOLD = """
import ctypes, sys
from aggregator.runtime import heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

if sys.argv[1] == "fixed":
    assert heap.fix_mmap_threshold()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
libc.free(libc.malloc(4 << 20))
kept = [libc.malloc(256 << 10) for _ in range(8)]
print(libc.mallinfo2().hblks)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mmap threshold")
def test_the_mmap_threshold_stays_where_it_was_fixed() -> None:
    def mapped_blocks(mode: str) -> int:
        return int(
            subprocess.run(
                [sys.executable, "-c", _THRESHOLD, mode],
                capture_output=True,
                text=True,
                check=True,
                env={k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"},
            ).stdout
        )

    assert mapped_blocks("free") < 8
    assert mapped_blocks("fixed") >= 8


def test_an_operators_own_mmap_threshold_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert heap.fix_mmap_threshold() is False
