"""Request bodies: a size limit per route, enforced while the body arrives, and JSON bodies
checked for text that is not Unicode (lone UTF-16 surrogates such as ``"\\ud800"``) before any
route sees them, so a hostile body costs at most its limit and is refused with a clear 4xx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_BODY_BYTES: Final = 256 * 1024
OTHER_BODY_BYTES: Final = 64 * 1024
# A JSON escape of a UTF-16 surrogate; only bodies holding one are decoded here.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")
_JSON_TYPES: Final = ("application/json", "+json")


def route_limits(api_bytes: int) -> Callable[[str], int]:
    """The body limit of a path: the JSON API's setting, the admin forms', everything else's."""

    def limit(path: str) -> int:
        if path.startswith("/api/"):
            return api_bytes
        if path.startswith("/admin/"):
            return ADMIN_BODY_BYTES
        return OTHER_BODY_BYTES

    return limit


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def lone_surrogate_in(body: bytes) -> bool:
    """True when ``body`` is JSON holding a string that is not valid Unicode."""
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        return _has_lone_surrogate(json.loads(body))
    except ValueError:
        return False  # not JSON at all: the route's own parser says so


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a body over its route's limit, 400 for JSON that is not
    Unicode. A declared Content-Length over the limit is refused before reading anything."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        too_large = f"the request body is larger than {limit} bytes, the limit of this route"
        length: bytes | None = None
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _answer(
                send,
                413 if length.isdigit() else 400,
                too_large if length.isdigit() else "bad Content-Length",
            )
            return
        kind = content_type.split(b";")[0].strip().decode("latin-1").lower()
        if kind.endswith(_JSON_TYPES):
            await self._json(scope, receive, send, limit, too_large)
            return
        await self._streamed(scope, receive, send, limit, too_large)

    async def _json(
        self, scope: Scope, receive: Receive, send: Send, limit: int, too_large: str
    ) -> None:
        """Read the whole (bounded) body, check it, then hand it to the app in one piece."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body.extend(message.get("body", b""))
            if len(body) > limit:
                await _answer(send, 413, too_large)
                return
            if not message.get("more_body", False):
                break
        if lone_surrogate_in(bytes(body)):
            await _answer(
                send,
                400,
                "the JSON body holds a lone UTF-16 surrogate escape "
                "(such as \\ud800): text must be valid Unicode",
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # waits for the disconnect, as the app expects
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _streamed(
        self, scope: Scope, receive: Receive, send: Send, limit: int, too_large: str
    ) -> None:
        received = 0
        refused = False
        started = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _answer(send, 413, too_large)
                    raise _TooLarge
            return message

        async def sent(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 was the answer; what the app says after it is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sent)
        except Exception:
            if not refused:
                raise
