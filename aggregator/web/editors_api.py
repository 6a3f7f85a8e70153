"""The JSON API of editors' accounts and of the audit log: ``/api/audit`` (any editor, newest
first, paged with ``limit`` and ``after`` and a ``Link: rel="next"`` like the other lists) and
``/api/editors`` (admins only: list, add with the token shown once, rotate, revoke).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from aggregator.editorial.operations import Workbench
from aggregator.types import Role
from aggregator.web.auth import (
    DEFAULT_API_EDITOR,
    EDITOR_HEADER,
    Auth,
    acting_editor,
    bearer_scheme,
    token_route_class,
)
from aggregator.web.paging import MAX_CURSOR_LENGTH, decode_key, encode_cursor, next_link

MAX_AUDIT_LIMIT = 500
EditorName = Annotated[str, Path(max_length=64)]


class AuditOut(BaseModel):
    id: int
    at: datetime
    editor: str = Field(description="who made the edit (the account's name)")
    kind: str = Field(description="source, rules, correction or editor")
    action: str
    target: str
    detail: dict[str, Any] = Field(description="what changed")


class EditorOut(BaseModel):
    name: str
    role: Role
    active: bool
    created_at: datetime
    created_by: str
    rotated_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


class EditorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    role: Role = Role.EDITOR


class TokenOut(BaseModel):
    name: str
    message: str
    token: str = Field(description="shown this once; only its hash is kept")


_AUDIT = TypeAdapter(list[AuditOut])


def include_editors_api(app: FastAPI, bench: Workbench, auth: Auth, *, base_url: str) -> None:
    staff = APIRouter(
        prefix="/api",
        tags=["editors"],
        route_class=token_route_class(auth),
        dependencies=[Security(bearer_scheme())],
    )
    admins = APIRouter(
        prefix="/api",
        tags=["editors"],
        route_class=token_route_class(auth, Role.ADMIN),
        dependencies=[Security(bearer_scheme())],
    )

    def acting(request: Request) -> str:
        return acting_editor(request, request.headers.get(EDITOR_HEADER), DEFAULT_API_EDITOR)

    @staff.get("/audit", response_model=list[AuditOut])
    def audit(
        request: Request,
        after: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_LIMIT)] = 50,
    ) -> Response:
        """Edits of sources, rules, corrections and accounts: who, when, what changed;
        newest first."""
        before = None
        if after is not None:
            key = decode_key(after)
            if not key.isdigit():
                raise HTTPException(422, "after: not a cursor this list gave")
            before = int(key)
        rows = bench.audit_log(limit + 1, before)
        page = rows[:limit]
        cursor = encode_cursor(str(page[-1].id)) if len(rows) > limit and page else None
        body = _AUDIT.dump_json([AuditOut.model_validate(r.as_json()) for r in page])
        return Response(
            body,
            media_type="application/json",
            headers={"Cache-Control": "no-store", **next_link(request, base_url, cursor)},
        )

    @admins.get("/editors", response_model=list[EditorOut])
    def editors() -> list[EditorOut]:
        """Every account, revoked ones included; never a token or its hash."""
        return [EditorOut.model_validate(e.as_json()) for e in bench.editors()]

    @admins.post("/editors", response_model=TokenOut, status_code=201)
    def add(request: Request, body: EditorIn) -> TokenOut:
        done, token = bench.add_editor(body.name, body.role, by=acting(request))
        return TokenOut(name=body.name.strip(), message=done.message, token=token)

    @admins.post("/editors/{name}/rotate", response_model=TokenOut)
    def rotate(request: Request, name: EditorName) -> TokenOut:
        """A new token; the old one and its sessions stop working at once."""
        done, token = bench.rotate_editor(name, by=acting(request))
        return TokenOut(name=name, message=done.message, token=token)

    @admins.delete("/editors/{name}")
    def revoke(request: Request, name: EditorName) -> dict[str, str]:
        """Revoke one editor's token and sessions, at once."""
        return {"message": bench.revoke_editor(name, by=acting(request)).message}

    app.include_router(staff)
    app.include_router(admins)
