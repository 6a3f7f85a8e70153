"""Cursor paging for the JSON API's lists: opaque ``after`` cursors and the ``Link: rel="next"``
header that carries them.

A cursor is the position of the last item of a page, encoded so that clients pass it back
unchanged rather than build one; a cursor this API did not give is refused with a 422 naming
``after``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, TypeVar
from urllib.parse import urlencode

from fastapi import HTTPException, Request

T = TypeVar("T")
MAX_CURSOR_LENGTH: Final = 200
_BAD_CURSOR: Final = 'after: not a cursor this API gave (pass the Link rel="next" URL as is)'


def encode_cursor(*parts: str | int) -> str:
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> list[object]:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise HTTPException(422, _BAD_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, _BAD_CURSOR) from exc
    if not isinstance(parts, list):
        raise HTTPException(422, _BAD_CURSOR)
    return parts


def decode_key(cursor: str) -> str:
    """The key (an id) an id-ordered list continues after."""
    parts = _decode(cursor)
    if len(parts) != 1 or not isinstance(parts[0], str):
        raise HTTPException(422, _BAD_CURSOR)
    return parts[0]


def decode_position(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a time-ordered list continues after."""
    parts = _decode(cursor)
    if len(parts) != 2 or not isinstance(parts[0], str) or not isinstance(parts[1], int):
        raise HTTPException(422, _BAD_CURSOR)
    try:
        moment = datetime.fromisoformat(parts[0])
    except ValueError as exc:
        raise HTTPException(422, _BAD_CURSOR) from exc
    if moment.tzinfo is None:
        raise HTTPException(422, _BAD_CURSOR)
    return moment, parts[1]


def position_cursor(moment: datetime, key: int) -> str:
    return encode_cursor(moment.isoformat(), key)


def next_link(request: Request, base_url: str, cursor: str | None) -> dict[str, str]:
    """The ``Link`` header for the page after this one (RFC 8288), none on the last page.

    Built on the public base URL, not the address the request reached, so it works behind a
    proxy; the request's other parameters (``limit``, ``since``) are kept.
    """
    if cursor is None:
        return {}
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    params.append(("after", cursor))
    url = f"{base_url.rstrip('/')}{request.url.path}?{urlencode(params)}"
    return {"Link": f'<{url}>; rel="next"'}


def page_by_key(
    items: Sequence[T], key_of: Callable[[T], str], after: str | None, limit: int
) -> tuple[list[T], str | None]:
    """A page of ``items`` in the order of their string keys: the first ``limit`` after the
    key ``after`` names, and the cursor to continue with (None on the last page)."""
    ordered = sorted(items, key=key_of)
    if after is not None:
        wanted = decode_key(after)
        ordered = [item for item in ordered if key_of(item) > wanted]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, encode_cursor(key_of(page[-1])) if more and page else None
