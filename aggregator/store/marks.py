"""What a start-up compares with the database, computed with the standard library only: the
schema head declared by the migration files and the digest of a catalog's sources.

Kept apart from ``migrate`` and ``sourcerows`` so the idle-poll check (``store.idle``) can use
them without importing SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from aggregator.catalog import Catalog

# The row of ``catalog_marks`` that holds the digest of the sources last synced.
SOURCES_MARK = "sources"
# The row that holds the digest of the files' bytes those sources were parsed from, when an
# idle poll may trust it (``files_mark``).
FILES_MARK = "files"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_DECLARED = re.compile(
    r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|None)\s*$""", re.MULTILINE
)


@lru_cache(maxsize=1)
def declared_revisions() -> dict[str, str | None] | None:
    """Each migration file's revision and the one it revises, read from the files' text
    rather than by importing them; None when a file does not declare both plainly (a merge's
    tuple), and then Alembic decides."""
    chain: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = dict((m.group(1), m.group(2)) for m in _DECLARED.finditer(path.read_text()))
        revision = found.get("revision")
        if revision is None or "down_revision" not in found:
            return None
        chain[revision] = found["down_revision"]
    return chain


def declared_head() -> str | None:
    """The one head of a plain chain of migration files; None when only Alembic can tell."""
    chain = declared_revisions()
    if chain is None:
        return None
    heads = set(chain) - set(chain.values())
    return heads.pop() if len(heads) == 1 else None


def catalog_digest(catalog: Catalog, head: str) -> str:
    """What the source sync reads of the catalog, hashed with the schema head it writes
    under: equal digests, equal rows. Taken from the parsed sources rather than the files'
    bytes, so a file edited between its reading and the sync cannot be marked as synced."""
    text = f"{head}\n{catalog.sources!r}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def files_mark(catalog: Catalog, head: str) -> str | None:
    """What ``FILES_MARK`` holds once ``catalog`` is synced: its files' bytes hashed with the
    schema head, so that unchanged files need no parsing to know the rows match them. None
    when the bytes may not answer for the catalog: it was not read from the files as they
    are, or changed since, or a source has full text (its stage must look at the store)."""
    read = catalog.files
    if read is None or read.sources != catalog.sources:
        return None
    if any(s.full_text and s.enabled for s in catalog.sources):
        return None
    return files_mark_of(read.digest, head)


def files_mark_of(files_digest: str, head: str) -> str:
    """``FILES_MARK``'s value for files of ``files_digest`` under schema ``head``."""
    return hashlib.sha256(f"{head}\n{files_digest}".encode()).hexdigest()
