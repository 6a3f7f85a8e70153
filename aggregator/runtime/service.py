"""Assembles the long-running service: store, fetcher, refresher, clustering stage, scheduler
and web server.

``aggregator run`` and ``aggregator demo`` both build a ``Service``; it owns the objects'
lifetimes and shuts them down in order (scheduler first, so no poll is cut mid-transaction).
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING

from aggregator.catalog import Catalog
from aggregator.clock import utc_now
from aggregator.clustering import ClusteringStage, Models, StageSummary
from aggregator.delivery.dispatcher import make_dispatcher, sync_subscribers
from aggregator.editorial.reload import ConfigReloader
from aggregator.errors import ConfigError
from aggregator.metrics import Metrics
from aggregator.polling.claiming import release_all
from aggregator.polling.due import poll_due
from aggregator.polling.fetch import Fetcher
from aggregator.polling.fetch.configured import fetcher_from_settings
from aggregator.polling.fulltext import FullTextStage, FullTextSummary
from aggregator.polling.poller import PollSummary, Refresher
from aggregator.runtime import heap
from aggregator.runtime.scheduler import Backoff, build_scheduler, tick
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.store.leases import Lease, make_owner
from aggregator.types import PollOutcome, SourceStatus

if TYPE_CHECKING:
    from aggregator.publishing.outputs import Outputs

log = logging.getLogger("aggregator.service")


def make_fetcher(settings: Settings, now: Callable[[], datetime] | None = None) -> Fetcher:
    """A fetcher with this process's per-host politeness gate."""
    return fetcher_from_settings(settings, now or utc_now)


def make_outputs(
    settings: Settings, store: Store, catalog: Catalog, metrics: Metrics | None = None
) -> Outputs:
    from aggregator.publishing.archives import archive_dir_for  # noqa: PLC0415
    from aggregator.publishing.outputs import Outputs  # noqa: PLC0415
    from aggregator.publishing.websub import HubNotifier  # noqa: PLC0415

    notifier = (
        HubNotifier(settings.websub_hub, user_agent=settings.user_agent)
        if settings.websub_hub
        else None
    )
    return Outputs(
        store=store,
        catalog=catalog,
        base_url=settings.public_url,
        tag_authority=settings.item_authority,
        feed_size=settings.feed_size,
        archive_dir=archive_dir_for(settings.archive_dir, settings.database_url),
        hub_url=settings.websub_hub or None,
        max_age=settings.feed_max_age,
        recheck_seconds=settings.feed_recheck_seconds,
        variant_fallback=settings.language_variants == "fallback",
        site_title=settings.site_title,
        site_description=settings.site_description,
        on_change=notifier.notify if notifier is not None else None,
        metrics=metrics,
    )


def make_stage(
    settings: Settings,
    store: Store,
    models: Models | None = None,
    metrics: Metrics | None = None,
    catalog: Catalog | None = None,
) -> ClusteringStage:
    """The clustering stage as the settings ask; its model loads on first use, not here.
    ``catalog`` gives it the categories whose topic match it runs."""
    return ClusteringStage(
        store,
        semantic=settings.clustering == "semantic",
        max_age=settings.clustering_max_age,
        models=models or Models(engine=settings.embed_engine, cache=settings.model_cache_dir),
        metrics=metrics,
        catalog=catalog,
    )


def make_lease(settings: Settings) -> Lease:
    """This process's lease owner and length; a lease shorter than a fetch may take would
    run out under a fetch that is still within its rights."""
    if settings.lease_seconds <= settings.fetch_deadline:
        raise ConfigError(
            f"AGGREGATOR_LEASE_SECONDS ({settings.lease_seconds:g}) must be longer than "
            f"AGGREGATOR_FETCH_DEADLINE ({settings.fetch_deadline:g})",
            key="AGGREGATOR_LEASE_SECONDS",
        )
    return Lease(make_owner(settings.worker_name), settings.lease_seconds)


def _note_sigterm(signum: int, _frame: FrameType | None) -> None:
    log.info("action=shutdown reason=signal signal=%d", signum)


