"""The project's exception tree; every error we raise on purpose is one of these.

    AggregatorError
    ├── ConfigError          editorial files or settings are wrong (names file, id, key)
    ├── UsageError           the command line asks for something the command cannot do
    ├── SourceError          one source could not be read; recorded on its row, never fatal
    │   ├── FetchError       transport, HTTP status, size or timeout problems
    │   └── ParseError       the body is not a feed we can read
    ├── StoreError           the database refused or is unreachable
    ├── PublishError         an output feed could not be rendered
    └── EditRefused          an editor's operation was refused (not found, invalid, conflict)

Foreign exceptions are translated at the adapter boundary (``raise FetchError(...) from exc``).
"Not modified" is a result, not an error.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class AggregatorError(Exception):
    """Root of every error the aggregator raises on purpose."""


class ConfigError(AggregatorError):
    """An editorial file or a setting is invalid.

    ``file``, ``item`` (a source or category id) and ``key`` locate the problem so the message
    can say exactly where to look.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        item: str | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.item = item
        self.key = key
        self.reason = message
        where = []
        if file:
            where.append(file)
        if item:
            where.append(f"id={item!r}")
        if key:
            where.append(f"key={key!r}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)


class UsageError(AggregatorError):
    """Options that do not go together, or one a command does not honour; the command line
    is wrong, not the configuration."""


class SourceError(AggregatorError):
    """A source could not be refreshed; ``kind`` is a short machine-readable label."""

    kind = "source"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class FetchError(SourceError):
    """The HTTP exchange failed (network, status, size, time, safety).

    ``retry_after`` is when the server (429/503 Retry-After) or our own host back-off allows the
    next request to that host; ``url`` is the URL that failed (after redirects, if any).
    """

    kind = "fetch"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        status: int | None = None,
        retry_after: datetime | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, kind=kind)
        self.status = status
        self.retry_after = retry_after
        self.url = url


class ParseError(SourceError):
    """The body could not be read as an RSS, Atom or JSON feed."""

    kind = "parse"


class StoreError(AggregatorError):
    """The database refused an operation or could not be reached."""


class PublishError(AggregatorError):
    """An output feed could not be rendered."""


class Refusal(StrEnum):
    """Why an editor's operation was refused; the web answers 404, 422 and 409 for them."""

    NOT_FOUND = "not_found"
    INVALID = "invalid"
    CONFLICT = "conflict"


class EditRefused(AggregatorError):
    """An editor's operation (CLI, API or admin page) was refused before anything changed:
    ``refusal`` says why, ``field`` names the input at fault."""

    def __init__(self, refusal: Refusal, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message
        self.field = field
