"""The polling scheduler: APScheduler 3 runs one ``tick`` job that refreshes due sources.

The database is the schedule (``next_check_at``); the job only asks which sources are due. One
tick runs at a time (``max_instances=1``) and missed ticks coalesce into one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.errors import AggregatorError
from aggregator.refresh import PollSummary, Refresher

log = logging.getLogger(__name__)

TICK_JOB_ID = "tick"
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


def build_scheduler(refresher: Refresher, tick_seconds: int) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        tick, "interval", args=[refresher], seconds=tick_seconds, id=TICK_JOB_ID,
        max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
        misfire_grace_time=tick_seconds,
    )
    return scheduler
