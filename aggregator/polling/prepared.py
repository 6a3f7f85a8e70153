"""What preparing one fetched body gives: the feed's own fields and its classified entries.

A value of its own module so that the process that saves it (the service, which receives it
from a poll worker, and unpickles it) does not import the parser that made it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.types import CategoryMatch, NormalizedEntry


@dataclass(frozen=True)
class PreparedFeed:
    title: str | None
    link: str | None
    ttl_minutes: int | None
    publish_interval: float | None
    entries: tuple[tuple[NormalizedEntry, tuple[CategoryMatch, ...]], ...]
    # The parser's complaint about a document it read anyway (not well-formed XML, ...).
    bozo_message: str | None = None
