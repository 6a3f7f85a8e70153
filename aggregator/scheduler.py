"""The scheduler: APScheduler 3 runs a ``tick`` job that refreshes due sources and a
``cluster`` job that clusters what the ticks stored, each on its own thread.

The database is the schedule (``next_check_at``, ``clustered_at``). Each job runs one instance at
a time (``max_instances=1``), missed runs coalesce, and a slow model never delays polling.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.clustering import ClusteringStage, StageSummary
from aggregator.errors import AggregatorError
from aggregator.refresh import PollSummary, Refresher

log = logging.getLogger(__name__)

TICK_JOB_ID = "tick"
CLUSTER_JOB_ID = "cluster"
# The clustering job looks for pending entries this often at most (less when ticks are rarer):
# one indexed query when there is nothing to do.
CLUSTER_SECONDS = 10
SHUTDOWN_WAIT = True


def tick(refresher: Refresher) -> PollSummary | None:
    """One pass over due sources; errors are logged so the next tick still runs."""
    now = refresher.clock()
    try:
        due = refresher.store.due_sources(now)
        if not due:
            return None
        summary = refresher.poll(due)
    except AggregatorError as exc:
        log.error("action=tick outcome=error error=%r", str(exc))
        return None
    log.info("action=tick outcome=done sources=%d new=%d updated=%d errors=%d",
             len(summary.outcomes), summary.new_entries, summary.updated_entries,
             summary.errors)
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


def build_scheduler(refresher: Refresher, tick_seconds: int,
                    stage: ClusteringStage | None = None) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        tick, "interval", args=[refresher], seconds=tick_seconds, id=TICK_JOB_ID,
        max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
        misfire_grace_time=tick_seconds,
    )
    if stage is not None:
        every = min(tick_seconds, CLUSTER_SECONDS)
        scheduler.add_job(
            cluster, "interval", args=[stage, refresher], seconds=every, id=CLUSTER_JOB_ID,
            max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
            misfire_grace_time=every,
        )
    return scheduler
