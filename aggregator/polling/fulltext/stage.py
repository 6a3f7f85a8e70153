"""The full-text stage: article pages of opted-in sources fetched, extracted and stored.

Runs after polling (``aggregator poll``) and as its own scheduled job (``aggregator run``),
never on a feed's fetch path. Pages go through the poll's ``Fetcher``: the same per-host gate,
deadlines and size cap, and always the address guard, since a page's URL comes from the feed,
which nobody reviewed. A page is fetched conditionally, and a body with the hash of the last
one is not extracted again. Every failure is stored with its kind; the outputs then keep the
feed's own summary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aggregator.catalog import Catalog, SourceConfig
from aggregator.clock import utc_now
from aggregator.errors import AggregatorError, FetchError
from aggregator.polling.fetch import Fetcher
from aggregator.polling.fulltext.extract import ExtractError, extract_main
from aggregator.store import Store
from aggregator.store.fulltext import FullTextRecord, FullTextTask
from aggregator.types import FullTextOutcome

log = logging.getLogger("aggregator.fulltext")

# Pages checked per run at most: a new source's backlog is worked through over several runs.
BATCH_SIZE = 200
# Only entries this recent get their page fetched: older ones are rarely read any more.
DEFAULT_MAX_AGE = timedelta(days=7)
# A failed page is tried again after this long, at most this many times in a row.
RETRY_AFTER = timedelta(hours=1)
MAX_FAILURES = 3
# An extraction shorter than this, or not longer than the feed's own text, is a paywall
# stub, a video or a gallery page: the feed's summary says as much.
MIN_TEXT_CHARS = 200
# Pages fetched at once; the host gate still spaces requests to any one host.
WORKERS = 4
Clock = Callable[[], datetime]


@dataclass
class FullTextSummary:
    """What a run did: pages by outcome, and those that had not changed."""

    outcomes: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    # Another worker held the turn (PostgreSQL): this run fetched nothing.
    skipped: bool = False

    @property
    def checked(self) -> int:
        return sum(self.outcomes.values()) + self.unchanged

    def describe(self) -> str:
        parts = ", ".join(f"{self.outcomes.get(o.value, 0)} {o.value}" for o in FullTextOutcome)
        return f"full text: checked {self.checked} pages ({parts}, {self.unchanged} unchanged)"


class FullTextStage:
    """Checks the article pages of the entries of ``full_text = true`` sources.

    ``catalog`` is read at every run (a reload may replace it); ``fetcher`` should be the
    refresher's, so pages and feeds share one politeness gate per host.
    """

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        catalog: Catalog,
        *,
        clock: Clock = utc_now,
        max_age: timedelta = DEFAULT_MAX_AGE,
        batch_size: int = BATCH_SIZE,
        retry_after: timedelta = RETRY_AFTER,
        max_failures: int = MAX_FAILURES,
        workers: int = WORKERS,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.catalog = catalog
        self.clock = clock
        self.max_age = max_age
        self.batch_size = batch_size
        self.retry_after = retry_after
        self.max_failures = max_failures
        self.workers = max(1, workers)
        self._stopping = threading.Event()

    def stop(self) -> None:
        """No new page is fetched; those in flight finish and are stored."""
        self._stopping.set()

    def run(self) -> FullTextSummary:
        summary = FullTextSummary()
        sources = {s.id: s for s in self.catalog.sources if s.full_text and s.enabled}
        if not sources:
            return summary
        with self.store.full_text_turn() as mine:
            if not mine:
                summary.skipped = True
                return summary
            self._run(sources, summary)
        return summary

    def _run(self, sources: dict[str, SourceConfig], summary: FullTextSummary) -> None:
        now = self.clock()
        tasks = self.store.full_text_due(
            sorted(sources),
            since=now - self.max_age,
            retry_before=now - self.retry_after,
            max_failures=self.max_failures,
            limit=self.batch_size,
        )
        if not tasks:
            return
        lock = threading.Lock()

        def one(task: FullTextTask) -> None:
            if self._stopping.is_set():
                return
            try:
                result = self.check(task, sources[task.source_id])
            except AggregatorError as exc:  # the store failed: the page is tried next run
                log.error(
                    "action=full_text outcome=error entry=%d error=%r", task.entry_id, str(exc)
                )
                return
            with lock:
                if result is None:
                    summary.unchanged += 1
                else:
                    summary.outcomes[result] = summary.outcomes.get(result, 0) + 1

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fulltext") as pool:
            list(pool.map(one, tasks))
        log.info(
            "action=full_text outcome=done checked=%d %s",
            summary.checked,
            " ".join(f"{k}={v}" for k, v in sorted(summary.outcomes.items())),
        )

    def check(self, task: FullTextTask, source: SourceConfig) -> FullTextOutcome | None:
        """Fetch, extract and store one entry's page; the outcome, or None when the page had
        not changed since the last check (what was stored stands)."""
        now = self.clock()
        known = task.outcome is not None and task.outcome != FullTextOutcome.FAILED
        try:
            result = self.fetcher.fetch(
                task.url,
                etag=task.etag if known else None,
                last_modified=task.last_modified if known else None,
                allow_private=False,
                accept_html=True,
            )
        except FetchError as exc:
            return self._failed(task, now, exc.kind, str(exc))
        digest = hashlib.sha256(result.content).hexdigest() if result.content is not None else None
        if known and (result.content is None or digest == task.body_hash):
            self.store.confirm_full_text(
                task.entry_id,
                entry_hash=task.entry_hash,
                checked_at=now,
                etag=result.etag,
                last_modified=result.last_modified,
            )
            return None
        if result.content is None:  # a 304 to a request that sent no validators
            return self._failed(task, now, "http", f"{result.url} answered 304 unasked")
        try:
            extracted = extract_main(result.content, result.url, selector=source.full_text_selector)
        except ExtractError as exc:
            return self._failed(task, now, "extract", str(exc))
        empty = FullTextRecord(
            entry_id=task.entry_id,
            source_id=task.source_id,
            url=result.url,
            outcome=FullTextOutcome.EMPTY,
            entry_hash=task.entry_hash,
            checked_at=now,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=digest,
        )
        if extracted is None or len(extracted.text) < max(MIN_TEXT_CHARS, task.feed_text_chars + 1):
            found = 0 if extracted is None else len(extracted.text)
            self.store.save_full_text(
                dataclasses.replace(
                    empty,
                    error=(
                        f"the page's main text ({found} characters) adds nothing to "
                        f"the feed's ({task.feed_text_chars})"
                    ),
                )
            )
            return FullTextOutcome.EMPTY
        self.store.save_full_text(
            dataclasses.replace(
                empty,
                outcome=FullTextOutcome.EXTRACTED,
                content_html=extracted.html,
                text=extracted.text,
                extracted_at=now,
            )
        )
        return FullTextOutcome.EXTRACTED

    def _failed(self, task: FullTextTask, now: datetime, kind: str, error: str) -> FullTextOutcome:
        log.info(
            "action=full_text outcome=failed entry=%d kind=%s error=%r", task.entry_id, kind, error
        )
        self.store.save_full_text(
            FullTextRecord(
                entry_id=task.entry_id,
                source_id=task.source_id,
                url=task.url,
                outcome=FullTextOutcome.FAILED,
                entry_hash=task.entry_hash,
                checked_at=now,
                error_kind=kind,
                error=error,
                failures=task.failures + 1,
            )
        )
        return FullTextOutcome.FAILED
