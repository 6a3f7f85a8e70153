"""The audit log's rows for edits of the configured sources: one shape for each edit, whether
an editor makes it in the admin pages, through the JSON API or on the command line."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.catalog import SourceConfig
from aggregator.editorial.configedit import NewCategory, NewSource
from aggregator.store.accounts import AuditNote
from aggregator.types import AuditKind


def enabled_note(by: str, source: SourceConfig, enabled: bool) -> AuditNote:
    return AuditNote(
        by,
        AuditKind.SOURCE,
        "resume" if enabled else "pause",
        source.id,
        {"enabled": {"before": source.enabled, "after": enabled}},
    )


def removed_note(by: str, source: SourceConfig) -> AuditNote:
    return AuditNote(
        by,
        AuditKind.SOURCE,
        "remove",
        source.id,
        {"url": source.url, "categories": list(source.categories)},
    )


def added_note(by: str, source: NewSource) -> AuditNote:
    return AuditNote(
        by,
        AuditKind.SOURCE,
        "add",
        source.id,
        {
            "url": source.url,
            "categories": list(source.categories),
            "public_only": source.public_only,
        },
    )


def imported_note(
    by: str, sources: Sequence[NewSource], categories: Sequence[NewCategory]
) -> AuditNote:
    """One row for an OPML import: the sources and categories it added, by id."""
    return AuditNote(
        by,
        AuditKind.SOURCE,
        "import",
        f"{len(sources)} sources",
        {"sources": [s.id for s in sources], "categories": [c.id for c in categories]},
    )
