"""``GET /api/search``: full-text search of stored entries, each with its story, paged and
cached like the API's other lists (``paging``, ``conditional``). Public like the stories; a
story hidden everywhere is searched only with the admin token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, TypeAdapter

from aggregator.editorial.operations import Workbench
from aggregator.store.search import MAX_QUERY_LENGTH
from aggregator.web.auth import Auth
from aggregator.web.conditional import REVALIDATE
from aggregator.web.paging import MAX_CURSOR_LENGTH, decode_position, next_link, position_cursor

MAX_SEARCH_LIMIT = 100
Answer = Callable[[Request, bytes, str, dict[str, str] | None], Response]


class SearchHitOut(BaseModel):
    """An entry holding every searched word, with the story it is in now."""

    entry_id: int
    source_id: str
    title: str
    url: str | None
    language: str | None
    published_at: datetime
    story_id: int | None = Field(description="the live story; none before clustering")
    story_title: str | None


_HITS = TypeAdapter(list[SearchHitOut])


def include_search(
    app: FastAPI,
    bench: Workbench,
    auth: Auth,
    answer: Answer,
    base_url: Callable[[], str],
    responses: dict[int | str, dict[str, Any]],
) -> None:
    """Add ``/api/search`` to ``app``; ``answer`` gives the API's validators and 304s."""

    @app.get(
        "/api/search",
        response_model=list[SearchHitOut],
        tags=["editors"],
        responses={**responses, 422: {"description": "`q` or `after` is not valid"}},
    )
    def search(
        request: Request,
        q: Annotated[
            str,
            Query(
                max_length=MAX_QUERY_LENGTH,
                description=(
                    'words (or "quoted phrases") that must all be in the entry\'s title or '
                    "text, in any language and script; case is ignored"
                ),
            ),
        ],
        after: Annotated[
            str | None,
            Query(
                max_length=MAX_CURSOR_LENGTH,
                description=("continue after the page that gave this cursor"),
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT)] = 20,
    ) -> Response:
        """Entries holding every word, newest published first, with their story (what to
        merge, split, pin or hide)."""
        position = decode_position(after) if after is not None else None
        hits, last = bench.search(
            q, limit, after=position, include_hidden=auth.editor_request(request)
        )
        body = _HITS.dump_json([SearchHitOut.model_validate(h.as_json()) for h in hits])
        cursor = position_cursor(*last) if last is not None else None
        return answer(request, body, REVALIDATE, next_link(request, base_url(), cursor))
