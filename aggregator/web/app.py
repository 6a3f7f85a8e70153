"""The FastAPI application: output feeds with HTTP caching, OPML, JSON API, index, health.

Built by ``create_app`` from objects the entry point made (no globals). Feed documents come
from ``aggregator.publishing.outputs`` so the server and ``publish --out`` return identical bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, get_type_hints

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, TypeAdapter, create_model

from aggregator import __version__
from aggregator.editorial.operations import Workbench
from aggregator.errors import StoreError
from aggregator.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aggregator.metrics import Metrics
from aggregator.publishing.filters import FilterError, parse_filter
from aggregator.publishing.formats import FEED_FORMATS, feed_url
from aggregator.publishing.outputs import (
    INDEX_PATH,
    Document,
    Outputs,
    parse_archive_path,
    parse_feed_name,
)
from aggregator.publishing.representative import for_output
from aggregator.publishing.watcher import OutputWatcher
from aggregator.store import Store
from aggregator.types import SourceStatus, media_json
from aggregator.web.admin import include_admin
from aggregator.web.admin_webhooks import include_admin_webhooks
from aggregator.web.api import EnclosureOut, ImageOut, StoryId, include_api
from aggregator.web.apidocs import include_api_docs
from aggregator.web.auth import Auth, FailureLimiter
from aggregator.web.conditional import REVALIDATE, ApiValidators
from aggregator.web.documents import DocumentApp, document_path, respond
from aggregator.web.editors_api import include_editors_api
from aggregator.web.health import Readiness
from aggregator.web.limits import BodyLimit, route_limits
from aggregator.web.paging import (
    MAX_CURSOR_LENGTH,
    decode_position,
    next_link,
    page_by_key,
    position_cursor,
)
from aggregator.web.search import include_search
from aggregator.web.webhooks_api import include_webhooks_api

MAX_API_LIMIT = 500
OPENAPI_URL = "/api/openapi.json"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class StorySummaryEntryOut(BaseModel):
    entry_id: int
    source_id: str
    source_title: str
    url: str | None
    title: str
    language: str | None
    published_at: datetime
    enclosures: list[EnclosureOut]
    image: ImageOut | None


class StorySummaryOut(BaseModel):
    """A story as a category lists it; ``GET /api/stories/{id}`` has the editors' detail."""

    id: int
    uid: str
    title: str
    url: str | None
    first_seen: datetime
    updated_at: datetime
    entries: list[StorySummaryEntryOut]


# The public view of a source's health, declared once: ``SourceStatus``'s fields without the
# ones that stay internal (validators, body hash, publishing rhythm, the address policy).
_INTERNAL_SOURCE_FIELDS = frozenset(
    {
        "etag",
        "last_modified",
        "body_hash",
        "publish_interval_seconds",
        "public_only",
        "fetch_options",
    }
)
_SOURCE_HINTS = get_type_hints(SourceStatus)
_SOURCE_FIELDS: dict[str, Any] = {
    f.name: (_SOURCE_HINTS[f.name], ...)
    for f in dataclasses.fields(SourceStatus)
    if f.name not in _INTERNAL_SOURCE_FIELDS
}
SourceOut = create_model(
    "SourceOut", __doc__="A source's health as the public API shows it.", **_SOURCE_FIELDS
)


class CategoryOut(BaseModel):
    id: str
    title: str
    description: str
    languages: list[str]
    feeds: dict[str, str]


_CATEGORIES = TypeAdapter(list[CategoryOut])
_SOURCES = TypeAdapter(list[SourceOut])
_STORIES = TypeAdapter(list[StorySummaryOut])
_EVIDENCE = TypeAdapter(list[dict[str, Any]])
After = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description=('continue after the page that gave this cursor (from its `Link: rel="next"`)'),
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_API_LIMIT, description="items per page")]
Since = Annotated[
    datetime | None,
    Query(description=("only items changed at or after this time (ISO 8601 with a time zone)")),
]


def aware(moment: datetime | None) -> datetime:
    """``since`` as given; a time without a zone would be read in some machine's zone."""
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        raise HTTPException(422, "since: give a time zone, such as 2026-05-01T00:00:00Z")
    return moment


def _document_response(request: Request, document: Document) -> Response:
    status, headers, body = respond(document, request.method, request.headers)
    return Response(content=body, status_code=status, headers=dict(headers))


