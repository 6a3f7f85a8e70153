"""One pass over the due sources: the one poll orchestrator.

The scheduler's tick, ``aggregator poll`` and the service all call ``poll_due``. When workers
share PostgreSQL the refresher has a lease and the sources are claimed in batches
(``claiming.poll_claimed``); otherwise the store's due list is polled in batches of
``DUE_BATCH`` sources, so a pass holds one batch's statuses however many sources are due.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

from aggregator.polling.claiming import poll_claimed
from aggregator.polling.poller import PollSummary, Refresher
from aggregator.types import PollOutcome

OnOutcome = Callable[[PollOutcome], None]

# Sources whose statuses a pass holds at once. A batch ends with its slowest fetch, so it is
# large enough that this is rare (the claimed batches of PostgreSQL are 256), and small
# enough that 10,000 due sources cost a few MB instead of ~45 (their ORM rows and statuses).
DUE_BATCH = 1000


def poll_due(
    refresher: Refresher,
    *,
    everything: bool = False,
    on_outcome: OnOutcome | None = None,
    progress: Callable[[int], OnOutcome | None] | None = None,
) -> PollSummary:
    """Poll what is due now (``everything``: every active source, ``poll --all``).

    ``on_outcome`` hears of each source as it is done; or ``progress``, given the number of
    due sources once it is known, returns that callback (claimed batches have no total).
    """
    if refresher.lease is not None:
        return poll_claimed(refresher, everything=everything, on_outcome=on_outcome)
    due = refresher.store.due_urls(refresher.clock(), everything=everything)
    if not due:
        return PollSummary(())
    if progress is not None:
        on_outcome = progress(len(due))
    # Planned at once and the URLs dropped: they are needed only to keep each URL's sources
    # together, and the pass lasts minutes (10,000 id/URL pairs and the plan's map ≈ 3 MB).
    batches = deque(url_batches(due, DUE_BATCH))
    del due
    outcomes: list[PollOutcome] = []
    while batches and not refresher.stopping:
        # Read when its turn comes: a source paused by a reload since the pass began is left.
        sources = refresher.store.active_sources(batches.popleft())
        outcomes += refresher.poll(sources, on_outcome=on_outcome).outcomes
        del sources  # not alive beside the next batch's statuses
    return PollSummary(tuple(outcomes))


def url_batches(due: Sequence[tuple[str, str]], size: int) -> Iterator[list[str]]:
    """The ids of ``due`` (id, URL pairs) in batches of about ``size``, in order, every URL's
    sources in one batch: the poll fetches a URL once for all of its sources."""
    by_url: dict[str, list[str]] = {}
    for source_id, url in due:
        by_url.setdefault(url, []).append(source_id)
    batch: list[str] = []
    for ids in by_url.values():
        batch += ids
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
