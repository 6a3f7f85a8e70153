"""``aggregator poll`` when nothing is due: the answer before the store, the pipeline and the
clustering stage are imported. A cron job asks every few minutes and mostly nothing is due;
the check reads the SQLite file with the standard library (``store.idle``) and, at any doubt,
leaves the command to its normal path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aggregator.catalog import Catalog, read_files_digest
from aggregator.clock import utc_now
from aggregator.delivery.subscribers import WEBHOOKS_FILE
from aggregator.safety.terminal import terminal_json
from aggregator.settings import Settings
from aggregator.store import idle
from aggregator.store.marks import (
    FILES_MARK,
    SOURCES_MARK,
    catalog_digest,
    declared_head,
    files_mark_of,
)
from aggregator.types import FullTextOutcome, PollResult

NOTHING_DUE = "no source is due (use --all to poll every active source)"


def nothing_to_do_unparsed(settings: Settings) -> bool:
    """``nothing_to_do`` before the catalog is parsed (at 10,000 sources parsing costs more
    than the rest of an idle poll): True when the files' bytes are those the store's sources
    were last synced from and the store has nothing to do; False whenever the parsed
    catalog must decide."""

    def files(head: str) -> str | None:
        digest = read_files_digest(settings.config_dir)
        return None if digest is None else files_mark_of(digest, head)

    return _store_idle(settings, settings.config_dir, FILES_MARK, files)


def nothing_to_do(settings: Settings, catalog: Catalog) -> bool:
    """True when a poll of the due sources would poll, fetch and cluster nothing and change
    nothing in the store; False whenever the normal path must decide."""
    if any(s.full_text and s.enabled for s in catalog.sources):
        return False  # the full-text stage asks the store for article pages due a check
    return _store_idle(
        settings,
        catalog.directory or settings.config_dir,
        SOURCES_MARK,
        lambda head: catalog_digest(catalog, head),
    )


def _store_idle(
    settings: Settings, directory: Path, mark: str, digest: Callable[[str], str | None]
) -> bool:
    """Whether the store has nothing to do for a catalog that ``catalog_marks`` row ``mark``
    must show as synced with ``digest(head)`` (None: unknown, so not idle)."""
    if (directory / WEBHOOKS_FILE).exists():
        return False  # its subscribers are synced into the store at every start
    head = declared_head()
    if head is None:
        return False
    expected = digest(head)
    if expected is None:
        return False
    return idle.nothing_to_do(
        settings.database_url, head=head, mark=mark, digest=expected, now=utc_now()
    )


def idle_json() -> dict[str, Any]:
    """The ``--json`` summary of a poll that polled, fetched and clustered nothing."""
    return {
        "sources": 0,
        "new_entries": 0,
        "updated_entries": 0,
        "results": {result.value: 0 for result in PollResult},
        "errors": [],
        "clustered": {
            "entries": 0,
            "new": 0,
            "join": 0,
            "merge": 0,
            "kept": 0,
            "paths": {},
            "horizon_hours": None,
        },
        "full_text": {"unchanged": 0, **{o.value: 0 for o in FullTextOutcome}},
    }


def report_idle(*, as_json: bool) -> None:
    print(terminal_json(idle_json()) if as_json else NOTHING_DUE)
