"""The scheduler: APScheduler 3 runs a ``tick`` job that refreshes due sources, a ``cluster``
job that clusters what the ticks stored, a ``full_text`` job that fetches the article pages of
opted-in sources, a ``heap`` job that hands freed memory back, and (with retention on) a daily
``prune`` job, each on its own thread. On
PostgreSQL a tick claims its sources (``claiming``), so any number of processes may run these
jobs against one database.

The database is the schedule (``next_check_at``, ``clustered_at``). Each job runs one instance at
a time (``max_instances=1``), missed runs coalesce, and a slow model never delays polling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from aggregator.clock import utc_now
from aggregator.clustering import ClusteringStage, StageSummary
from aggregator.errors import AggregatorError
from aggregator.metrics import Metrics
from aggregator.polling.due import poll_due
from aggregator.polling.fulltext import FullTextStage, FullTextSummary
from aggregator.polling.poller import PollSummary, Refresher
from aggregator.runtime import heap, retention
from aggregator.runtime.retention import PruneSummary
from aggregator.store import Store

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("aggregator.scheduler")

TICK_JOB_ID = "tick"
CLUSTER_JOB_ID = "cluster"
# The clustering job looks for pending entries this often at most (less when ticks are rarer):
# one indexed query when there is nothing to do.
CLUSTER_SECONDS = 10
SHUTDOWN_WAIT = True
FULL_TEXT_JOB_ID = "full_text"
# The full-text job looks for article pages due a check this often at most: one indexed query
# when there is nothing to do.
FULL_TEXT_SECONDS = 30
HEAP_JOB_ID = "heap"
# The heap's freed pages go back to the system this often: a poll round's saves free entry
# texts and SQLite pages all through the heap, and glibc keeps them (``runtime.heap``). A few
# milliseconds of CPU a minute.
HEAP_SECONDS = 5
PRUNE_JOB_ID = "prune"
# Retention runs once a day, the first time a little after start (not in the way of the first
# poll). Every worker runs it; its batches serialize on the clustering lock and a second run
# the same day finds little left.
PRUNE_SECONDS = 24 * 3600
PRUNE_FIRST_DELAY_SECONDS = 10 * 60
# A failed tick's retries: 1 s, then twice as long each time, at most a minute apart.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0


class Backoff:
    """After a failed tick (the database unreachable, say), the next ones wait 1, 2, 4… s, up
    to ``most``, before trying again; a tick that works starts afresh."""

    def __init__(
        self,
        first: float = BACKOFF_FIRST_SECONDS,
        most: float = BACKOFF_MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first = first
        self.most = most
        self.clock = clock
        self._delay = 0.0
        self._until = float("-inf")

    def ready(self) -> bool:
        return self.clock() >= self._until

    def failed(self) -> float:
        self._delay = min(self.most, self._delay * 2 if self._delay else self.first)
        self._until = self.clock() + self._delay
        return self._delay

    def succeeded(self) -> None:
        self._delay, self._until = 0.0, float("-inf")


def _round_started(due: int) -> None:
    """Logged when a tick finds sources due, so a round's length reads from the log (the
    ``run`` figures of ``bench/poll_bench.py`` do); a tick with none due says nothing."""
    log.info("action=tick outcome=start sources=%d", due)


def tick(
    refresher: Refresher, metrics: Metrics | None = None, backoff: Backoff | None = None
) -> PollSummary | None:
    """One pass over due sources; errors are logged so the next tick still runs.

    ``metrics`` gets the heartbeat ``/readyz`` reads: when the tick started, while it runs.
    With ``backoff``, ticks after a failure skip until it says to try again. When workers
    share the database (``refresher.lease``), the tick claims its sources in batches.
    """
    now = refresher.clock()
    if metrics is not None:
        metrics.tick_started(now)
        try:
            return tick(refresher, None, backoff)
        finally:
            metrics.tick_finished()
    if backoff is not None and not backoff.ready():
        return None
    try:
        summary = poll_due(refresher, progress=_round_started)
        if not summary.outcomes:
            if backoff is not None:
                backoff.succeeded()
            return None
    except AggregatorError as exc:
        if backoff is None:
            log.error("action=tick outcome=error error=%r", str(exc))
        else:
            log.error(
                "action=tick outcome=error retry_in=%.0fs error=%r", backoff.failed(), str(exc)
            )
        return None
    if backoff is not None:
        backoff.succeeded()
    log.info(
        "action=tick outcome=done sources=%d new=%d updated=%d errors=%d",
        len(summary.outcomes),
        summary.new_entries,
        summary.updated_entries,
        summary.errors,
    )
    return summary


def cluster(stage: ClusteringStage, refresher: Refresher | None = None) -> StageSummary | None:
    """Cluster what is pending; errors are logged so the next run still happens.

    Waits while a poll is running, and pauses between batches when one starts: entries are
    then clustered once their whole poll is stored, so the outcome does not depend on which
    feed happened to answer first (the stage never delays the poll, only itself).
    """
    polling = refresher.is_polling if refresher is not None else None
    if polling is not None and polling():
        return None
    try:
        return stage.run(pause=polling)
    except AggregatorError as exc:
        log.error("action=cluster outcome=error error=%r", str(exc))
        return None


def full_text(stage: FullTextStage) -> FullTextSummary | None:
    """Fetch the article pages due a check; errors are logged so the next run still happens."""
    try:
        return stage.run()
    except AggregatorError as exc:
        log.error("action=full_text outcome=error error=%r", str(exc))
        return None


def prune(store: Store, days: int, stop: Callable[[], bool] | None = None) -> PruneSummary | None:
    """The daily retention job; errors are logged so the next day's run still happens."""
    try:
        return retention.prune(store, days=days, now=utc_now(), stop=stop)
    except AggregatorError as exc:
        log.error("action=prune outcome=error error=%r", str(exc))
        return None


