"""One source through every stage: fetch → parse → normalize → classify → store.

Fetches run on a thread pool (network-bound); parsing and saving run on the calling thread as
results arrive, so the store sees one writer. Any failure is recorded on the source's row and
never stops the other sources.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.catalog import Catalog, CategoryConfig
from aggregator.classify import classify
from aggregator.errors import FetchError, SourceError, StoreError
from aggregator.fetch import Fetcher
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_feed
from aggregator.schedule import next_check_after_error, next_check_after_success
from aggregator.store import PollOutcome, SourceStatus, Store
from aggregator.types import FetchResult

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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


class Refresher:
    """Holds what a poll needs; built once by an entry point and reused for every tick."""

    def __init__(self, *, store: Store, fetcher: Fetcher, catalog: Catalog, workers: int,
                 clock: Clock = utc_now) -> None:
        self.store = store
        self.fetcher = fetcher
        self.catalog = catalog
        self.workers = workers
        self.clock = clock

    @property
    def categories(self) -> dict[str, CategoryConfig]:
        return {c.id: c for c in self.catalog.categories}

    def poll(self, sources: Sequence[SourceStatus],
             on_outcome: Callable[[PollOutcome], None] | None = None) -> PollSummary:
        """Refresh ``sources`` and return what happened to each."""
        outcomes: list[PollOutcome] = []
        if not sources:
            return PollSummary(())
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(sources))),
                                thread_name_prefix="fetch") as pool:
            futures = {pool.submit(self._fetch, source): source for source in sources}
            for future in as_completed(futures):
                source = futures[future]
                outcome = self._process(source, future.result())
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        return PollSummary(tuple(outcomes))

    def _fetch(self, source: SourceStatus) -> FetchResult | SourceError:
        try:
            return self.fetcher.fetch(source.url, etag=source.etag,
                                      last_modified=source.last_modified)
        except SourceError as exc:
            return exc

    def _process(self, source: SourceStatus, fetched: FetchResult | SourceError) -> PollOutcome:
        now = self.clock()
        try:
            if isinstance(fetched, SourceError):
                raise fetched
            return self._save(source, fetched, now)
        except SourceError as exc:
            return self._record_error(source, exc, now)
        except StoreError:
            raise
        except Exception as exc:  # a bug must cost one source, not the whole poll
            log.exception("source=%s action=poll outcome=internal-error", source.id)
            return self._record_error(
                source, SourceError(f"internal error: {type(exc).__name__}: {exc}",
                                    kind="internal"), now)

    def _save(self, source: SourceStatus, fetched: FetchResult, now: datetime) -> PollOutcome:
        if fetched.not_modified or fetched.content is None:
            self.store.save_not_modified(
                source.id, fetched,
                next_check_at=next_check_after_success(now, source.interval_seconds), now=now)
            outcome = PollOutcome(source.id, "not_modified", status=fetched.status)
            self._log(outcome, fetched)
            return outcome
        body_hash = hashlib.sha256(fetched.content).hexdigest()
        if body_hash == source.body_hash:
            # Same bytes as last time: nothing to parse (servers without validators).
            self.store.save_not_modified(
                source.id, fetched,
                next_check_at=next_check_after_success(now, source.interval_seconds), now=now)
            outcome = PollOutcome(source.id, "unchanged", status=fetched.status)
            self._log(outcome, fetched)
            return outcome
        feed = parse_feed(fetched.content, url=fetched.url, headers=fetched.headers)
        entries = normalize_feed(feed, feed_url=fetched.url, source_language=source.language,
                                 now=now)
        categories = self.categories
        classified = [
            (entry, classify(entry, source_categories=source.categories, categories=categories))
            for entry in entries
        ]
        outcome = self.store.save_poll(
            source.id, fetched, body_hash=body_hash, feed_title=feed.title,
            feed_link=feed.link, entries=classified,
            next_check_at=next_check_after_success(now, source.interval_seconds,
                                                   feed.ttl_minutes),
            now=now,
        )
        self._log(outcome, fetched)
        return outcome

    def _record_error(self, source: SourceStatus, exc: SourceError, now: datetime
                      ) -> PollOutcome:
        status = exc.status if isinstance(exc, FetchError) else None
        self.store.save_error(
            source.id, message=str(exc), kind=exc.kind, status=status,
            next_check_at=next_check_after_error(now, source.interval_seconds,
                                                 source.error_count + 1),
            now=now,
        )
        outcome = PollOutcome(source.id, "error", status=status, error=str(exc),
                              error_kind=exc.kind)
        log.warning("source=%s action=poll outcome=error kind=%s error=%r",
                    source.id, exc.kind, str(exc))
        return outcome

    @staticmethod
    def _log(outcome: PollOutcome, fetched: FetchResult) -> None:
        log.info("source=%s action=poll outcome=%s status=%s new=%d updated=%d ms=%d",
                 outcome.source_id, outcome.result, fetched.status, outcome.new_entries,
                 outcome.updated_entries, round(fetched.elapsed * 1000))