def create_app(
    *,
    store: Store,
    outputs: Outputs,
    metrics: Metrics | None = None,
    readiness: Readiness | None = None,
    admin_token: str = "",
    config_dir: Path | None = None,
    on_config_change: Callable[[], None] | None = None,
    allow_private_addresses: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    failure_limiter: FailureLimiter | None = None,
) -> FastAPI:
    """``metrics`` and ``readiness`` are the service's; an app built without them gets its
    own (no scheduler: readiness then checks the database and the lag only)."""
    if metrics is None:
        metrics = Metrics(
            store=store, categories=lambda: [c.id for c in outputs.catalog.categories]
        )
    if outputs.metrics is None:
        outputs.metrics = metrics
    ready = readiness or Readiness(store, metrics=metrics, write_error=lambda: outputs.write_error)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Without a recheck interval every request checks the store itself.
        watcher = (
            OutputWatcher(outputs, outputs.recheck_seconds) if outputs.recheck_seconds > 0 else None
        )
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            if readiness is None:
                ready.close()

    app = DocumentApp(
        title="aggregator",
        version=__version__,
        description="Curated feeds with stories clustered across sources and languages.",
        # /api/docs is served from local assets (include_api_docs), not FastAPI's CDN page,
        # and the schema with validators like every other API answer (below).
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    # Output documents are answered from memory before FastAPI routes anything.
    app.serve_documents(outputs)
    app.add_middleware(BodyLimit, limit_for=route_limits(max_body_bytes))

    auth = Auth(
        admin_token,
        secure_cookie=outputs.base_url.startswith("https://"),
        limiter=failure_limiter,
        accounts=store,
    )

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": f"store unavailable: {exc}"}, status_code=503)

    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/readyz", methods=["GET", "HEAD"], include_in_schema=False)
    def readyz() -> JSONResponse:
        report = ready.check()
        return JSONResponse(
            report.as_json(),
            status_code=200 if report.ready else 503,
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics_page() -> Response:
        return Response(
            metrics.exposition(),
            media_type=METRICS_CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

    def feed(name: str, request: Request) -> Response:
        parsed = parse_feed_name(name)
        if parsed is None:
            raise HTTPException(
                404,
                f"{name!r} is not a feed name; expected {{category}}.atom, "
                ".rss or .json, or {category}.{lang}.atom",
            )
        if request.url.query:
            try:
                wanted = parse_filter(request.query_params.multi_items(), name_lang=parsed.lang)
            except FilterError as exc:
                raise HTTPException(400, str(exc)) from exc
            document = outputs.filtered_feed(parsed, wanted)
        else:
            document = outputs.feed(parsed)
        if document is None:
            raise HTTPException(404, f"no category {parsed.category!r}")
        return _document_response(request, document)

    def opml(request: Request) -> Response:
        return _document_response(request, outputs.opml())

    def archive(category: str, name: str, request: Request) -> Response:
        parsed = parse_archive_path(f"feeds/{category}/archive/{name}")
        if parsed is None:
            raise HTTPException(
                404,
                f"{name!r} is not an archive page name; expected "
                "{page}.atom, .rss or .json, or {page}.{lang}.atom",
            )
        document = outputs.archive(parsed)
        if document is not None:
            return _document_response(request, document)
        if outputs.is_next_archive(parsed):
            # Older pages link here before this one is complete; till then its stories are
            # in the live feed.
            live = feed_url(outputs.base_url, parsed.category, parsed.fmt, parsed.lang)
            return RedirectResponse(
                live, status_code=307, headers={"Cache-Control": outputs.live_cache_control}
            )
        raise HTTPException(404, f"no archive page {parsed.page} of {category!r}")

    def category_page(name: str, request: Request) -> Response:
        path = document_path(f"/categories/{name}")
        document = outputs.document(path) if path else None
        if document is None:
            raise HTTPException(404, f"no category {name.removesuffix('.html')!r}")
        return _document_response(request, document)

    def index(request: Request) -> Response:
        document = outputs.document(INDEX_PATH)
        assert document is not None  # the index always exists, if only to say "no categories"
        return _document_response(request, document)

    for path, endpoint, summary in (
        (
            "/feeds/{name}",
            feed,
            "An output feed: {category}[.{lang}].atom|rss|json, filtered by "
            "?lang=&q=&min_sources=&since=&limit= (400 names a bad one)",
        ),
        (
            "/feeds/{category}/archive/{name}",
            archive,
            "A complete RFC 5005 archive page: {page}[.{lang}].atom|rss|json (never changes)",
        ),
        ("/feeds.opml", opml, "OPML list of every output feed"),
        (
            "/categories/{name}",
            category_page,
            "A category's stories as an HTML page: {category}[.{lang}].html",
        ),
        ("/", index, "The index page: every category and feed"),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], response_class=Response, summary=summary)
        # HEAD answers like GET without the body; one schema entry is enough.
        app.add_api_route(
            path, endpoint, methods=["HEAD"], response_class=Response, include_in_schema=False
        )

    validators = ApiValidators()

    def answer(
        request: Request, body: bytes, cache_control: str, link: dict[str, str] | None = None
    ) -> Response:
        status, headers, content = validators.answer(request.headers, body, cache_control, link)
        return Response(content=content, status_code=status, headers=headers)

    paged: dict[int | str, dict[str, Any]] = {
        200: {
            "description": 'one page; its `Link: <…>; rel="next"` header gives the next '
            "one, none on the last page"
        },
        304: {"description": "not modified (If-None-Match / If-Modified-Since)"},
    }

    @app.get("/api/categories", response_model=list[CategoryOut], responses=paged)
    def categories(request: Request, after: After = None, limit: Limit = 50) -> Response:
        """The categories, by id."""
        every = [
            CategoryOut(
                id=c.id,
                title=c.title,
                description=c.description,
                languages=list(c.languages),
                feeds={fmt: feed_url(outputs.base_url, c.id, fmt) for fmt in FEED_FORMATS},
            )
            for c in outputs.catalog.categories
        ]
        page, cursor = page_by_key(every, lambda c: c.id, after, limit)
        return answer(
            request,
            _CATEGORIES.dump_json(page),
            outputs.live_cache_control,
            next_link(request, outputs.base_url, cursor),
        )

    @app.get("/api/sources", response_model=list[SourceOut], responses=paged)
    def sources(
        request: Request, after: After = None, limit: Limit = 50, since: Since = None
    ) -> Response:
        """Every source's health, by id; ``since``: only those checked at or after it."""
        every = store.sources()
        if since is not None:
            moment = aware(since)
            every = [
                s for s in every if s.last_checked_at is not None and s.last_checked_at >= moment
            ]
        page, cursor = page_by_key(every, lambda s: s.id, after, limit)
        shown = [SourceOut.model_validate(s, from_attributes=True) for s in page]
        return answer(
            request,
            _SOURCES.dump_json(shown),
            REVALIDATE,
            next_link(request, outputs.base_url, cursor),
        )

    @app.get(
        "/api/categories/{category}/stories", response_model=list[StorySummaryOut], responses=paged
    )
    def category_stories(
        request: Request, category: str, after: After = None, limit: Limit = 50, since: Since = None
    ) -> Response:
        """The category's stories, newest published first; ``since``: only those first seen
        or changed at or after it (a new version, an edited entry)."""
        try:
            config = outputs.catalog.category(category)
        except KeyError as exc:
            raise HTTPException(404, f"no category {category!r}") from exc
        position = decode_position(after) if after is not None else None
        found, last = store.category_stories_page(
            category, limit, after=position, since=aware(since) if since else None
        )
        stories = [for_output(s, config.languages, outputs.catalog.priorities) for s in found]
        page = [
            StorySummaryOut(
                id=s.story_id,
                uid=s.uid,
                title=s.representative.title,
                url=s.representative.url,
                first_seen=s.first_seen,
                updated_at=s.updated_at,
                entries=[
                    StorySummaryEntryOut(
                        entry_id=e.entry_id,
                        source_id=e.source_id,
                        source_title=e.source_title,
                        url=e.url,
                        title=e.title,
                        language=e.language,
                        published_at=e.published_at,
                        **media_json(e.enclosures, e.image),
                    )
                    for e in s.entries
                ],
            )
            for s in stories
        ]
        cursor = position_cursor(*last) if last is not None else None
        return answer(
            request,
            _STORIES.dump_json(page),
            outputs.live_cache_control,
            next_link(request, outputs.base_url, cursor),
        )

    @app.get("/api/stories/{story_id}/evidence", responses=paged)
    def evidence(
        request: Request, story_id: StoryId, after: After = None, limit: Limit = 50
    ) -> Response:
        """Why each member entry is in the story, by entry id; a story hidden everywhere needs
        the token."""
        rows = store.story_evidence(story_id)
        if rows and not auth.editor_request(request):
            detail = store.story_detail(story_id)
            if detail is None or detail.hidden_everywhere:
                rows = []
        if not rows:
            raise HTTPException(404, f"no story {story_id}")
        page, cursor = page_by_key(rows, lambda r: f"{r['entry_id']:012d}", after, limit)
        return answer(
            request,
            _EVIDENCE.dump_json(page),
            REVALIDATE,
            next_link(request, outputs.base_url, cursor),
        )

    # The editors' API and pages: writes go through the workbench, gated by the admin token
    # (empty: every write and admin page answers 403); a config edit is applied at once by
    # ``on_config_change``.
    bench = Workbench(
        store=store,
        catalog=lambda: outputs.catalog,
        config_dir=config_dir or outputs.catalog.directory,
        on_config_change=on_config_change,
        allow_private_addresses=allow_private_addresses,
    )

    @app.get(OPENAPI_URL, include_in_schema=False)
    def openapi_schema(request: Request) -> Response:
        body = json.dumps(app.openapi(), separators=(",", ":")).encode()
        return answer(request, body, outputs.live_cache_control)

    include_api_docs(app, title="aggregator", openapi_url=OPENAPI_URL)
    include_api(
        app, bench, auth, validators=validators, cache_control=lambda: outputs.live_cache_control
    )
    include_webhooks_api(app, bench, auth)
    include_admin(app, bench, auth)
    include_editors_api(app, bench, auth, base_url=outputs.base_url)
    include_search(app, bench, auth, answer, lambda: outputs.base_url, paged)
    include_admin_webhooks(app, bench, auth)
    return app
