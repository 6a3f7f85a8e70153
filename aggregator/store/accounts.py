"""Editors' accounts, the audit log of their edits and the sessions' signing key, in SQL.

Each function works inside its caller's transaction: an audit row is written in the same
transaction as the edit it records (``Store`` passes the connection of the edit), so an edit
refused or rolled back leaves no row, and no edit goes unrecorded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from aggregator.store.models import AuditRecord, EditorAccount, SigningKey
from aggregator.types import AuditKind, Role

EDITORS: sa.Table = EditorAccount.__table__  # type: ignore[attr-defined]
AUDIT: sa.Table = AuditRecord.__table__  # type: ignore[attr-defined]
KEYS: sa.Table = SigningKey.__table__  # type: ignore[attr-defined]
SESSION_KEY_NAME = "admin-sessions"


@dataclass(frozen=True)
class EditorView:
    """An account as the CLI, the API and the admin pages show it: never its token or hash."""

    name: str
    role: Role
    created_at: datetime
    created_by: str
    rotated_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": str(self.role),
            "active": self.active,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "rotated_at": _iso(self.rotated_at),
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class AuditNote:
    """An edit to record: who, what kind, which action on which target, and the change."""

    editor: str
    kind: AuditKind
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    editor: str
    kind: str
    action: str
    target: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "editor": self.editor,
            "kind": self.kind,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        }


def _view(row: RowMapping) -> EditorView:
    return EditorView(
        name=row["name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
    )


def list_editors(connection: Connection) -> list[EditorView]:
    rows = connection.execute(sa.select(EDITORS).order_by(EDITORS.c.name)).mappings()
    return [_view(row) for row in rows]


def active_count(connection: Connection) -> int:
    return int(
        connection.execute(
            sa.select(sa.func.count()).select_from(EDITORS).where(EDITORS.c.revoked_at.is_(None))
        ).scalar()
        or 0
    )


def by_key(connection: Connection, key: str) -> tuple[EditorView, str] | None:
    """The active account a token key names, with its stored hash; None when revoked."""
    row = (
        connection.execute(
            sa.select(EDITORS)
            .where(EDITORS.c.token_key == key)
            .where(EDITORS.c.revoked_at.is_(None))
        )
        .mappings()
        .first()
    )
    return None if row is None else (_view(row), row["token_hash"])


def add_editor(
    connection: Connection, name: str, role: Role, key: str, hashed: str, *, by: str, now: datetime
) -> None:
    """A new account; a revoked one of the same name comes back with the new token.
    Raises ValueError when an active account has the name."""
    row = connection.execute(sa.select(EDITORS.c.revoked_at).where(EDITORS.c.name == name)).first()
    if row is not None and row.revoked_at is None:
        raise ValueError(f"an editor {name!r} already exists; rotate or revoke that one")
    values = {
        "role": str(role),
        "token_key": key,
        "token_hash": hashed,
        "created_at": now,
        "created_by": by,
        "rotated_at": None,
        "revoked_at": None,
        "revoked_by": None,
    }
    if row is None:
        connection.execute(EDITORS.insert().values(name=name, **values))
    else:
        connection.execute(EDITORS.update().where(EDITORS.c.name == name).values(**values))


def rotate_editor(
    connection: Connection, name: str, key: str, hashed: str, *, now: datetime
) -> None:
    done = connection.execute(
        EDITORS.update()
        .where(EDITORS.c.name == name)
        .where(EDITORS.c.revoked_at.is_(None))
        .values(token_key=key, token_hash=hashed, rotated_at=now)
    )
    if not done.rowcount:
        raise ValueError(f"no active editor {name!r}")


def revoke_editor(connection: Connection, name: str, *, by: str, now: datetime) -> None:
    done = connection.execute(
        EDITORS.update()
        .where(EDITORS.c.name == name)
        .where(EDITORS.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by)
    )
    if not done.rowcount:
        raise ValueError(f"no active editor {name!r}")


def record(connection: Connection, note: AuditNote, now: datetime, **result: object) -> None:
    detail = {**note.detail, **{k: v for k, v in result.items() if v is not None}}
    connection.execute(
        AUDIT.insert().values(
            at=now,
            editor=note.editor,
            kind=str(note.kind),
            action=note.action,
            target=note.target[:200],
            detail=detail or None,
        )
    )


def audit_page(connection: Connection, limit: int, before: int | None = None) -> list[AuditView]:
    """Newest first: at most ``limit`` rows older than the row ``before``."""
    query = sa.select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AUDIT.c.id < before)
    return [
        AuditView(
            id=row["id"],
            at=row["at"],
            editor=row["editor"],
            kind=row["kind"],
            action=row["action"],
            target=row["target"],
            detail=row["detail"] or {},
        )
        for row in connection.execute(query).mappings()
    ]


def signing_secret(connection: Connection) -> str:
    """The sessions' signing key, made on first use; the first worker to make it wins."""
    query = sa.select(KEYS.c.secret).where(KEYS.c.name == SESSION_KEY_NAME)
    found = connection.execute(query).scalar()
    if found is not None:
        return str(found)
    try:
        with connection.begin_nested():
            connection.execute(
                KEYS.insert().values(name=SESSION_KEY_NAME, secret=secrets.token_urlsafe(48))
            )
    except IntegrityError:
        pass
    return str(connection.execute(query).scalar())
