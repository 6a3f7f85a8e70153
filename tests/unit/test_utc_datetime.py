"""The store's UTC datetime column type: on SQLite its one-step bind processor writes exactly
the text that the decorator followed by SQLite's DATETIME processor wrote."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from aggregator.store.models import UTCDateTime


def test_sqlite_binds_the_text_the_two_step_processor_wrote() -> None:
    dialect = sqlite.dialect()
    fast = UTCDateTime().bind_processor(dialect)
    impl = sa.DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert fast is not None
    assert impl is not None
    decorator = UTCDateTime()
    rng = random.Random(19)
    for _ in range(5000):
        moment = datetime(1, 1, 2, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(315_000_000_000), microseconds=rng.randrange(10**6)
        )
        offset = timezone(timedelta(minutes=30 * rng.randrange(-24, 27)))
        for value in (moment, moment.astimezone(offset)):
            assert fast(value) == impl(decorator.process_bind_param(value, dialect))
    assert fast(None) is None
    assert fast(datetime(2025, 6, 1, 12, 30, tzinfo=UTC)) == "2025-06-01 12:30:00.000000"
    with pytest.raises(ValueError, match="naive"):
        fast(datetime(2025, 6, 1))
