"""A ``Fetcher`` built from the runtime settings, with this process's per-host gate.

Kept apart from the service so poll worker processes can build their fetcher without importing
the web server and the rest of the entry points (it is their fetcher factory).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aggregator.clock import utc_now
from aggregator.polling.fetch.fetcher import Fetcher
from aggregator.polling.hosts import HostGate
from aggregator.settings import Settings


def fetcher_from_settings(settings: Settings, now: Callable[[], datetime] | None = None) -> Fetcher:
    """A fetcher with this process's per-host politeness gate."""
    gate = HostGate(max_per_host=settings.host_concurrency, min_delay=settings.host_delay)
    return Fetcher(
        user_agent=settings.user_agent,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        total_timeout=settings.fetch_deadline,
        max_bytes=settings.max_feed_bytes,
        gate=gate,
        now=now or utc_now,
    )
