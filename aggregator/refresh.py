"""A poll: every due source through fetch → prepare (parse, normalize, classify) → store.

Fetches run on a thread pool (network-bound, each URL once per poll however many sources share
it); preparing runs in a process pool when configured (CPU-bound, holds the GIL) or inline;
saving runs on the calling thread, so the store sees one writer. In-flight work is bounded, so
memory stays flat however many sources are due. A failure is recorded on the source's row and
never stops the other sources.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aggregator.catalog import Catalog, CategoryConfig
from aggregator.discover import discover_feeds
from aggregator.errors import FetchError, SourceError, StoreError
from aggregator.fetch import Fetcher
from aggregator.prepare import PreparedFeed, prepare_feed
from aggregator.schedule import cache_lifetime, next_check_after_error, next_check_after_success
from aggregator.store import PollOutcome, SourceStatus, Store
from aggregator.types import FetchResult

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Fetches in flight per fetch worker; bounds how many bodies wait in memory.
INFLIGHT_PER_WORKER = 2
# After this many 404s in a row, look for the feed on the site's home page.
NOT_FOUND_DISCOVERY_AFTER = 3
# Not-modified sources saved per transaction.
UNCHANGED_BATCH = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        return sum(o.result == "error" for o in self.outcomes)

    def count(self, result: str) -> int:
        return sum(o.result == result for o in self.outcomes)


@dataclass(frozen=True)
class _Fetched:
    sources: tuple[SourceStatus, ...]
    result: FetchResult | SourceError


@dataclass(frozen=True)
class _Prepared:
    source: SourceStatus
    fetched: FetchResult
    body_hash: str


_Pending = dict[Future[Any], _Prepared | None]


class Refresher:
    """Holds what polls need; built once by an entry point and reused for every tick."""

    def __init__(self, *, store: Store, fetcher: Fetcher, catalog: Catalog, workers: int,
                 parse_processes: int = 0, clock: Clock = utc_now) -> None:
        self.store = store
        self.fetcher = fetcher
        self.catalog = catalog
        self.categories: dict[str, CategoryConfig] = {c.id: c for c in catalog.categories}
        self.workers = max(1, workers)
        self.parse_processes = parse_processes
        self.clock = clock
        self._parse_pool: ProcessPoolExecutor | None = None
        # Kept across polls: each fetch thread keeps its session and keep-alive connections.
        self._fetch_pool = ThreadPoolExecutor(max_workers=self.workers,
                                              thread_name_prefix="fetch")
        self._unchanged_batch: list[tuple[SourceStatus, FetchResult, datetime, str]] = []

    def close(self) -> None:
        self._fetch_pool.shutdown(wait=True, cancel_futures=True)
        if self._parse_pool is not None:
            self._parse_pool.shutdown(wait=True, cancel_futures=True)
            self._parse_pool = None

    def _parse_executor(self) -> ProcessPoolExecutor | None:
        if self.parse_processes <= 0:
            return None
        if self._parse_pool is None:
            # forkserver: never fork a process that runs threads (web server, scheduler).
            context = multiprocessing.get_context("forkserver")
            self._parse_pool = ProcessPoolExecutor(self.parse_processes, mp_context=context)
        return self._parse_pool

    def poll(self, sources: Sequence[SourceStatus],
             on_outcome: Callable[[PollOutcome], None] | None = None) -> PollSummary:
        """Refresh ``sources`` and return what happened to each."""
        outcomes: list[PollOutcome] = []

        def done(outcome: PollOutcome) -> None:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        if not sources:
            return PollSummary(())
        groups = iter(_group_by_url(sources))
        parse_pool = self._parse_executor()
        limit = self.workers * INFLIGHT_PER_WORKER
        # A fetch future maps to None; a parse future to the job it prepares.
        pending: _Pending = {}
        fetch_pool = self._fetch_pool
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit:
                group = next(groups, None)
                if group is None:
                    exhausted = True
                    break
                pending[fetch_pool.submit(self._fetch, group)] = None
            if not pending:
                break
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                if job is not None:
                    done(self._saved(job, future.result))
                    continue
                fetched = future.result()
                assert isinstance(fetched, _Fetched)
                for source in fetched.sources:
                    outcome = self._after_fetch(source, fetched.result, parse_pool, pending)
                    if outcome is not None:
                        done(outcome)
            if len(self._unchanged_batch) >= UNCHANGED_BATCH:
                self._flush_unchanged(done)
        self._flush_unchanged(done)
        return PollSummary(tuple(outcomes))

    # -- stages ----------------------------------------------------------------------------

    def _fetch(self, group: tuple[SourceStatus, ...]) -> _Fetched:
        first = group[0]
        # Validators only help when every source sharing the URL holds the same ones.
        same = all((s.etag, s.last_modified) == (first.etag, first.last_modified) for s in group)
        try:
            result: FetchResult | SourceError = self.fetcher.fetch(
                first.url, etag=first.etag if same else None,
                last_modified=first.last_modified if same else None)
        except SourceError as exc:
            result = exc
        return _Fetched(group, result)

    def _after_fetch(self, source: SourceStatus, result: FetchResult | SourceError,
                     parse_pool: Executor | None, pending: _Pending) -> PollOutcome | None:
        now = self.clock()
        if isinstance(result, SourceError):
            return self._failed(source, result, now)
        try:
            if result.not_modified or result.content is None:
                self._unchanged(source, result, now, "not_modified")
                return None
            body_hash = hashlib.sha256(result.content).hexdigest()
            if body_hash == source.body_hash:
                # Same bytes as last time: nothing to parse (servers without validators).
                self._unchanged(source, result, now, "unchanged")
                return None
            job = _Prepared(source, result, body_hash)
            task = partial(
                prepare_feed, result.content, url=result.url, headers=dict(result.headers),
                source_language=source.language, source_categories=source.categories,
                categories=self.categories, now=now,
            )
            if parse_pool is None:
                return self._saved(job, task)
            pending[parse_pool.submit(task)] = job
            return None
        except StoreError:
            raise
        except Exception as exc:  # a bug must cost one source, not the whole poll
            return self._internal_error(source, exc, now)

    def _saved(self, job: _Prepared, prepared_feed: Callable[[], object]) -> PollOutcome:
        """Save what ``prepared_feed()`` returns: the task itself, or a pool future's result."""
        now = self.clock()
        source, fetched = job.source, job.fetched
        try:
            prepared = prepared_feed()
            assert isinstance(prepared, PreparedFeed)
        except SourceError as exc:
            return self._failed(source, exc, now)
        except Exception as exc:
            return self._internal_error(source, exc, now)
        outcome = self.store.save_poll(
            source.id, fetched, body_hash=job.body_hash, feed_title=prepared.title,
            feed_link=prepared.link, entries=prepared.entries,
            next_check_at=next_check_after_success(
                now, source.interval_seconds, source_id=source.id,
                feed_ttl_minutes=prepared.ttl_minutes,
                cache_seconds=cache_lifetime(fetched.headers, now),
                publish_interval=prepared.publish_interval or source.publish_interval_seconds),
            now=now, publish_interval=prepared.publish_interval,
        )
        self._log(outcome, fetched)
        return outcome

    def _unchanged(self, source: SourceStatus, fetched: FetchResult, now: datetime,
                   result: str) -> None:
        """Queued and saved in batches: one transaction per source was most of a 304 poll."""
        self._unchanged_batch.append((source, fetched, now, result))

    def _flush_unchanged(self, done: Callable[[PollOutcome], None]) -> None:
        batch, self._unchanged_batch = self._unchanged_batch, []
        if not batch:
            return
        self.store.save_not_modified_many([
            (source.id, fetched, next_check_after_success(
                now, source.interval_seconds, source_id=source.id,
                cache_seconds=cache_lifetime(fetched.headers, now),
                publish_interval=source.publish_interval_seconds), now)
            for source, fetched, now, _result in batch])
        for source, fetched, _now, result in batch:
            outcome = PollOutcome(source.id, result, status=fetched.status)
            self._log(outcome, fetched)
            done(outcome)

    def _failed(self, source: SourceStatus, exc: SourceError, now: datetime) -> PollOutcome:
        retry_after = exc.retry_after if isinstance(exc, FetchError) else None
        if exc.kind == "host_backoff" and retry_after is not None:
            self.store.save_deferred(source.id, next_check_at=retry_after, reason=str(exc))
            return PollOutcome(source.id, "deferred", error=str(exc), error_kind=exc.kind)
        status = exc.status if isinstance(exc, FetchError) else None
        message = str(exc)
        if status == 404 and source.error_count + 1 >= NOT_FOUND_DISCOVERY_AFTER:
            message += self._rediscover(source, now)
        self.store.save_error(
            source.id, message=message, kind=exc.kind, status=status,
            next_check_at=next_check_after_error(now, source.interval_seconds,
                                                 source.error_count + 1, source_id=source.id,
                                                 retry_after=retry_after),
            now=now, gone=exc.kind == "gone",
        )
        log.warning("source=%s action=poll outcome=error kind=%s status=%s error=%r",
                    source.id, exc.kind, status, message)
        return PollOutcome(source.id, "error", status=status, error=message,
                           error_kind=exc.kind)

    def _internal_error(self, source: SourceStatus, exc: Exception, now: datetime
                        ) -> PollOutcome:
        log.error("source=%s action=poll outcome=internal-error", source.id, exc_info=exc)
        return self._failed(
            source, SourceError(f"internal error: {type(exc).__name__}: {exc}", kind="internal"),
            now)

    def _rediscover(self, source: SourceStatus, now: datetime) -> str:
        """After repeated 404s, look for the feed on the site's home page and switch to it."""
        home = source.site_url or _origin(source.url)
        try:
            page = self.fetcher.fetch(home, accept_html=True)
        except SourceError as exc:
            return f"; autodiscovery on {home} failed: {exc}"
        if page.content is None:
            return f"; autodiscovery on {home} found nothing"
        found = [f.url for f in discover_feeds(page.content, page.url) if f.url != source.url]
        if not found:
            return f"; autodiscovery on {home} found no feed link"
        self.store.set_url(source.id, found[0], now=now)
        log.info("source=%s action=autodiscover outcome=moved from=%s to=%s",
                 source.id, source.url, found[0])
        return f"; autodiscovery on {home} found {found[0]}, which will be polled next"

    @staticmethod
    def _log(outcome: PollOutcome, fetched: FetchResult) -> None:
        log.info("source=%s action=poll outcome=%s status=%s new=%d updated=%d ms=%d",
                 outcome.source_id, outcome.result, fetched.status, outcome.new_entries,
                 outcome.updated_entries, round(fetched.elapsed * 1000))


def _group_by_url(sources: Sequence[SourceStatus]) -> Iterator[tuple[SourceStatus, ...]]:
    """Sources sharing a URL, in first-seen order: each URL is fetched once per poll."""
    groups: dict[str, list[SourceStatus]] = {}
    for source in sources:
        groups.setdefault(source.url, []).append(source)
    for group in groups.values():
        yield tuple(group)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
