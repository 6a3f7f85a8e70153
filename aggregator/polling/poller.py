"""A poll: every due source through fetch → prepare (parse, normalize, classify) → store.

Each URL is fetched once per poll however many sources share it, and its sources get one
schedule (``_as_group``), so they stay due together. A small poll fetches on a
thread pool and prepares inline; a big one, when worker processes are configured, fetches and
prepares in them (``pollworkers``) so every core works. Saving always runs on the calling
thread, so the store sees one writer, a batch of feeds per transaction (``SAVE_BATCH``). In-flight
work is bounded, so memory stays flat however many sources are due. A failure is recorded on the
source's row and never stops the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from aggregator.catalog import Catalog, CategoryConfig
from aggregator.clock import Clock, utc_now
from aggregator.errors import FetchError, ParseError, SourceError, StoreError
from aggregator.metrics import Metrics
from aggregator.polling.discover import discover_feeds
from aggregator.polling.fetch import Fetcher
from aggregator.polling.prepared import PreparedFeed
from aggregator.polling.schedule import (
    cache_lifetime,
    next_check_after_error,
    next_check_after_success,
)
from aggregator.polling.workers import (
    INFLIGHT_PER_THREAD,
    Fetched,
    FetcherFactory,
    PollWorkers,
    Prepared,
    digest_of,
    fetch_group,
    prepare_for,
)
from aggregator.store import PollSave, Store
from aggregator.store.leases import Lease, host_of
from aggregator.types import FetchOptions, FetchResult, PollOutcome, PollResult, SourceStatus

log = logging.getLogger("aggregator.refresh")

# Below this many URLs a poll stays in this process: starting workers would cost more.
PROCESS_POLL_MIN_URLS = 64
# After this many 404s in a row, look for the feed on the site's home page.
NOT_FOUND_DISCOVERY_AFTER = 3
# Not-modified sources saved per transaction.
UNCHANGED_BATCH = 200
# Fetched feeds saved per transaction: a batch is saved when it holds this many feeds or
# entries, when its oldest feed has waited SAVE_BATCH_SECONDS (so a slow poll still shows its
# news soon), and when the poll ends or stops.
SAVE_BATCH = 50
SAVE_BATCH_ENTRIES = 2000
SAVE_BATCH_SECONDS = 2.0
# Answers whose Retry-After holds the whole host for every worker (``Store.hold_host``).
HOST_HOLD_STATUSES = frozenset({429, 503})
# Error kinds of a body that parsed to no entries: not well-formed XML, or a well-formed
# feed that lists nothing.
MALFORMED = "malformed"
EMPTY = "empty"
# How ``parse`` words a SAX (well-formedness) error; other bozo notes, such as a declared
# encoding that was overridden, leave the document readable.
_XML_ERROR_PREFIX = "XML error"


@dataclass(frozen=True)
class PollSummary:
    outcomes: tuple[PollOutcome, ...]

    @property
    def new_entries(self) -> int:
        return sum(o.new_entries for o in self.outcomes)

    @property
    def updated_entries(self) -> int:
        return sum(o.updated_entries for o in self.outcomes)

    @property
    def errors(self) -> int:
        return sum(o.result == PollResult.ERROR for o in self.outcomes)

    def count(self, result: str) -> int:
        return sum(o.result == result for o in self.outcomes)


class Refresher:
    """Holds what polls need; built once by an entry point and reused for every tick.

    With ``processes`` > 0 and a picklable ``fetcher_factory`` (each worker process builds its
    own fetcher with it), the first poll of at least ``process_min_urls`` URLs starts that
    many worker processes, with ``workers`` fetch threads between them, and every poll after
    it runs in them; smaller polls before it, and every poll without a factory, use
    ``fetcher`` on this process's ``workers`` threads. Worker processes read the real clock,
    not ``clock``.
    """

    def __init__(
        self,
        *,
        store: Store,
        fetcher: Fetcher,
        catalog: Catalog,
        workers: int,
        processes: int = 0,
        fetcher_factory: FetcherFactory | None = None,
        process_min_urls: int = PROCESS_POLL_MIN_URLS,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.store = store
        # Set when workers share the database: polls claim their sources (``claiming``).
        self.lease = lease
        # Counted here, in the process that saves, for fetches made by worker processes too.
        self.metrics = metrics
        self.fetcher = fetcher
        self.catalog = catalog
        self.categories: dict[str, CategoryConfig] = {c.id: c for c in catalog.categories}
        # Only the sources with request settings of their own: most have none.
        self.fetch_options: dict[str, FetchOptions] = {
            s.id: s.fetch for s in catalog.sources if s.fetch != FetchOptions()
        }
        self.workers = max(1, workers)
        self.processes = processes if fetcher_factory is not None else 0
        self.fetcher_factory = fetcher_factory
        self.process_min_urls = process_min_urls
        self.clock = clock
        self._poll_workers: PollWorkers | None = None
        self._polls_running = 0
        self._polls_lock = threading.Lock()
        # Kept across polls: each fetch thread keeps its session and keep-alive connections.
        self._fetch_pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fetch")
        self._unchanged_batch: list[tuple[SourceStatus, FetchResult, datetime, PollResult]] = []
        self._save_batch: list[PollSave] = []
        self._save_batch_entries = 0
        self._save_batch_since = 0.0
        # Set by ``stop``: no new fetch starts; see ``poll``.
        self._stopping = threading.Event()
        # The lease owner of the poll under way when its sources were claimed (PostgreSQL,
        # ``aggregator.polling.claiming``): every save checks the lease is still ours.
        self._owner: str | None = None

    def stop(self) -> None:
        """Wind the poll under way down for a shutdown: fetches in flight on this process's
        threads finish and are saved, none starts; worker processes are stopped at once (what
        they hold is dropped, unsaved). The sources not saved keep their old schedule."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def close(self) -> None:
        self._fetch_pool.shutdown(wait=True, cancel_futures=True)
        if self._poll_workers is not None:
            self._poll_workers.close()
            self._poll_workers = None

    def is_polling(self) -> bool:
        """Whether a poll is under way (the clustering job waits for it to end)."""
        return self._polls_running > 0

    def worker_pids(self) -> list[int]:
        """Process ids of the poll worker processes now running (none before a big poll)."""
        return [] if self._poll_workers is None else self._poll_workers.pids()

    def _processes_for(self, urls: int) -> PollWorkers | None:
        """The worker processes for a poll of ``urls`` URLs: started for a big one, and used
        for every poll once started (they stay until ``close``), so this process prepares
        no body of its own then and need not load the parser at all."""
        if self.processes <= 0 or self.fetcher_factory is None:
            return None
        if self._poll_workers is None:
            if urls < self.process_min_urls:
                return None
            threads = -(-self.workers // self.processes)  # the same fetch concurrency in all
            self._poll_workers = PollWorkers(
                self.processes, self.fetcher_factory, self.categories, threads=threads
            )
        return self._poll_workers

    def poll(
        self,
        sources: Sequence[SourceStatus],
        on_outcome: Callable[[PollOutcome], None] | None = None,
        *,
        owner: str | None = None,
    ) -> PollSummary:
        """Refresh ``sources`` and return what happened to each. ``owner``: the sources were
        claimed with this lease owner, and a save is dropped where the lease was lost."""
        outcomes: list[PollOutcome] = []

        def done(outcome: PollOutcome) -> None:
            outcomes.append(outcome)
            if self.metrics is not None:
                self.metrics.source_polled(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        def handle(fetched: Fetched) -> None:
            if self.metrics is not None and isinstance(fetched.result, FetchResult):
                self.metrics.fetched(fetched.result.elapsed)
            prepared = fetched.prepared or (None,) * len(fetched.sources)
            # One moment for the whole group: the schedule's jitter depends on it.
            now = self.clock()
            for source, ready in zip(_as_group(fetched.sources), prepared, strict=True):
                outcome = self._after_fetch(
                    source, fetched.result, ready, now, inline=fetched.prepared is None
                )
                if outcome is not None:
                    done(outcome)
            if len(self._unchanged_batch) >= UNCHANGED_BATCH:
                self._flush_unchanged(done)
            if self._save_batch and (
                len(self._save_batch) >= SAVE_BATCH
                or self._save_batch_entries >= SAVE_BATCH_ENTRIES
                or time.monotonic() - self._save_batch_since >= SAVE_BATCH_SECONDS
            ):
                self._flush_saves(done)

        def handle_until_stopped(fetched: Fetched) -> None:
            handle(fetched)
            if self._stopping.is_set():
                raise _Stopped  # the worker processes are ended with what they hold

        if not sources:
            return PollSummary(())
        # The request settings travel with each source, into worker processes too.
        if self.fetch_options:
            sources = [self._with_options(s) for s in sources]
        groups = list(_group_by_url(sources))
        workers = self._processes_for(len(groups))
        with self._polls_lock:
            self._polls_running += 1
        self._owner = owner
        try:
            if workers is not None:
                groups = workers.run(groups, handle_until_stopped)
            self._run_threads(groups, handle)
        except _Stopped:
            log.info("action=poll outcome=stopped saved=%d", len(outcomes))
        finally:
            # Whatever stopped the poll, what was fetched and the 304s already seen are kept.
            try:
                try:
                    self._flush_saves(done)
                finally:
                    self._flush_unchanged(done)
            finally:
                self._owner = None
                with self._polls_lock:
                    self._polls_running -= 1
        if any(o.result is PollResult.UPDATED for o in outcomes):
            self._index_saved()
        return PollSummary(tuple(outcomes))

    def _index_saved(self) -> None:
        """Make what this poll saved searchable now rather than at the next search; a failure
        here loses nothing (the queue stays for the next search or poll)."""
        try:
            self.store.index_pending()
        except StoreError as exc:
            log.warning("action=search_index outcome=error error=%s", exc)

    def _with_options(self, source: SourceStatus) -> SourceStatus:
        options = self.fetch_options.get(source.id)
        return source if options is None else replace(source, fetch_options=options)

    def _run_threads(
        self, groups: Sequence[tuple[SourceStatus, ...]], handle: Callable[[Fetched], None]
    ) -> None:
        """Fetch on this process's threads, handling each result on the calling thread."""
        remaining = iter(groups)
        limit = self.workers * INFLIGHT_PER_THREAD
        pending: set[Future[Fetched | None]] = set()
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit and not self._stopping.is_set():
                group = next(remaining, None)
                if group is None:
                    exhausted = True
                    break
                pending.add(self._fetch_pool.submit(self._fetch, group))
            if self._stopping.is_set():
                # Queued behind the running fetches: never started, never will be.
                pending = {f for f in pending if not f.cancel()}
            if not pending:
                return
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                fetched = None if future.cancelled() else future.result()
                if fetched is not None:
                    handle(fetched)

    # -- stages ----------------------------------------------------------------------------

    def _fetch(self, group: tuple[SourceStatus, ...]) -> Fetched | None:
        if self._stopping.is_set():
            return None  # queued when the stop came: a free thread picked it up, not started
        return Fetched(group, fetch_group(self.fetcher, group))

    def _after_fetch(
        self,
        source: SourceStatus,
        result: FetchResult | SourceError,
        prepared: Prepared,
        now: datetime,
        *,
        inline: bool,
    ) -> PollOutcome | None:
        """Record one source's fetch; ``inline`` means ``prepared`` is still to be made here."""
        if isinstance(result, SourceError):
            return self._failed(source, result, now)
        try:
            if result.not_modified or not result.has_body:
                self._unchanged(source, result, now, PollResult.NOT_MODIFIED)
                return None
            digest = digest_of(result)
            if digest == source.body_hash:
                # Same bytes as last time: nothing to parse (servers without validators).
                self._unchanged(source, result, now, PollResult.UNCHANGED)
                return None
            if inline:
                prepared = prepare_for(source, result, self.categories, now)
        except SourceError as exc:
            return self._failed(source, _as_malformed(exc), now, fetched=result)
        except StoreError:
            raise
        except Exception as exc:  # a bug must cost one source, not the whole poll
            return self._internal_error(source, exc, now)
        if isinstance(prepared, SourceError):
            return self._failed(source, _as_malformed(prepared), now, fetched=result)
        if prepared is None:  # cannot happen: a worker prepares every changed body
            return self._internal_error(source, RuntimeError("body was not prepared"), now)
        if not prepared.entries:
            return self._failed(source, _no_entries(prepared), now, fetched=result)
        self._save(source, result, digest, prepared, now)
        return None

    def _save(
        self,
        source: SourceStatus,
        fetched: FetchResult,
        digest: str,
        prepared: PreparedFeed,
        now: datetime,
    ) -> None:
        """Queued and saved in batches (``_flush_saves``); its outcome comes then."""
        if not self._save_batch:
            self._save_batch_since = time.monotonic()
        self._save_batch.append(
            PollSave(
                source.id,
                fetched,
                body_hash=digest,
                feed_title=prepared.title,
                feed_link=prepared.link,
                entries=prepared.entries,
                next_check_at=next_check_after_success(
                    now,
                    source.interval_seconds,
                    url=source.url,
                    feed_ttl_minutes=prepared.ttl_minutes,
                    cache_seconds=cache_lifetime(fetched.headers, now),
                    publish_interval=prepared.publish_interval or source.publish_interval_seconds,
                ),
                now=now,
                publish_interval=prepared.publish_interval,
                feed_ttl_seconds=prepared.ttl_minutes * 60 if prepared.ttl_minutes else None,
            )
        )
        self._save_batch_entries += len(prepared.entries)

    def _flush_saves(self, done: Callable[[PollOutcome], None]) -> None:
        batch, self._save_batch = self._save_batch, []
        self._save_batch_entries = 0
        if not batch:
            return
        for save, outcome in zip(
            batch, self.store.save_polls(batch, owner=self._owner), strict=True
        ):
            self._log(outcome, save.fetch)
            done(outcome)

    def _unchanged(
        self, source: SourceStatus, fetched: FetchResult, now: datetime, result: PollResult
    ) -> None:
        """Queued and saved in batches: one transaction per source was most of a 304 poll."""
        self._unchanged_batch.append((source, fetched, now, result))

    def _flush_unchanged(self, done: Callable[[PollOutcome], None]) -> None:
        batch, self._unchanged_batch = self._unchanged_batch, []
        if not batch:
            return
        self.store.save_not_modified_many(
            [
                (source.id, fetched, self._next_check_unchanged(source, fetched, now), now)
                for source, fetched, now, _result in batch
            ],
            owner=self._owner,
        )
        for source, fetched, _now, result in batch:
            outcome = PollOutcome(source.id, result, status=fetched.status)
            self._log(outcome, fetched)
            done(outcome)

    @staticmethod
    def _next_check_unchanged(
        source: SourceStatus, fetched: FetchResult | None, now: datetime
    ) -> datetime:
        """The feed's stored pace (ttl, rhythm) still holds: the body it came from did not
        change."""
        return next_check_after_success(
            now,
            source.interval_seconds,
            url=source.url,
            feed_ttl_minutes=(source.feed_ttl_seconds // 60 if source.feed_ttl_seconds else None),
            cache_seconds=cache_lifetime(fetched.headers, now) if fetched else None,
            publish_interval=source.publish_interval_seconds,
        )

    def _failed(
        self,
        source: SourceStatus,
        exc: SourceError,
        now: datetime,
        *,
        cause: Exception | None = None,
        fetched: FetchResult | None = None,
    ) -> PollOutcome:
        retry_after = exc.retry_after if isinstance(exc, FetchError) else None
        if exc.kind == "host_backoff" and retry_after is not None:
            self.store.save_deferred(
                source.id, next_check_at=retry_after, reason=str(exc), owner=self._owner
            )
            return PollOutcome(source.id, PollResult.DEFERRED, error=str(exc), error_kind=exc.kind)
        status = exc.status if isinstance(exc, FetchError) else None
        if (
            self._owner is not None
            and status in HOST_HOLD_STATUSES
            and retry_after is not None
            and retry_after > now
        ):
            # The server asked every client of the host to wait: other workers too.
            assert isinstance(exc, FetchError)
            self.store.hold_host(host_of(exc.url or source.url), retry_after, str(exc))
        message = str(exc)
        if status == 404 and source.error_count + 1 >= NOT_FOUND_DISCOVERY_AFTER:
            message += self._rediscover(source, now)
        if exc.kind == EMPTY:
            # The server answered as it should: no back-off, so content is seen soon.
            next_check_at = self._next_check_unchanged(source, fetched, now)
        else:
            next_check_at = next_check_after_error(
                now,
                source.interval_seconds,
                source.error_count + 1,
                url=source.url,
                retry_after=retry_after,
            )
        if fetched is not None:
            status = fetched.status
        self.store.save_error(
            source.id,
            message=message,
            kind=exc.kind,
            status=status,
            next_check_at=next_check_at,
            now=now,
            gone=exc.kind == "gone",
            owner=self._owner,
        )
        # One line per outcome; a bug's traceback rides on it.
        log.log(
            logging.ERROR if cause is not None else logging.WARNING,
            "source=%s action=poll outcome=error kind=%s status=%s error=%r",
            source.id,
            exc.kind,
            status,
            message,
            exc_info=cause,
        )
        return PollOutcome(
            source.id, PollResult.ERROR, status=status, error=message, error_kind=exc.kind
        )

    def _internal_error(self, source: SourceStatus, exc: Exception, now: datetime) -> PollOutcome:
        return self._failed(
            source,
            SourceError(f"internal error: {type(exc).__name__}: {exc}", kind="internal"),
            now,
            cause=exc,
        )

    def _rediscover(self, source: SourceStatus, now: datetime) -> str:
        """After repeated 404s, look for the feed on the site's home page and switch to it."""
        home = source.site_url or _origin(source.url)
        try:
            page = self.fetcher.fetch(
                home,
                accept_html=True,
                allow_private=not source.public_only,
                options=source.fetch_options,
            )
        except SourceError as exc:
            return f"; autodiscovery on {home} failed: {exc}"
        if page.content is None:
            return f"; autodiscovery on {home} found nothing"
        found = [f.url for f in discover_feeds(page.content, page.url) if f.url != source.url]
        if not found:
            return f"; autodiscovery on {home} found no feed link"
        self.store.set_url(source.id, found[0], now=now, owner=self._owner)
        log.info(
            "source=%s action=autodiscover outcome=moved from=%s to=%s",
            source.id,
            source.url,
            found[0],
        )
        return f"; autodiscovery on {home} found {found[0]}, which will be polled next"

    @staticmethod
    def _log(outcome: PollOutcome, fetched: FetchResult) -> None:
        log.info(
            "source=%s action=poll outcome=%s status=%s new=%d updated=%d ms=%d",
            outcome.source_id,
            outcome.result,
            fetched.status,
            outcome.new_entries,
            outcome.updated_entries,
            round(fetched.elapsed * 1000),
        )


class _Stopped(Exception):
    """Raised out of a worker-process poll when ``stop`` was called."""


def _no_entries(prepared: PreparedFeed) -> ParseError:
    """A body that gave no entries is an error, even after earlier good polls: a feed that
    empties is more often a broken publisher than a quiet one, and editors should see it."""
    bozo = prepared.bozo_message
    if bozo and bozo.startswith(_XML_ERROR_PREFIX):
        return ParseError(f"not well-formed XML, no entries read: {bozo}", kind=MALFORMED)
    return ParseError("the feed is well-formed but lists no entries", kind=EMPTY)


def _as_malformed(exc: SourceError) -> SourceError:
    """A body the parser rejected for an XML well-formedness error, with nothing read from it,
    is ``malformed`` like one it half-read: both are a broken feed, not another document."""
    if isinstance(exc, ParseError) and exc.kind == "parse" and _XML_ERROR_PREFIX in str(exc):
        return ParseError(str(exc), kind=MALFORMED)
    return exc


def _as_group(sources: tuple[SourceStatus, ...]) -> tuple[SourceStatus, ...]:
    """The sources sharing one URL, seen with one schedule: the shortest interval, the
    publisher's longest stored hint and the worst error streak among them. Each row keeps its
    own settings; only the next check they get is shared, so they stay due together."""
    if len(sources) < 2:
        return sources
    interval = min(s.interval_seconds for s in sources)
    ttl = max((s.feed_ttl_seconds or 0 for s in sources), default=0) or None
    rhythm = max((s.publish_interval_seconds or 0.0 for s in sources), default=0.0) or None
    errors = max(s.error_count for s in sources)
    return tuple(
        replace(
            s,
            interval_seconds=interval,
            feed_ttl_seconds=ttl,
            publish_interval_seconds=rhythm,
            error_count=errors,
        )
        for s in sources
    )


def _group_by_url(sources: Sequence[SourceStatus]) -> Iterator[tuple[SourceStatus, ...]]:
    """Sources sharing a URL, in first-seen order: each URL is fetched once per poll (once
    per set of request settings, when sources ask for it with different ones)."""
    groups: dict[tuple[str, FetchOptions | None], list[SourceStatus]] = {}
    for source in sources:
        groups.setdefault((source.url, source.fetch_options), []).append(source)
    for group in groups.values():
        yield tuple(group)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
