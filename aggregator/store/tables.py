"""The store's tables as SQLAlchemy Core objects, for the modules that write SQL directly.

One name per table, taken from the SQLModel classes in ``models`` (the schema's one home), so
the Core modules of the store (entries, clustering, overrides, leases, retention, gauges) share
them instead of each re-deriving its own.
"""

from __future__ import annotations

import sqlalchemy as sa

from aggregator.store.models import (
    ClusteringState,
    Entry,
    EntryCategory,
    EntryFeatureRecord,
    EntryFullText,
    HostHold,
    LanguageCenter,
    OutputMark,
    Source,
    Story,
    StoryOverride,
    Tombstone,
    WebhookDelivery,
    WebhookEvent,
    WebhookMark,
    WebhookSubscriber,
)


def _table(model: type) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


SOURCES = _table(Source)
ENTRIES = _table(Entry)
STORIES = _table(Story)
CATEGORIES = _table(EntryCategory)
FEATURES = _table(EntryFeatureRecord)
FULL_TEXTS = _table(EntryFullText)
CENTERING = _table(LanguageCenter)
STATE = _table(ClusteringState)
OVERRIDES = _table(StoryOverride)
TOMBSTONES = _table(Tombstone)
HOLDS = _table(HostHold)
MARKS = _table(OutputMark)
HOOK_SUBSCRIBERS = _table(WebhookSubscriber)
HOOK_EVENTS = _table(WebhookEvent)
HOOK_DELIVERIES = _table(WebhookDelivery)
HOOK_MARKS = _table(WebhookMark)
