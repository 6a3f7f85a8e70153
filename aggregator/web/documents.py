"""Serves the output documents from memory: a thin ASGI layer in front of the FastAPI app.

Feeds, archive pages, HTML pages and the OPML list are bytes rendered once per change
(``aggregator.publishing.outputs``). This layer answers GET and HEAD for them without FastAPI's
routing,
validation, thread hop and middleware stack (``DocumentApp`` puts it in front of all of them),
because those cost more than the answer itself: each document's headers are built once per
coding and status and kept with it, so a request is a dictionary lookup and two sends.
Anything it does not serve (an unknown name, a store failure) falls through to the app, which
explains the 404 or 503; ``respond`` gives the app's own answers the same headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Final

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from aggregator.errors import StoreError
from aggregator.publishing.outputs import INDEX_PATH, OPML_PATH, Document, Outputs
from aggregator.web.conditional import choose_coding, http_date, is_not_modified

RawHeaders = list[tuple[bytes, bytes]]

# The pages hold no script and load nothing from elsewhere but stories' pictures (https):
# say so, so a browser refuses anything a sanitizer might ever miss.
HTML_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_IF_NONE_MATCH: Final = b"if-none-match"
_IF_MODIFIED_SINCE: Final = b"if-modified-since"
_ACCEPT_ENCODING: Final = b"accept-encoding"
# Accept-Encoding values seen, with the coding chosen for each set of offered codings;
# clients send few distinct values, and the bound keeps a hostile client from growing it.
_CODING_CACHE_SIZE: Final = 256
_coding_cache: dict[tuple[str | None, tuple[str, ...]], str | None] = {}


def document_path(url_path: str) -> str | None:
    """The outputs' relative path for a URL path, or None when it names no document."""
    if url_path in ("/", "/index.html"):
        return INDEX_PATH
    if url_path == "/feeds.opml":
        return OPML_PATH
    if url_path.startswith("/feeds/"):
        return url_path[1:]
    if url_path.startswith("/categories/"):
        name = url_path.removeprefix("/categories/")
        if name and "/" not in name:
            return f"categories/{name.removesuffix('.html')}.html"
    return None


def _coding(accept_encoding: str | None, offered: tuple[str, ...]) -> str | None:
    key = (accept_encoding, offered)
    try:
        return _coding_cache[key]
    except KeyError:
        pass
    chosen = choose_coding(accept_encoding, offered)
    if len(_coding_cache) >= _CODING_CACHE_SIZE:
        _coding_cache.clear()
    _coding_cache[key] = chosen
    return chosen


def _headers(document: Document, coding: str | None, status: int) -> RawHeaders:
    """The response headers of ``document`` in ``coding`` with ``status``, built once."""
    key = ("headers", coding, status)
    cached = document.memo.get(key)
    if cached is not None:
        return cached  # type: ignore[return-value]
    pairs = [
        ("etag", document.etag_for(coding)),
        ("last-modified", http_date(document.last_modified)),
        ("cache-control", document.cache_control),
        ("vary", "Accept-Encoding"),
    ]
    if status == 200:
        pairs.append(("content-type", document.media_type))
        pairs.append(("content-length", str(len(document.encoded(coding)))))
        if coding is not None:
            pairs.append(("content-encoding", coding))
        pairs.append(("x-content-type-options", "nosniff"))
        if document.media_type.startswith("text/html"):
            pairs.append(("content-security-policy", HTML_POLICY))
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
    document.memo[key] = headers
    return headers


def respond_raw(
    document: Document,
    method: str,
    if_none_match: str | None,
    if_modified_since: str | None,
    accept_encoding: str | None,
) -> tuple[int, RawHeaders, bytes]:
    """Status, headers and body for a request carrying these three headers."""
    coding = _coding(accept_encoding, document.codings)
    if if_none_match is not None and if_none_match in document.etags:
        not_modified = True  # the common case: one ETag, exactly as we sent it
    elif if_none_match is None and if_modified_since is None:
        not_modified = False
    else:
        conditions = {}
        if if_none_match is not None:
            conditions["if-none-match"] = if_none_match
        if if_modified_since is not None:
            conditions["if-modified-since"] = if_modified_since
        not_modified = is_not_modified(conditions, document.etags, document.last_modified)
    if not_modified:
        return 304, _headers(document, coding, 304), b""
    body = b"" if method == "HEAD" else document.encoded(coding)
    return 200, _headers(document, coding, 200), body


def respond(
    document: Document,
    method: str,
    headers: Mapping[str, str],
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``respond_raw`` for a request's headers (lower-case names), with text headers."""
    status, raw, body = respond_raw(
        document,
        method,
        headers.get("if-none-match"),
        headers.get("if-modified-since"),
        headers.get("accept-encoding"),
    )
    return status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw], body


class DocumentServer:
    """ASGI middleware: answers for output documents, passes everything else to ``app``."""

    def __init__(self, app: ASGIApp, outputs: Outputs) -> None:
        self.app = app
        self.outputs = outputs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = document_path(scope["path"])
        # A query string asks for a filtered feed (or is refused): the app checks it.
        if path is None or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        document = self.outputs.cached(path)
        if document is None:
            try:
                # Reads the store and may render: never on the event loop.
                document = await run_in_threadpool(self.outputs.document, path)
            except StoreError:
                document = None
            if document is None:
                await self.app(scope, receive, send)
                return
        if_none_match = if_modified_since = accept_encoding = None
        for name, value in scope["headers"]:
            if name == _IF_NONE_MATCH:
                if_none_match = value.decode("latin-1")
            elif name == _IF_MODIFIED_SINCE:
                if_modified_since = value.decode("latin-1")
            elif name == _ACCEPT_ENCODING:
                accept_encoding = value.decode("latin-1")
        status, headers, body = respond_raw(
            document, scope["method"], if_none_match, if_modified_since, accept_encoding
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class DocumentApp(FastAPI):
    """The FastAPI app with ``DocumentServer`` in front of its whole middleware stack.

    Added as ordinary middleware it would sit inside FastAPI's own layers, each of which wraps
    every send; in front of them a served document costs about two thirds as much
    (bench/serve_bench.py). Everything else reaches FastAPI unchanged.
    """

    _documents: DocumentServer | None = None

    def serve_documents(self, outputs: Outputs) -> None:
        self._documents = DocumentServer(partial(FastAPI.__call__, self), outputs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._documents is None:
            await super().__call__(scope, receive, send)
        else:
            await self._documents(scope, receive, send)
