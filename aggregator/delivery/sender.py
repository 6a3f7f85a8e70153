"""Sending queued webhook deliveries: the JSON body (schema version 1, docs/webhooks.md), its
signature and idempotency headers, and capped exponential back-off after a failure. The queue
is the database, so retries survive restarts; delivery is at least once, and the event's id
(its idempotency key) lets a receiver drop the repeats.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aggregator.clock import utc_now
from aggregator.delivery.signing import SIGNATURE_HEADER, signature_header
from aggregator.delivery.subscribers import resolve_secret
from aggregator.polling.fetch.poster import Poster
from aggregator.store.webhooks import DueDelivery, WebhookStore

log = logging.getLogger("aggregator.webhooks")

SCHEMA_VERSION = 1
EVENT_HEADER = "Aggregator-Event"
ID_HEADER = "Idempotency-Key"
DELIVERY_HEADER = "Aggregator-Delivery"
DEFAULT_RETRY_SECONDS = 30.0
DEFAULT_RETRY_MAX_SECONDS = 3600.0
DEFAULT_MAX_ATTEMPTS = 25
BATCH = 50


def event_body(delivery: DueDelivery) -> bytes:
    """The exact bytes POSTed for an event: the same on every attempt and to every
    subscriber, so a receiver may compare them."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "id": delivery.event_key,
        "type": delivery.event_kind,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


def backoff(attempts: int, base: float, cap: float) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2×base, 4×base … up to cap."""
    return timedelta(seconds=min(cap, base * 2 ** min(max(attempts - 1, 0), 32)))


class Sender:
    """Claims due deliveries and posts them, one at a time, recording every outcome."""

    def __init__(
        self,
        hooks: WebhookStore,
        poster: Poster,
        *,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        retry_max_seconds: float = DEFAULT_RETRY_MAX_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        now: Callable[[], datetime] = utc_now,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.hooks = hooks
        self.poster = poster
        self.retry_seconds = retry_seconds
        self.retry_max_seconds = retry_max_seconds
        self.max_attempts = max_attempts
        self.now = now
        self.environ = environ

    def run(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Send what is due now (one batch); returns how many were attempted."""
        now = self.now()
        # Held past the longest a post may take, so no other sender takes it meanwhile and a
        # crash leaves it due again soon after.
        hold = now + timedelta(seconds=self.poster.timeout * 2 + 5)
        claimed = self.hooks.claim_due(now, hold, BATCH)
        for index, delivery in enumerate(claimed):
            if stop():
                # Claimed but not sent: due again at once, for the next process or round.
                self.hooks.release([d.id for d in claimed[index:]], self.now())
                return index
            self._send(delivery)
        return len(claimed)

    def _send(self, delivery: DueDelivery) -> None:
        subscriber = delivery.subscriber
        secret = resolve_secret(subscriber, self.environ)
        body = event_body(delivery)
        if secret is None:
            status, error = (
                None,
                (f"environment variable {subscriber.secret_env} is not set; nothing was sent"),
            )
        else:
            # The wall clock, whatever ``now`` schedules by: receivers compare it with theirs.
            stamp = int(utc_now().timestamp())
            headers = {
                "Content-Type": "application/json",
                EVENT_HEADER: delivery.event_kind,
                ID_HEADER: delivery.event_key,
                DELIVERY_HEADER: str(delivery.id),
                SIGNATURE_HEADER: signature_header(secret, stamp, body),
            }
            answer = self.poster.post(subscriber.url, body, headers)
            if answer.ok:
                self.hooks.finish(
                    delivery.id,
                    now=self.now(),
                    delivered=True,
                    status=answer.status,
                    error=None,
                    retry_at=None,
                )
                log.info(
                    "action=webhook_send outcome=ok subscriber=%s event=%s status=%s",
                    subscriber.id,
                    delivery.event_key,
                    answer.status,
                )
                return
            status = answer.status
            error = answer.error or f"HTTP {answer.status}"
        attempts = delivery.attempts + 1
        retry_at = (
            self.now() + backoff(attempts, self.retry_seconds, self.retry_max_seconds)
            if attempts < self.max_attempts
            else None
        )
        self.hooks.finish(
            delivery.id,
            now=self.now(),
            delivered=False,
            status=status,
            error=error,
            retry_at=retry_at,
        )
        log.warning(
            "action=webhook_send outcome=%s subscriber=%s event=%s attempt=%d error=%s",
            "retry" if retry_at else "gave_up",
            subscriber.id,
            delivery.event_key,
            attempts,
            error,
        )
