"""One pass over the due sources: the one poll orchestrator.

The scheduler's tick, ``aggregator poll`` and the service all call ``poll_due``. When workers
share PostgreSQL the refresher has a lease and the sources are claimed in batches
(``claiming.poll_claimed``); otherwise the store's due list is polled in one go.
"""

from __future__ import annotations

from collections.abc import Callable

from aggregator.polling.claiming import poll_claimed
from aggregator.polling.poller import PollSummary, Refresher
from aggregator.types import PollOutcome

OnOutcome = Callable[[PollOutcome], None]


def poll_due(refresher: Refresher, *, everything: bool = False,
             on_outcome: OnOutcome | None = None,
             progress: Callable[[int], OnOutcome | None] | None = None) -> PollSummary:
    """Poll what is due now (``everything``: every active source, ``poll --all``).

    ``on_outcome`` hears of each source as it is done; or ``progress``, given the number of
    due sources once it is known, returns that callback (claimed batches have no total).
    """
    if refresher.lease is not None:
        return poll_claimed(refresher, everything=everything, on_outcome=on_outcome)
    due = refresher.store.due_sources(refresher.clock(), everything=everything)
    if not due:
        return PollSummary(())
    if progress is not None:
        on_outcome = progress(len(due))
    return refresher.poll(due, on_outcome=on_outcome)