def listen(host: str, port: int) -> socket.socket:
    """The server's listening socket; a port that is taken or a host that is not ours is a
    ConfigError naming both, so the command prints one line instead of a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "is already in use (another aggregator?); choose another with --port"
        elif exc.errno == errno.EACCES:
            reason = "needs privileges this user does not have; choose a port above 1023"
        else:
            reason = f"cannot be listened on: {exc.strerror or exc}"
        raise ConfigError(f"port {port} on {host} {reason}", key="AGGREGATOR_PORT") from None
    return sock


class Service:
    """The pieces of a running aggregator over one store and one catalog."""

    def __init__(
        self, settings: Settings, store: Store, catalog: Catalog, *, models: Models | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        # One registry per service: what its refresher, stage, outputs and scheduler did.
        self.metrics = Metrics(
            store=store, categories=lambda: [c.id for c in self.catalog.categories]
        )
        self.fetcher = make_fetcher(settings)
        # Workers sharing PostgreSQL claim their sources under this lease (``claiming``).
        self.lease = make_lease(settings) if store.supports_leases else None
        self._tick_backoff = Backoff()
        self.refresher = self._make_refresher(catalog)
        self.clustering = make_stage(settings, store, models, metrics=self.metrics, catalog=catalog)
        # Article pages share the feeds' fetcher, hence their per-host gate.
        self.full_text = FullTextStage(store, self.fetcher, catalog)
        store.sync_sources(catalog, utc_now())
        sync_subscribers(settings, store, catalog)
        # Live reload (``apply_catalog``): outputs while serving, the catalog a tick takes up.
        self.outputs: Outputs | None = None
        self._catalog_lock = threading.Lock()
        self._pending: Catalog | None = None
        self._serving = False
        self.reloader = (
            ConfigReloader(
                catalog.directory, self.apply_catalog, interval=settings.config_reload_seconds
            )
            if catalog.directory is not None
            else None
        )

    def _make_refresher(self, catalog: Catalog) -> Refresher:
        return Refresher(
            store=self.store,
            fetcher=self.fetcher,
            catalog=catalog,
            workers=self.settings.fetch_workers,
            processes=self.settings.poll_processes,
            fetcher_factory=partial(fetcher_from_settings, self.settings),
            metrics=self.metrics,
            lease=self.lease,
        )

    def apply_catalog(self, catalog: Catalog) -> None:
        """Use ``catalog`` from now on: the store's sources at once (a paused source stops
        being due, a new one is due), the outputs and the clustering stage at once, and the
        polls from the next tick (a poll under way ends with the catalog it started with)."""
        self.store.sync_sources(catalog, utc_now())
        try:
            sync_subscribers(self.settings, self.store, catalog)
        except ConfigError as exc:
            # The catalog is fine; the subscribers the service already had keep receiving.
            log.error("action=webhooks-reload outcome=refused error=%s", exc)
        with self._catalog_lock:
            self.catalog = catalog
            self.clustering.catalog = catalog
            self.full_text.catalog = catalog
            if self.outputs is not None:
                self.outputs.use_catalog(catalog)
            if self._serving:
                self._pending = catalog
                return
        self._swap_refresher(catalog)

    def reload_now(self) -> None:
        """Read the editorial files and apply them now (the admin does after an edit); raises
        ConfigError, the running configuration kept, when they fail the checks."""
        if self.reloader is None:
            raise ConfigError("this service's catalog was not read from a folder")
        self.reloader.reload_now()

    def _tick(self) -> PollSummary | None:
        """The scheduler's tick, after taking up a catalog applied since the last one: only
        ticks poll while serving, so here no poll is under way."""
        with self._catalog_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._swap_refresher(pending)
        return tick(self.refresher, self.metrics, self._tick_backoff)

    def _swap_refresher(self, catalog: Catalog) -> None:
        # A new refresher, not new attributes on the old one: its poll worker processes were
        # started with the old categories and end with it.
        old, self.refresher = self.refresher, self._make_refresher(catalog)
        old.close()

    def poll(
        self,
        sources: Sequence[SourceStatus] | None = None,
        *,
        on_outcome: Callable[[PollOutcome], None] | None = None,
    ) -> PollSummary:
        """Poll ``sources``, or every active source when none are given."""
        if sources is None:
            return self.poll_due(everything=True, on_outcome=on_outcome)
        return self.refresher.poll(sources, on_outcome=on_outcome)

    def poll_due(
        self,
        *,
        everything: bool = False,
        on_outcome: Callable[[PollOutcome], None] | None = None,
        progress: Callable[[int], Callable[[PollOutcome], None] | None] | None = None,
    ) -> PollSummary:
        """One pass over the due sources (``everything``: every active one), through the
        refresher of the moment (``polling.due.poll_due``)."""
        return poll_due(
            self.refresher, everything=everything, on_outcome=on_outcome, progress=progress
        )

    def cluster(self, *, on_progress: Callable[[int, int], None] | None = None) -> StageSummary:
        """Cluster every pending entry (after a poll; ``run`` does it on its own schedule)."""
        return self.clustering.run(on_progress=on_progress)

    def fetch_full_text(self) -> FullTextSummary:
        """Check the article pages due (after a poll; ``run`` does it on its own schedule)."""
        return self.full_text.run()

    def serve(self, sock: socket.socket | None = None) -> None:
        """Scheduler and web server until SIGINT/SIGTERM (uvicorn handles both)."""
        # Imported here: the web stack is a third of `poll`'s start-up, which never serves.
        import uvicorn  # noqa: PLC0415

        from aggregator.web import create_app  # noqa: PLC0415
        from aggregator.web.guard import server_config  # noqa: PLC0415
        from aggregator.web.health import Readiness  # noqa: PLC0415

        # Before the service's threads start: each would otherwise get a malloc arena of its
        # own, holding its own freed pages (``runtime.heap``).
        heap.limit_arenas()
        heap.fix_mmap_threshold()
        # Ticks go through the service, which swaps in a reloaded catalog between two polls;
        # every job asks for the refresher of the moment.
        scheduler = build_scheduler(
            lambda: self.refresher,
            self.settings.tick_seconds,
            stage=self.clustering,
            metrics=self.metrics,
            retention_days=self.settings.retention_days,
            tick_job=self._tick,
            full_text_stage=self.full_text,
        )
        self.outputs = outputs = make_outputs(
            self.settings, self.store, self.catalog, metrics=self.metrics
        )
        readiness = Readiness(
            self.store,
            metrics=self.metrics,
            tick_seconds=self.settings.tick_seconds,
            max_lag_seconds=self.settings.ready_max_lag_seconds,
            write_error=lambda: outputs.write_error,
        )
        app = create_app(
            store=self.store,
            outputs=self.outputs,
            metrics=self.metrics,
            readiness=readiness,
            admin_token=self.settings.admin_token,
            config_dir=self.settings.config_dir,
            on_config_change=self.reload_now,
            allow_private_addresses=self.settings.allow_private_addresses,
            max_body_bytes=self.settings.max_body_bytes,
        )
        server = uvicorn.Server(server_config(app, self.settings))
        webhooks = make_dispatcher(self.settings, self.store)
        server_exit = server.handle_exit

        def handle_exit(sig: int, frame: FrameType | None) -> None:
            # No fetch starts once the signal came, not only after the web server wound down.
            self.refresher.stop()
            server_exit(sig, frame)

        server.handle_exit = handle_exit  # type: ignore[method-assign]

        def early_exit(sig: int, frame: FrameType | None) -> None:
            _note_sigterm(sig, frame)
            # Before uvicorn takes the signal over (the app still loading), this is the only
            # handler: without asking the server to stop, a SIGTERM then was lost.
            handle_exit(sig, frame)

        # uvicorn re-raises the SIGTERM it handled once it has stopped; with the default
        # handler that would kill us before the scheduler is shut down, so note it instead.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, early_exit) if in_main else None
        self._serving = True
        scheduler.start()
        webhooks.start()
        if self.reloader is not None:
            self.reloader.start()
        log.info("action=serve outcome=start url=%s", self.settings.public_url)
        try:
            server.run(sockets=[sock] if sock is not None else None)
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
            log.info("action=shutdown outcome=start")
            if self.reloader is not None:
                self.reloader.stop()
            # A post in flight ends first; claimed but unsent deliveries are due again soon.
            webhooks.stop()
            # The stage stops after its current batch; wait=True lets a running tick finish
            # its current source's transaction and that batch commit.
            self.clustering.stop()
            self.full_text.stop()
            # A tick under way: fetches in flight end and are saved, no new one starts, and
            # the sources it claimed but did not save are released (``claiming``).
            self.refresher.stop()
            scheduler.shutdown(wait=True)
            self._serving = False
            readiness.close()
            log.info("action=shutdown outcome=done")

    def close(self) -> None:
        self.refresher.close()
        self.fetcher.close()
        if self.lease is not None:
            release_all(self.store, self.lease)
