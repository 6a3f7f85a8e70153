"""Prometheus metrics of one process: the one home of ``prometheus_client``.

A ``Metrics`` owns its own registry (never the library's global one), so two services or two
test apps in one process never share a counter. The code that does the work reports through
small methods (``source_polled``, ``clustered``, ``rendered``...); what the store knows
(sources by state, category freshness, scheduler lag) is read at scrape time, a few indexed
queries per scrape. It also keeps the scheduler's heartbeat, which ``/readyz`` reads.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aggregator.clock import Clock, utc_now
from aggregator.errors import StoreError
from aggregator.types import SourceState

if TYPE_CHECKING:
    from aggregator.store import Store
    from aggregator.types import PollOutcome

log = logging.getLogger(__name__)

PREFIX: Final = "aggregator"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Seconds: from a loopback 304 (milliseconds) to a slow origin near the fetch deadline.
FETCH_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The 304 ratio gauge looks at this many latest answered fetches: one tick of a few sources
# would make a per-poll ratio jump between 0 and 1.
RATIO_WINDOW: Final = 1000
# Poll outcomes (``PollOutcome.result``) that are a successful answer, by fetch outcome label.
_ANSWERED: Final = {"updated": "ok", "unchanged": "ok", "not_modified": "not_modified"}
STATES: Final = tuple(s for s in SourceState if s is not SourceState.NEW)


class Metrics:
    """The metrics of one service (or one web app): counters fed by hooks, gauges read from
    ``store`` at scrape time for the categories ``categories()`` names."""

    def __init__(
        self,
        *,
        store: Store | None = None,
        categories: Callable[[], Iterable[str]] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        registry = self.registry
        # process_resident_memory_bytes, process_cpu_seconds_total... (Linux /proc).
        ProcessCollector(registry=registry)

        def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(f"{PREFIX}_{name}", documentation, labels, registry=registry)

        self.fetches = counter(
            "fetches",
            "Sources polled, by outcome: ok, not_modified, deferred, or the error "
            "kind (http, timeout, connection, parse, malformed, empty, gone...)",
            ["outcome"],
        )
        self.fetch_seconds = Histogram(
            f"{PREFIX}_fetch_duration_seconds",
            "Time of each HTTP exchange that got a feed answer (200 or 304)",
            buckets=FETCH_BUCKETS,
            registry=registry,
        )
        self.entries_created = counter("entries_created", "Entries stored for the first time")
        self.entries_updated = counter("entries_updated", "Stored entries whose content changed")
        self.stories_created = counter(
            "stories_created", "Entries the clustering stage settled as the first of a new story"
        )
        self.merges = counter(
            "dedup_merges",
            "Entries the clustering stage put in an existing story, by the signal "
            "that decided it (url, content_hash, embedding, minhash, editor_pin...)",
            ["signal"],
        )
        self.renders = counter(
            "output_renders",
            "Output documents rendered, by kind (feed, page, archive, opml, index)",
            ["kind"],
        )
        self.cache_hits = counter(
            "output_cache_hits", "Output requests answered from memory without reading the store"
        )
        self.not_modified_ratio = Gauge(
            f"{PREFIX}_fetch_not_modified_ratio",
            f"Share of 304 answers among the last {RATIO_WINDOW} answered fetches",
            registry=registry,
        )
        self.not_modified_ratio.set_function(self._ratio)
        self.last_tick = Gauge(
            f"{PREFIX}_scheduler_last_tick_timestamp_seconds",
            "Unix time the scheduler last started a tick",
            registry=registry,
        )
        self._answers: deque[bool] = deque(maxlen=RATIO_WINDOW)
        self._lock = threading.Lock()
        self._tick_started: datetime | None = None
        self._ticks_running = 0
        if store is not None:
            registry.register(StoreCollector(store, categories or (lambda: ()), self.now))

    def now(self) -> datetime:
        # Read at each call, so a clock set after construction (tests pin one) is the one used.
        return self.clock()

    # -- hooks -----------------------------------------------------------------------------

    def source_polled(self, outcome: PollOutcome) -> None:
        """One source's poll outcome, counted in the process that saves it."""
        answered = _ANSWERED.get(outcome.result)
        if answered is not None:
            label = answered
            with self._lock:
                self._answers.append(answered == "not_modified")
        elif outcome.result == "error":
            label = outcome.error_kind or "error"
        else:
            label = outcome.result
        self.fetches.labels(label).inc()
        if outcome.new_entries:
            self.entries_created.inc(outcome.new_entries)
        if outcome.updated_entries:
            self.entries_updated.inc(outcome.updated_entries)

    def fetched(self, seconds: float) -> None:
        self.fetch_seconds.observe(seconds)

    def clustered(self, signals: Mapping[str, int]) -> None:
        """A committed clustering batch: entries by the signal that placed them ("new" for
        those that started a story)."""
        for signal, count in signals.items():
            if signal == "new":
                self.stories_created.inc(count)
            else:
                self.merges.labels(signal).inc(count)

    def rendered(self, kind: str) -> None:
        self.renders.labels(kind).inc()

    def cache_hit(self) -> None:
        self.cache_hits.inc()

    def tick_started(self, now: datetime) -> None:
        with self._lock:
            self._tick_started = now
            self._ticks_running += 1
        self.last_tick.set(now.timestamp())

    def tick_finished(self) -> None:
        with self._lock:
            self._ticks_running -= 1

    def heartbeat(self) -> tuple[datetime | None, bool]:
        """When the scheduler last started a tick, and whether one is running now."""
        with self._lock:
            return self._tick_started, self._ticks_running > 0

    # -- exposition ------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def _ratio(self) -> float:
        with self._lock:
            answers = list(self._answers)
        return sum(answers) / len(answers) if answers else 0.0


class StoreCollector(Collector):
    """Gauges read from the store at scrape time; a store outage leaves them out (and logs)
    rather than failing the whole scrape."""

    def __init__(self, store: Store, categories: Callable[[], Iterable[str]], clock: Clock) -> None:
        self.store = store
        self.categories = categories
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        # Named here so registering never queries the store.
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        try:
            gauges = self.store.gauges(now, tuple(self.categories()))
        except StoreError as exc:
            log.warning("action=metrics outcome=error error=%r", str(exc))
            return
        states, freshness, lag = _families()
        for state in sorted(set(STATES) | set(gauges.sources_by_state)):
            states.add_metric([state], gauges.sources_by_state.get(state, 0))
        for category, newest in sorted(gauges.newest_by_category.items()):
            if newest is not None:
                freshness.add_metric([category], max(0.0, (now - newest).total_seconds()))
        oldest = gauges.oldest_due
        lag.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield from (states, freshness, lag)


def _families() -> Sequence[GaugeMetricFamily]:
    return (
        GaugeMetricFamily(f"{PREFIX}_sources", "Sources by state", labels=["state"]),
        GaugeMetricFamily(
            f"{PREFIX}_category_newest_item_age_seconds",
            "Age of the newest item (its published time) in each category",
            labels=["category"],
        ),
        GaugeMetricFamily(
            f"{PREFIX}_scheduler_lag_seconds",
            "How late the most overdue active source is (0: none is overdue)",
        ),
    )
