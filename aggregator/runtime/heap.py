"""The long-running service's use of the C heap (glibc malloc): how many arenas its threads
share, which blocks get mappings of their own, and handing the pages it freed back to the
system.

Python objects larger than 512 bytes (entry texts, a batch's parameters) and everything SQLite
holds come from malloc; a service thread's batch frees them in the middle of the heap, where
glibc keeps the pages until told otherwise. Elsewhere than glibc these are no-ops.
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameter numbers for the arena limit and the mmap threshold (malloc.h).
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
# Two arenas in all (the main heap and one more): the service's threads take turns on the GIL,
# so more arenas buy little speed, and each keeps freed pages of its own.
ARENA_MAX = 2
# Blocks this large or larger get a mapping of their own, unmapped when freed. glibc starts at
# this size too but raises it to the largest block freed so far (up to 32 MB), after which a
# round's big buffers (worker results, rows) land in the heap between long-lived blocks and
# leave holes there: at N = 10,000 ≈ 5 MB of the service's RSS.
MMAP_THRESHOLD = 128 * 1024


def _libc() -> ctypes.CDLL | None:
    try:
        # The symbols this process already has: no library search at start-up.
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - glibc only: musl and others have no mallopt
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas(count: int = ARENA_MAX) -> bool:
    """Let at most ``count`` malloc arenas exist; call before the service starts its threads
    (an arena once made stays). False where malloc is not glibc's, and when the operator chose
    a limit in glibc's own ``MALLOC_ARENA_MAX``, which stands."""
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, count))


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Keep glibc's mmap threshold at ``size`` instead of letting it grow. False where malloc
    is not glibc's, and when the operator chose one in ``MALLOC_MMAP_THRESHOLD_``."""
    if _LIBC is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, size))


def give_back() -> bool:
    """Return the heap's free pages to the system (``malloc_trim(0)``): True when some were."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))