def build_scheduler(
    current: Callable[[], Refresher],
    tick_seconds: int,
    stage: ClusteringStage | None = None,
    metrics: Metrics | None = None,
    *,
    retention_days: int = 0,
    tick_job: Callable[[], object] | None = None,
    full_text_stage: FullTextStage | None = None,
) -> BackgroundScheduler:
    """The jobs, each asking ``current()`` for the refresher when it runs (a live reload may
    replace it); ``tick_job`` replaces the plain ``tick`` (the service takes up a reloaded
    catalog there, between two polls)."""
    # Imported here: only `run` schedules, and `poll` starts sooner without it.
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415

    scheduler = BackgroundScheduler(timezone=UTC)
    backoff = Backoff()
    scheduler.add_job(
        tick_job or (lambda: tick(current(), metrics, backoff)),
        "interval",
        seconds=tick_seconds,
        id=TICK_JOB_ID,
        max_instances=1,
        coalesce=True,
        next_run_time=utc_now(),
        misfire_grace_time=tick_seconds,
    )
    scheduler.add_job(
        heap.give_back,
        "interval",
        seconds=HEAP_SECONDS,
        id=HEAP_JOB_ID,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=HEAP_SECONDS,
    )
    if retention_days > 0:
        scheduler.add_job(
            prune,
            "interval",
            args=[current().store, retention_days, lambda: current().stopping],
            seconds=PRUNE_SECONDS,
            id=PRUNE_JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=PRUNE_SECONDS,
            next_run_time=utc_now() + timedelta(seconds=PRUNE_FIRST_DELAY_SECONDS),
        )
    if full_text_stage is not None:
        every = min(tick_seconds, FULL_TEXT_SECONDS)
        scheduler.add_job(
            full_text,
            "interval",
            args=[full_text_stage],
            seconds=every,
            id=FULL_TEXT_JOB_ID,
            max_instances=1,
            coalesce=True,
            next_run_time=utc_now(),
            misfire_grace_time=every,
        )
    if stage is not None:
        every = min(tick_seconds, CLUSTER_SECONDS)
        scheduler.add_job(
            lambda: cluster(stage, current()),
            "interval",
            seconds=every,
            id=CLUSTER_JOB_ID,
            max_instances=1,
            coalesce=True,
            next_run_time=utc_now(),
            misfire_grace_time=every,
        )
    return scheduler
