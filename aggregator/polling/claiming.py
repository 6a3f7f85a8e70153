"""A worker's share of the polling when several workers share one PostgreSQL database.

Claim a batch of due sources (``Store.claim_sources``: leases, SKIP LOCKED, a host is one
worker's at a time), poll it with the lease owner so every save checks the lease is still
ours, renew the leases while the batch runs, and claim again until nothing due is left. Whatever
was claimed but not saved (a stop, a lost database) is released at the end: due again for every
worker at once, instead of after the lease runs out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from types import TracebackType

from aggregator.clock import Clock
from aggregator.errors import StoreError
from aggregator.polling.fetch import Fetcher
from aggregator.polling.poller import PollSummary, Refresher
from aggregator.store import Store
from aggregator.store.leases import Lease
from aggregator.types import PollOutcome

log = logging.getLogger("aggregator.claiming")

# Sources per claim: enough to keep the fetch threads and worker processes busy (the process
# path starts at 64 URLs), few enough that a batch's slowest fetch does not idle a worker long.
CLAIM_BATCH = 256
# A claim takes at most as many sources of one host as the host's politeness delay lets us
# fetch in about this long, so one slow-to-serve host does not hold a whole batch.
HOST_BATCH_SECONDS = 15.0
# When the due sources left are on hosts other workers hold, ask again this often, this many
# times at most, before leaving them to those workers (each claims again after its batch).
WAIT_FOR_HOSTS_SECONDS = 0.5
WAIT_FOR_HOSTS_ROUNDS = 20


def per_host_limit(fetcher: Fetcher) -> int:
    gate = fetcher.gate
    if gate is None or gate.min_delay <= 0:
        return CLAIM_BATCH
    return max(gate.max_per_host, min(CLAIM_BATCH, int(HOST_BATCH_SECONDS / gate.min_delay)))


class LeaseKeeper:
    """Renews ``lease``'s claims every third of its length while the ``with`` block runs, so
    a long batch (slow hosts, a busy host's queue) never loses them."""

    def __init__(self, store: Store, lease: Lease, clock: Clock) -> None:
        self.store = store
        self.lease = lease
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease.seconds / 3):
            try:
                renewed = self.store.renew_leases(
                    self.lease.owner, self.clock(), self.lease.seconds
                )
            except StoreError as exc:
                # The claims may run out meanwhile; saves then find them lost, nothing worse.
                log.warning("action=lease-renew outcome=error error=%r", str(exc))
            else:
                log.debug("action=lease-renew outcome=done sources=%d", renewed)


def poll_claimed(
    refresher: Refresher,
    *,
    everything: bool = False,
    on_outcome: Callable[[PollOutcome], None] | None = None,
) -> PollSummary:
    """Claim and poll batches until no due source is left unclaimed (``everything``: every
    active source not checked since this pass began, ``poll --all``). Stops between batches,
    and winds the batch down, when the refresher is stopped."""
    lease = refresher.lease
    if lease is None:
        raise StoreError("this refresher does not claim its sources (no lease: SQLite?)")
    store = refresher.store
    started = refresher.clock()
    per_host = per_host_limit(refresher.fetcher)
    outcomes: list[PollOutcome] = []
    seen: set[str] = set()
    idle_rounds = 0
    # What an earlier pass could not give back (the database was gone) is free again first.
    _release(store, lease)
    with LeaseKeeper(store, lease, refresher.clock):
        try:
            while not refresher.stopping:
                sources, waiting = store.claim_sources(
                    lease.owner,
                    refresher.clock(),
                    lease_seconds=lease.seconds,
                    limit=CLAIM_BATCH,
                    per_host=per_host,
                    checked_before=started if everything else None,
                )
                if everything:
                    # A source this pass saw but could not save (deferred) stays for the next.
                    again = [s.id for s in sources if s.id in seen]
                    if again:
                        store.release_leases(lease.owner, again)
                    sources = [s for s in sources if s.id not in seen]
                    seen.update(s.id for s in sources)
                if not sources:
                    idle_rounds += 1
                    if not waiting or idle_rounds > WAIT_FOR_HOSTS_ROUNDS:
                        break
                    time.sleep(WAIT_FOR_HOSTS_SECONDS)
                    continue
                idle_rounds = 0
                outcomes += refresher.poll(sources, on_outcome, owner=lease.owner).outcomes
        finally:
            _release(store, lease)
    return PollSummary(tuple(outcomes))


def _release(store: Store, lease: Lease) -> None:
    """Give back what this worker claimed and did not save."""
    try:
        released = store.release_leases(lease.owner)
    except StoreError as exc:
        log.warning(
            "action=lease-release outcome=error error=%r: the sources come back "
            "when their leases run out",
            str(exc),
        )
        return
    if released:
        log.info("action=lease-release outcome=done sources=%d", released)


def release_all(store: Store, lease: Lease) -> None:
    """At shutdown: nothing this process claimed stays claimed."""
    with suppress(StoreError):
        _release(store, lease)
