"""What every command gets: the settings, its parsed arguments, and the store and catalog
they name, opened the same way (the schema revision checked) for every command."""

from __future__ import annotations

import argparse
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import __version__
from aggregator.catalog import Catalog, load_catalog
from aggregator.errors import StoreError
from aggregator.settings import Settings

if TYPE_CHECKING:
    from aggregator.store import Store

log = logging.getLogger("aggregator.cli")

_SQLITE_FILE = re.compile(r"^sqlite(?:\+\w+)?:///([^?]+)")


@dataclass
class Context:
    settings: Settings
    args: argparse.Namespace

    @property
    def editor(self) -> str:
        """Who the audit log names for an edit made here: ``--by``, else the login, else cli."""
        return str(getattr(self.args, "by", None) or os.environ.get("USER") or "cli")

    def catalog(self) -> Catalog:
        return load_catalog(self.settings.config_dir)

    def store(self, *, auto_upgrade: bool) -> Store:
        # Imported here: SQLAlchemy and Alembic are most of a command's start-up, and
        # `--help`, `check` and the config edits never open the store.
        from aggregator.store import (
            GrowthLimits,
            current_revision,
            head_revision,
            is_known_revision,
            open_store,
        )
        from aggregator.store import upgrade as upgrade_schema

        url = self.settings.database_url
        missing = _missing_sqlite_file(url)
        if missing is not None and not auto_upgrade:
            # Opening would create an empty file here and then ask for `db upgrade`: the
            # usual cause is running from another folder than the one holding the database.
            raise StoreError(
                f"no database at {missing}{_relative_note(url, missing)}; run "
                f"from the folder that holds it, or give --database (or "
                f"AGGREGATOR_DATABASE_URL) an absolute sqlite:////path"
            )
        if missing is not None:
            # A log line, not a print: with AGGREGATOR_LOG_FORMAT=json stderr stays JSON.
            log.info(
                "action=db-create outcome=start path=%s note=%r",
                missing,
                _relative_note(url, missing).strip(" ()") or "absolute path",
            )
        limits = GrowthLimits(
            new_per_poll=self.settings.max_new_entries_per_poll,
            per_source=self.settings.max_entries_per_source,
        )
        store = open_store(url, limits)
        revision = current_revision(store.engine)
        head = head_revision()
        if revision is None and auto_upgrade:
            log.info("action=db-upgrade outcome=start reason=empty-database")
            upgrade_schema(store.engine)
        elif revision is None:
            raise StoreError("the database has no schema yet; run `aggregator db upgrade`")
        elif revision != head:
            if not is_known_revision(revision):
                raise StoreError(
                    f"the database schema {revision} is newer than this "
                    f"aggregator ({__version__}); upgrade the aggregator"
                )
            raise StoreError(
                f"the database schema is at {revision}, this version needs "
                f"{head}; run `aggregator db upgrade`"
            )
        return store


def _missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database file that does not exist yet, else None."""
    match = _SQLITE_FILE.match(url)
    if match is None or match.group(1).startswith((":memory:", "file:")):
        return None
    path = Path(match.group(1)).expanduser().absolute()
    return None if path.exists() else path


def _relative_note(url: str, path: Path) -> str:
    written = _SQLITE_FILE.match(url)
    if written is None or Path(written.group(1)).expanduser().is_absolute():
        return ""
    return f" ({url} is relative to the current folder {Path.cwd()})"


def when_text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"
