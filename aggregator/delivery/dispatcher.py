"""The webhook loop of a running service: every few seconds, detect new events, then send what
is due, on one background thread that stops between two deliveries on shutdown; about once an
hour it also trims the delivery log to its configured age.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from aggregator.catalog import Catalog
from aggregator.clock import utc_now
from aggregator.delivery.detect import Detector
from aggregator.delivery.sender import Sender
from aggregator.delivery.subscribers import load_subscribers
from aggregator.errors import AggregatorError
from aggregator.polling.fetch.poster import Poster
from aggregator.settings import Settings
from aggregator.store import Store

log = logging.getLogger("aggregator.webhooks")

# Rounds of sending in a row before the detector looks again.
MAX_SEND_ROUNDS = 20
# The delivery log is trimmed at most this often, a bounded batch each time, so a long log
# shrinks over a few hours without holding the write lock for long.
FORGET_EVERY = timedelta(hours=1)
FORGET_BATCH = 500


class Dispatcher:
    """Runs ``detector`` and ``sender`` every ``interval`` seconds until ``stop``."""

    def __init__(
        self, detector: Detector, sender: Sender, *, interval: float, log_days: int = 0
    ) -> None:
        self.detector = detector
        self.sender = sender
        self.interval = interval
        self.log_days = log_days
        self._forgot_at: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.sender.poster.close()

    def once(self) -> None:
        """One round: detect, then send until nothing is due (or a bounded number of
        batches, so detection keeps its pace under a large backlog)."""
        now = utc_now()
        self.detector.run(now)
        for _ in range(MAX_SEND_ROUNDS):
            if self._stop.is_set() or not self.sender.run(self._stop.is_set):
                break
        self.forget(now)

    def forget(self, now: datetime) -> int:
        """Trim the delivery log to ``log_days`` (0: keep all), at most once per
        ``FORGET_EVERY``; returns how many deliveries went."""
        if self.log_days <= 0 or (
            self._forgot_at is not None and now - self._forgot_at < FORGET_EVERY
        ):
            return 0
        self._forgot_at = now
        forgotten = self.sender.hooks.forget(now - timedelta(days=self.log_days), FORGET_BATCH)
        if forgotten:
            log.info("action=webhook_log_trim outcome=done deliveries=%d", forgotten)
        return forgotten

    def _run(self) -> None:
        # The first round waits one interval too: a starting service has its web server and
        # first poll to bring up, and nothing is due yet.
        while not self._stop.wait(self.interval):
            try:
                self.once()
            except AggregatorError as exc:
                # A database hiccup: the queue is in the database, so the next round resumes.
                log.warning("action=webhook_round outcome=error error=%s", exc)
            except Exception:
                log.exception("action=webhook_round outcome=error")


def sync_subscribers(settings: Settings, store: Store, catalog: Catalog) -> int:
    """Read ``webhooks.toml`` beside the catalog and make its subscribers the store's
    ``file`` ones; a bad file raises ``ConfigError`` and changes nothing."""
    directory = catalog.directory or settings.config_dir
    subscribers = load_subscribers(
        directory,
        categories=[c.id for c in catalog.categories],
        allow_private=settings.allow_private_addresses,
    )
    store.webhooks.sync_file_subscribers(subscribers, utc_now())
    return len(subscribers)


def make_dispatcher(settings: Settings, store: Store) -> Dispatcher:
    """The webhook loop as the settings ask, over ``store``."""
    poster = Poster(
        user_agent=settings.user_agent,
        timeout=settings.webhook_timeout,
        allow_private=settings.allow_private_addresses,
    )
    sender = Sender(
        store.webhooks,
        poster,
        retry_seconds=settings.webhook_retry_seconds,
        retry_max_seconds=settings.webhook_retry_max_seconds,
        max_attempts=settings.webhook_max_attempts,
    )
    detector = Detector(
        store.webhooks, failures=settings.alert_failures, silent_factor=settings.alert_silent_factor
    )
    return Dispatcher(
        detector, sender, interval=settings.webhook_seconds, log_days=settings.webhook_log_days
    )
