"""The one clock: ``utc_now`` and the ``Clock`` type that stages take so tests can set the time.

Pure stages never call the clock themselves; orchestration reads it once and passes ``now`` down.
"""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (every datetime in the project is)."""
    return datetime.now(UTC)
