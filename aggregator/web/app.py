"""The FastAPI application: output feeds with HTTP caching, OPML, JSON API, index, health.

Built by ``create_app`` from objects the entry point made (no globals). Feed documents come
from ``aggregator.outputs`` so the server and ``publish --out`` return identical bytes.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from aggregator import __version__
from aggregator.errors import StoreError
from aggregator.outputs import Document, Outputs, parse_feed_name
from aggregator.publish import FEED_FORMATS, feed_url
from aggregator.representative import for_output
from aggregator.store import Store
from aggregator.web.conditional import cache_headers, is_not_modified

MAX_API_LIMIT = 500


class EntryOut(BaseModel):
    id: int
    source: str
    source_title: str
    url: str | None
    title: str
    language: str | None
    published: datetime


class StoryOut(BaseModel):
    id: int
    uid: str
    title: str
    url: str | None
    first_seen: datetime
    updated: datetime
    entries: list[EntryOut]


class SourceOut(BaseModel):
    """The public view of a source's health: validators and body hash stay internal."""

    id: str
    url: str
    configured_url: str | None
    title: str | None
    site_url: str | None
    state: str
    categories: list[str]
    language: str | None
    interval_seconds: int
    next_check_at: datetime | None
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_status: int | None
    last_duration_ms: int | None
    last_bytes: int | None
    last_new_entries: int | None
    last_updated_entries: int | None
    error_count: int
    last_error: str | None
    last_error_kind: str | None


class CategoryOut(BaseModel):
    id: str
    title: str
    description: str
    languages: list[str]
    feeds: dict[str, str]


def _document_response(request: Request, document: Document) -> Response:
    headers = cache_headers(document.etag, document.last_modified)
    if is_not_modified(request.headers, document.etag, document.last_modified):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else document.body
    headers["Content-Length"] = str(len(document.body))
    return Response(content=body, media_type=document.media_type, headers=headers)


def create_app(*, store: Store, outputs: Outputs) -> FastAPI:
    app = FastAPI(
        title="aggregator", version=__version__,
        description="Curated feeds with stories clustered across sources and languages.",
        docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None,
    )

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": f"store unavailable: {exc}"}, status_code=503)

    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def feed(name: str, request: Request) -> Response:
        parsed = parse_feed_name(name)
        if parsed is None:
            raise HTTPException(404, f"{name!r} is not a feed name; expected {{category}}.atom, "
                                     ".rss or .json, or {category}.{lang}.atom")
        document = outputs.feed(parsed)
        if document is None:
            raise HTTPException(404, f"no category {parsed.category!r}")
        return _document_response(request, document)

    def opml(request: Request) -> Response:
        return _document_response(request, outputs.opml())

    for path, endpoint, summary in (
        ("/feeds/{name}", feed, "An output feed: {category}[.{lang}].atom|rss|json"),
        ("/feeds.opml", opml, "OPML list of every output feed"),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], response_class=Response,
                          summary=summary)
        # HEAD answers like GET without the body; one schema entry is enough.
        app.add_api_route(path, endpoint, methods=["HEAD"], response_class=Response,
                          include_in_schema=False)

    @app.get("/api/categories", response_model=list[CategoryOut])
    def categories() -> list[CategoryOut]:
        return [
            CategoryOut(id=c.id, title=c.title, description=c.description,
                        languages=list(c.languages),
                        feeds={fmt: feed_url(outputs.base_url, c.id, fmt) for fmt in FEED_FORMATS})
            for c in outputs.catalog.categories
        ]

    @app.get("/api/sources", response_model=list[SourceOut])
    def sources() -> list[SourceOut]:
        return [SourceOut.model_validate(s, from_attributes=True) for s in store.sources()]

    @app.get("/api/categories/{category}/stories", response_model=list[StoryOut])
    def category_stories(category: str,
                         limit: int = Query(50, ge=1, le=MAX_API_LIMIT)) -> list[StoryOut]:
        try:
            config = outputs.catalog.category(category)
        except KeyError as exc:
            raise HTTPException(404, f"no category {category!r}") from exc
        stories = [for_output(s, config.languages)
                   for s in store.category_stories(category, limit)]
        return [
            StoryOut(
                id=s.story_id, uid=s.uid, title=s.representative.title,
                url=s.representative.url, first_seen=s.first_seen, updated=s.updated_at,
                entries=[EntryOut(id=e.entry_id, source=e.source_id,
                                  source_title=e.source_title, url=e.url, title=e.title,
                                  language=e.language, published=e.published_at)
                         for e in s.entries],
            )
            for s in stories
        ]

    @app.get("/api/stories/{story_id}/evidence")
    def evidence(story_id: int) -> list[dict[str, Any]]:
        rows = store.story_evidence(story_id)
        if not rows:
            raise HTTPException(404, f"no story {story_id}")
        return rows

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        items = []
        for c in outputs.catalog.categories:
            links = " · ".join(
                f'<a href="{html.escape(feed_url(outputs.base_url, c.id, fmt))}">{fmt}</a>'
                for fmt in FEED_FORMATS)
            items.append(f"<li><strong>{html.escape(c.title)}</strong> "
                         f"<small>{html.escape(c.description)}</small><br>{links}</li>")
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Aggregator feeds</title>"
            "<link rel='alternate' type='text/x-opml' title='All feeds' href='/feeds.opml'>"
            "</head><body><h1>Feeds</h1><ul>" + "".join(items) + "</ul>"
            "<p><a href='/feeds.opml'>All feeds as OPML</a> · "
            "<a href='/api/docs'>API</a></p></body></html>"
        )
        return HTMLResponse(page)

    return app
