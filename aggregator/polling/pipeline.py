"""The CPU-bound middle of a poll: parse → normalize → classify one fetched body.

A plain function of picklable values, so it can run in a worker process (parsing holds the
GIL; on several cores, processes are what makes a first poll faster). No I/O, no store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregator.catalog import CategoryConfig
from aggregator.editorial.classify import classify
from aggregator.polling.normalize import normalize_feed
from aggregator.polling.parse import parse_feed
from aggregator.polling.prepared import PreparedFeed
from aggregator.polling.schedule import publishing_interval

__all__ = ["PreparedFeed", "prepare_feed"]


def prepare_feed(
    content: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    source_language: str | None,
    source_categories: Sequence[str],
    categories: Mapping[str, CategoryConfig],
    now: datetime,
    source_id: str | None = None,
) -> PreparedFeed:
    """Raises ParseError for a body that is not a feed. ``source_id`` applies that source's own
    rules (carried by its categories' configs) too."""
    feed = parse_feed(content, url=url, headers=headers)
    entries = normalize_feed(feed, feed_url=url, source_language=source_language, now=now)
    classified = tuple(
        (
            entry,
            tuple(
                classify(
                    entry,
                    source_categories=source_categories,
                    categories=categories,
                    source_id=source_id,
                )
            ),
        )
        for entry in entries
    )
    # Only dates the feed really gave count for its rhythm (missing ones were set to now).
    dated = [e.published for e in feed.entries if e.published is not None]
    return PreparedFeed(
        title=feed.title,
        link=feed.link,
        ttl_minutes=feed.ttl_minutes,
        publish_interval=publishing_interval(dated),
        entries=classified,
        bozo_message=feed.bozo_message,
    )
