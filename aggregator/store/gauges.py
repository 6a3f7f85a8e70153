"""The store's operational gauges: sources by state, each category's newest item, the most
overdue source. Read at every metrics scrape and readiness probe, so each is one indexed query
(``sources.state``, ``sources.next_check_at``, ``entries.published_at``), never a table scan
that grows with the entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.models import UTCDateTime
from aggregator.store.tables import CATEGORIES, ENTRIES, SOURCES
from aggregator.types import SourceState


@dataclass(frozen=True)
class StoreGauges:
    sources_by_state: dict[str, int]
    # None: the category has no entry yet.
    newest_by_category: dict[str, datetime | None]
    # The earliest next_check_at of an active source that is due (None: none is due).
    oldest_due: datetime | None


def oldest_due(connection: Connection, now: datetime) -> datetime | None:
    moment = connection.execute(
        sa.select(sa.func.min(SOURCES.c.next_check_at)).where(
            SOURCES.c.state == SourceState.ACTIVE,
            SOURCES.c.next_check_at <= sa.bindparam("now", now, type_=UTCDateTime()),
        )
    ).scalar()
    return moment


def read_gauges(connection: Connection, now: datetime, categories: Sequence[str]) -> StoreGauges:
    by_state = {
        state: count
        for state, count in connection.execute(
            sa.select(SOURCES.c.state, sa.func.count()).group_by(SOURCES.c.state)
        )
    }
    newest: dict[str, datetime | None] = {}
    for category in categories:
        # Newest first down the published_at index, stopping at the first entry of the
        # category: cheap for any category that is alive, which is the one that matters.
        newest[category] = connection.execute(
            sa.select(ENTRIES.c.published_at)
            .join(CATEGORIES, CATEGORIES.c.entry_id == ENTRIES.c.id)
            .where(CATEGORIES.c.category_id == category)
            .order_by(ENTRIES.c.published_at.desc())
            .limit(1)
        ).scalar()
    return StoreGauges(by_state, newest, oldest_due(connection, now))
