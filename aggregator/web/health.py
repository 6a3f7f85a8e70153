"""Readiness: may this process take traffic? ``/readyz`` asks ``Readiness.check``.

Checks, each named in the answer: the database answers a trivial query within
``DB_TIMEOUT_SECONDS``; its file is sound (SQLite ``quick_check``, every
``INTEGRITY_SECONDS``); the scheduler (when this process runs one) started a tick within
``TICK_GRACE`` tick intervals or is in one now; the most overdue source is less than
``max_lag_seconds`` late; the last archive write succeeded (``disk``). Liveness
(``/healthz``) checks nothing: the process answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from aggregator.clock import utc_now
from aggregator.errors import StoreError
from aggregator.metrics import Metrics
from aggregator.store import Store

# A probe that waits longer than this for the database calls it down: load balancers probe
# every few seconds and must not queue behind a hung connection.
DB_TIMEOUT_SECONDS: Final = 2.0
# A tick may be this many intervals late (a slow machine, a coalesced run) before it counts
# as stopped.
TICK_GRACE: Final = 3
# quick_check reads every page: often enough to notice damage within minutes, rarely enough
# to cost nothing noticeable on a large file.
INTEGRITY_SECONDS: Final = 300.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class ReadyReport:
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "unready",
            "failed": [name for name, check in self.checks.items() if not check.ok],
            "checks": {name: check.as_json() for name, check in self.checks.items()},
        }


def scheduler_check(
    last_started: datetime | None, running: bool, now: datetime, tick_seconds: float
) -> Check:
    """Ticking means a tick is running, or the last one started recently enough."""
    if running:
        return Check(True, "a tick is running")
    if last_started is None:
        return Check(False, "no tick has started yet")
    age = (now - last_started).total_seconds()
    limit = TICK_GRACE * tick_seconds
    if age > limit:
        return Check(False, f"last tick started {age:.0f} s ago (limit {limit:.0f} s)")
    return Check(True, f"last tick started {age:.0f} s ago")


def lag_check(oldest_due: datetime | None, now: datetime, max_lag_seconds: float) -> Check:
    lag = max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0
    if max_lag_seconds > 0 and lag > max_lag_seconds:
        return Check(
            False, f"the most overdue source is {lag:.0f} s late (limit {max_lag_seconds:g} s)"
        )
    return Check(True, f"the most overdue source is {lag:.0f} s late")


class Readiness:
    """Readiness of one process. ``metrics`` carries the scheduler's heartbeat when
    ``tick_seconds`` is given (the process runs a scheduler); without it that check is left out."""

    def __init__(
        self,
        store: Store,
        *,
        metrics: Metrics | None = None,
        tick_seconds: float | None = None,
        max_lag_seconds: float = 0.0,
        db_timeout: float = DB_TIMEOUT_SECONDS,
        clock: Callable[[], datetime] = utc_now,
        write_error: Callable[[], str | None] | None = None,
        integrity_seconds: float = INTEGRITY_SECONDS,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.tick_seconds = tick_seconds
        self.max_lag_seconds = max_lag_seconds
        self.db_timeout = db_timeout
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz")
        self._lock = threading.Lock()
        self._probe: Future[datetime | None] | None = None
        self.write_error = write_error
        self.integrity_seconds = integrity_seconds
        self._integrity: str | None = None
        self._integrity_at: float | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check(self) -> ReadyReport:
        now = self.clock()
        checks: dict[str, Check] = {}
        database, oldest_due = self._database(now)
        checks["database"] = database
        if self.metrics is not None and self.tick_seconds is not None:
            started, running = self.metrics.heartbeat()
            checks["scheduler"] = scheduler_check(started, running, now, self.tick_seconds)
        if database.ok:
            checks["lag"] = lag_check(oldest_due, now, self.max_lag_seconds)
        else:
            checks["lag"] = Check(False, "unknown: the database did not answer")
        if database.ok and self.store.can_quick_check:
            damage = self._integrity
            checks["integrity"] = (
                Check(True, "quick_check ok")
                if damage is None
                else Check(False, f"the database file is damaged: {damage}")
            )
        if self.write_error is not None:
            problem = self.write_error()
            checks["disk"] = (
                Check(True, "the last archive write succeeded")
                if problem is None
                else Check(False, problem)
            )
        return ReadyReport(checks)

    def _database(self, now: datetime) -> tuple[Check, datetime | None]:
        with self._lock:
            # A probe still hung from an earlier request is waited for, not doubled.
            if self._probe is None or self._probe.done():
                self._probe = self._pool.submit(self._query, now)
            probe = self._probe
        try:
            oldest = probe.result(timeout=self.db_timeout)
        except FutureTimeout:
            return Check(False, f"no answer within {self.db_timeout:g} s"), None
        except StoreError as exc:
            return Check(False, str(exc)), None
        return Check(True, "answered"), oldest

    def _query(self, now: datetime) -> datetime | None:
        self.store.ping()
        stamp = time.monotonic()
        if self._integrity_at is None or stamp - self._integrity_at >= self.integrity_seconds:
            self._integrity = self.store.quick_check()
            self._integrity_at = stamp
        try:
            return self.store.oldest_due(now)
        except StoreError as exc:
            # Damage shows first as failing queries; check the file at once, not in minutes.
            if "malformed" in str(exc) or "not a database" in str(exc):
                self._integrity = self.store.quick_check() or str(exc)
                self._integrity_at = stamp
            raise
