"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body bytes, sent as
``Aggregator-Signature: t=<unix seconds>,v1=<hex>`` (the scheme Stripe uses), and the check a
receiver makes, including the tolerance that turns a replayed old request away.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Aggregator-Signature"
SCHEME = "v1"
# How old a signed timestamp a receiver should accept; docs/webhooks.md says the same.
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, *, now: int, tolerance: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` of
    ``now``; any ``v1`` value may match (several are sent while a secret is rotated)."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for name, value in fields if name.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(
        hmac.compare_digest(expected, value.strip())
        for name, value in fields
        if name.strip() == SCHEME
    )
