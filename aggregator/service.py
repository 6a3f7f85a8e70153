"""Assembles the long-running service: store, fetcher, refresher, clustering stage, scheduler
and web server.

``aggregator run`` and ``aggregator demo`` both build a ``Service``; it owns the objects'
lifetimes and shuts them down in order (scheduler first, so no poll is cut mid-transaction).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from types import FrameType

import uvicorn

from aggregator.archives import archive_dir_for
from aggregator.catalog import Catalog
from aggregator.clustering import ClusteringStage, Models, StageSummary
from aggregator.fetch import Fetcher
from aggregator.fetch.configured import fetcher_from_settings
from aggregator.outputs import Outputs
from aggregator.refresh import PollSummary, Refresher, utc_now
from aggregator.scheduler import build_scheduler
from aggregator.settings import Settings
from aggregator.store import PollOutcome, SourceStatus, Store
from aggregator.web import create_app
from aggregator.websub import HubNotifier

log = logging.getLogger(__name__)


def make_fetcher(settings: Settings, now: Callable[[], datetime] | None = None) -> Fetcher:
    """A fetcher with this process's per-host politeness gate."""
    return fetcher_from_settings(settings, now or utc_now)


def make_outputs(settings: Settings, store: Store, catalog: Catalog) -> Outputs:
    notifier = (HubNotifier(settings.websub_hub, user_agent=settings.user_agent)
                if settings.websub_hub else None)
    return Outputs(store=store, catalog=catalog, base_url=settings.public_url,
                   tag_authority=settings.item_authority, feed_size=settings.feed_size,
                   archive_dir=archive_dir_for(settings.archive_dir, settings.database_url),
                   hub_url=settings.websub_hub or None,
                   max_age=settings.feed_max_age,
                   recheck_seconds=settings.feed_recheck_seconds,
                   on_change=notifier.notify if notifier is not None else None)


def make_stage(settings: Settings, store: Store, models: Models | None = None
               ) -> ClusteringStage:
    """The clustering stage as the settings ask; its model loads on first use, not here."""
    return ClusteringStage(store, semantic=settings.clustering == "semantic",
                           max_age=settings.clustering_max_age, models=models)


def _note_sigterm(signum: int, _frame: FrameType | None) -> None:
    log.info("action=shutdown reason=signal signal=%d", signum)


class Service:
    """The pieces of a running aggregator over one store and one catalog."""

    def __init__(self, settings: Settings, store: Store, catalog: Catalog, *,
                 models: Models | None = None) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.fetcher = make_fetcher(settings)
        self.refresher = Refresher(store=store, fetcher=self.fetcher, catalog=catalog,
                                   workers=settings.fetch_workers,
                                   processes=settings.poll_processes,
                                   fetcher_factory=partial(fetcher_from_settings, settings))
        self.clustering = make_stage(settings, store, models)
        store.sync_sources(catalog, utc_now())

    def poll(self, sources: Sequence[SourceStatus] | None = None, *,
             on_outcome: Callable[[PollOutcome], None] | None = None) -> PollSummary:
        """Poll ``sources``, or every active source when none are given."""
        if sources is None:
            sources = self.store.due_sources(utc_now(), everything=True)
        return self.refresher.poll(sources, on_outcome=on_outcome)

    def cluster(self, *, on_progress: Callable[[int, int], None] | None = None
                ) -> StageSummary:
        """Cluster every pending entry (after a poll; ``run`` does it on its own schedule)."""
        return self.clustering.run(on_progress=on_progress)

    def serve(self, sock: socket.socket | None = None) -> None:
        """Scheduler and web server until SIGINT/SIGTERM (uvicorn handles both)."""
        scheduler = build_scheduler(self.refresher, self.settings.tick_seconds,
                                    stage=self.clustering)
        app = create_app(store=self.store,
                         outputs=make_outputs(self.settings, self.store, self.catalog))
        config = uvicorn.Config(app, host=self.settings.host, port=self.settings.port,
                                log_level=self.settings.log_level.lower(), access_log=False,
                                log_config=None)
        server = uvicorn.Server(config)
        # uvicorn re-raises the SIGTERM it handled once it has stopped; with the default
        # handler that would kill us before the scheduler is shut down, so note it instead.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _note_sigterm) if in_main else None
        scheduler.start()
        log.info("action=serve outcome=start url=%s", self.settings.public_url)
        try:
            server.run(sockets=[sock] if sock is not None else None)
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
            log.info("action=shutdown outcome=start")
            # The stage stops after its current batch; wait=True lets a running tick finish
            # its current source's transaction and that batch commit.
            self.clustering.stop()
            scheduler.shutdown(wait=True)
            log.info("action=shutdown outcome=done")

    def close(self) -> None:
        self.refresher.close()
        self.fetcher.close()

