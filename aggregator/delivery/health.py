"""Source-health alerts: whether a source is failing N times in a row, gone, moved, empty, or
silent far beyond its own rhythm, in words an editor can act on. A pure function of the
source's stored health, shown on ``/admin/`` and sent as ``source.health`` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.store.webhooks import SourceFacts
from aggregator.types import SourceHealth, SourceState

DEFAULT_FAILURES = 3
DEFAULT_SILENT_FACTOR = 10.0
# A source that publishes several times an hour is not "silent" after ten quiet minutes.
MIN_SILENCE = timedelta(days=2)


@dataclass(frozen=True)
class Alert:
    """One source's health; ``detail`` says why in words (empty when ok)."""

    source_id: str
    health: SourceHealth
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"source_id": self.source_id, "health": self.health.value, "detail": self.detail}


def assess(
    source: SourceFacts,
    now: datetime,
    *,
    failures: int = DEFAULT_FAILURES,
    silent_factor: float = DEFAULT_SILENT_FACTOR,
) -> Alert:
    """The most pressing of the source's problems, or ok."""

    def alert(health: SourceHealth, detail: str = "") -> Alert:
        return Alert(source.id, health, detail)

    if source.state == SourceState.GONE:
        return alert(SourceHealth.GONE, f"the feed is gone: {source.last_error or 'HTTP 410'}")
    if source.state != SourceState.ACTIVE:
        return alert(SourceHealth.OK)
    if source.error_count >= failures:
        return alert(
            SourceHealth.FAILING,
            f"{source.error_count} failed polls in a row; "
            f"last: {source.last_error or 'unknown error'}",
        )
    if source.redirect_url:
        return alert(SourceHealth.MOVED, f"redirects permanently to {source.redirect_url}")
    if source.configured_url and source.url != source.configured_url:
        return alert(
            SourceHealth.MOVED,
            f"moved from {source.configured_url} to {source.url}; update sources.toml",
        )
    if source.last_success_at is not None and source.entries == 0:
        return alert(SourceHealth.EMPTY, "the feed answers but has no entries")
    if source.publish_interval_seconds and source.newest_entry_at is not None:
        quiet = now - source.newest_entry_at
        allowed = max(
            MIN_SILENCE, timedelta(seconds=source.publish_interval_seconds * silent_factor)
        )
        if quiet > allowed:
            return alert(
                SourceHealth.SILENT,
                f"no new entry for {_days(quiet)}, though it usually publishes "
                f"every {_days(timedelta(seconds=source.publish_interval_seconds))}",
            )
    return alert(SourceHealth.OK)


def _days(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
