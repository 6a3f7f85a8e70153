"""Per-host politeness and back-off, shared by every fetch of one process.

Owns ``HostGate``: at most N requests in flight per host, a minimum delay between the starts
of two requests to one host, and the host-wide "not before" time a Retry-After sets. In memory;
the back-off times sit behind ``BackoffStore`` so a database-backed store can share them later.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

DEFAULT_MAX_PER_HOST = 2
DEFAULT_MIN_DELAY = 0.5
# Starts between two sweeps of idle host records: keeps memory flat over 10,000 hosts without
# paying for a sweep on every request.
PRUNE_EVERY_STARTS = 1024


class BackoffStore(Protocol):
    """Where "do not contact this host before" times live (memory now, the database later)."""

    def get(self, host: str) -> datetime | None: ...

    def put(self, host: str, until: datetime) -> None: ...

    def remove(self, host: str) -> None: ...


class MemoryBackoffStore:
    """A ``BackoffStore`` in a dict; it is only touched under ``HostGate``'s lock."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def get(self, host: str) -> datetime | None:
        return self._until.get(host)

    def put(self, host: str, until: datetime) -> None:
        self._until[host] = until

    def remove(self, host: str) -> None:
        self._until.pop(host, None)


@dataclass(eq=False)
class _Host:
    """One host's turns; ``turn`` shares the gate's lock."""

    turn: threading.Condition
    active: int = 0
    waiting: int = 0
    last_start: float | None = None


class HostGate:
    """Admits requests to a host one turn at a time; thread-safe.

    A turn starts when fewer than ``max_per_host`` requests run for that host AND
    ``min_delay`` seconds have passed since the previous start. ``clock`` (monotonic seconds)
    decides that; waiting itself sleeps in real time on a condition, never spinning.
    """

    def __init__(
        self,
        max_per_host: int = DEFAULT_MAX_PER_HOST,
        min_delay: float = DEFAULT_MIN_DELAY,
        clock: Callable[[], float] = time.monotonic,
        *,
        backoff: BackoffStore | None = None,
    ) -> None:
        if max_per_host < 1:
            raise ValueError(f"max_per_host must be at least 1, not {max_per_host}")
        if min_delay < 0 or not math.isfinite(min_delay):
            raise ValueError(f"min_delay must be a finite number >= 0, not {min_delay}")
        self.max_per_host = max_per_host
        self.min_delay = min_delay
        self._clock = clock
        self._backoff: BackoffStore = backoff if backoff is not None else MemoryBackoffStore()
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._starts = 0

    # -- turns ---------------------------------------------------------------------------

    def acquire(self, host: str, timeout: float | None = None) -> bool:
        """Wait for a turn at ``host``; False if none came within ``timeout`` seconds.

        ``timeout`` 0 only tries. Every True must be paired with ``release(host)``.
        """
        key = _key(host)
        give_up = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._lock:
            record = self._record(key)
            record.waiting += 1
            try:
                while True:
                    wait = self._try_start(record)
                    if wait == 0.0:
                        self._after_start()
                        return True
                    if give_up is not None:
                        left = give_up - time.monotonic()
                        if left <= 0:
                            return False
                        wait = min(wait, left)
                    # A finite wait is the delay still owed; an infinite one ends when a
                    # running request releases its turn (release notifies).
                    record.turn.wait(None if math.isinf(wait) else wait)
            finally:
                record.waiting -= 1

    def release(self, host: str) -> None:
        """End a turn taken with ``acquire``."""
        with self._lock:
            record = self._hosts.get(_key(host))
            if record is None or record.active == 0:
                raise RuntimeError(f"release({host!r}) without a matching acquire")
            record.active -= 1
            record.turn.notify_all()

    @contextmanager
    def slot(self, host: str, timeout: float | None = None) -> Iterator[None]:
        """A turn at ``host`` for the ``with`` block; TimeoutError if none within timeout."""
        if not self.acquire(host, timeout):
            raise TimeoutError(f"no turn at {host} within {timeout:g} s")
        try:
            yield
        finally:
            self.release(host)

    def in_flight(self, host: str) -> int:
        """Requests to ``host`` running now (for tests and metrics)."""
        with self._lock:
            record = self._hosts.get(_key(host))
            return record.active if record is not None else 0

    def _record(self, key: str) -> _Host:
        record = self._hosts.get(key)
        if record is None:
            record = self._hosts[key] = _Host(turn=threading.Condition(self._lock))
        return record

    def _try_start(self, record: _Host) -> float:
        """Start a turn (0.0) or say how long to wait before trying again (inf: until a
        release). Called with the lock held."""
        if record.active >= self.max_per_host:
            return math.inf
        now = self._clock()
        if record.last_start is not None:
            owed = record.last_start + self.min_delay - now
            if owed > 0:
                return owed
        record.active += 1
        record.last_start = now
        return 0.0

    def _after_start(self) -> None:
        self._starts += 1
        if self._starts % PRUNE_EVERY_STARTS:
            return
        now = self._clock()
        idle = [
            key
            for key, record in self._hosts.items()
            if record.active == 0
            and record.waiting == 0
            and (record.last_start is None or record.last_start + self.min_delay <= now)
        ]
        for key in idle:
            del self._hosts[key]

    # -- host-wide back-off --------------------------------------------------------------

    def block(self, host: str, until: datetime) -> None:
        """Ask for no request to ``host`` before ``until`` (aware); a later block wins."""
        if until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        key = _key(host)
        with self._lock:
            current = self._backoff.get(key)
            if current is None or until > current:
                self._backoff.put(key, until)

    def blocked_until(self, host: str, now: datetime) -> datetime | None:
        """When ``host`` may be contacted again, or None if it may be now."""
        key = _key(host)
        with self._lock:
            until = self._backoff.get(key)
            if until is None:
                return None
            if until <= now:
                self._backoff.remove(key)
                return None
            return until


def _key(host: str) -> str:
    # Host names are case-insensitive and "example.org." is the same host as "example.org".
    return host.lower().rstrip(".")
