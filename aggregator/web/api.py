"""The editors' JSON API under /api/: source care, category rules and their dry run, story
explanations and corrections, and the corrections log.

Reads of stories and categories are public like the feeds; every other method needs the admin
token (``auth.token_route_class``) and is documented with the ``adminToken`` security scheme.
Input and output models are pydantic models of their own, apart from the table models.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from aggregator.catalog import CategoryConfig
from aggregator.clustering.explain import story_json
from aggregator.editorial.dryrun import DryRun, DryRunEntry
from aggregator.editorial.operations import (
    DEFAULT_DRY_RUN_SINCE,
    MAX_NOTE_LENGTH,
    MAX_RULE_LENGTH,
    MAX_RULES,
    Done,
    Workbench,
    applied_json,
    parse_since,
    rule_text,
)
from aggregator.errors import EditRefused, Refusal
from aggregator.store.overrides import OverrideView
from aggregator.store.stories import StoryDetail
from aggregator.web.auth import (
    DEFAULT_API_EDITOR,
    EDITOR_HEADER,
    Auth,
    acting_editor,
    bearer_scheme,
    token_route_class,
)
from aggregator.web.conditional import REVALIDATE, ApiValidators

# Ids are INTEGER columns: a bigger number can name nothing, and PostgreSQL would refuse it.
MAX_ID = 2**31 - 1
StoryId = Annotated[int, Path(ge=1, le=MAX_ID, description="a story id")]
RuleText = Annotated[str, Field(max_length=MAX_RULE_LENGTH)]
Note = Annotated[
    str | None, Field(max_length=MAX_NOTE_LENGTH, description="why, for the corrections log")
]


class ErrorOut(BaseModel):
    detail: str
    field: str | None = None


class DoneOut(BaseModel):
    message: str
    applied: bool = Field(description="false: saved to the files, applied at the next reload")
    override_id: int | None = None
    story_id: int | None = None


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="the feed's http(s) URL")
    categories: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=50)
    id: str | None = Field(
        None, max_length=64, description="a slug; default derived from the title or host"
    )
    title: str | None = Field(None, max_length=300)
    language: str | None = Field(None, max_length=35)
    interval: str | None = Field(None, max_length=16, description="such as '30m' or '6h'")


class CategoryRulesOut(BaseModel):
    id: str
    title: str
    description: str
    languages: list[str]
    include: list[str] = Field(description="keywords, or regexes written /…/")
    exclude: list[str]


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include: list[RuleText] = Field(default_factory=list, max_length=MAX_RULES)
    exclude: list[RuleText] = Field(default_factory=list, max_length=MAX_RULES)


class DryRunIn(RulesIn):
    since: str = Field(
        DEFAULT_DRY_RUN_SINCE,
        max_length=16,
        description="how far back to look, such as '7d' or '12h'",
    )


class DryRunEntryOut(BaseModel):
    entry_id: int
    source_id: str
    title: str
    url: str | None
    published_at: datetime
    reason: str


class DryRunOut(BaseModel):
    category: str
    since: str
    added: list[DryRunEntryOut]
    removed: list[DryRunEntryOut]
    unchanged: int
    examined: int


class ApplyRulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(
        ge=1, le=366, description="apply to the entries published in the last `days` days"
    )
    note: Note = None


class AppliedEntryOut(DryRunEntryOut):
    previous_reason: str | None = Field(description="the stored reason, for a removed entry")


class AppliedOut(BaseModel):
    message: str
    override_id: int | None = Field(
        description="the correction to undo it with; none when nothing changed"
    )
    category: str
    days: int
    added: list[AppliedEntryOut]
    removed: list[AppliedEntryOut]


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other_story_id: int = Field(ge=1, le=MAX_ID)
    note: Note = None


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: int = Field(ge=1, le=MAX_ID)
    note: Note = None


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str = Field(max_length=64)
    note: Note = None


class HideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(
        None, max_length=64, description="hide in this category only; none: everywhere"
    )
    note: Note = None


class CorrectionOut(BaseModel):
    id: int
    kind: str
    description: str = Field(description="what the correction does, in words")
    active: bool = Field(description="false once undone")
    entry_id: int | None
    other_entry_id: int | None
    story_id: int | None
    other_story_id: int | None
    category: str | None
    note: str | None
    created_by: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None


class CategoryReasonOut(BaseModel):
    category: str
    score: float
    reason: str = Field(description="the rule that matched, or why the category took it")


class EnclosureOut(BaseModel):
    url: str
    type: str | None = Field(description="the media type the feed gave")
    length: int | None = Field(description="bytes, as the feed gave them")


class ImageOut(BaseModel):
    url: str
    width: int | None = Field(description="pixels, as the feed gave them")
    height: int | None


class StoryEntryOut(BaseModel):
    entry_id: int
    source_id: str
    title: str
    url: str | None
    published_at: datetime
    declared_language: str | None
    languages: dict[str, Any] | None = Field(description="detected: lang, title, body, confidence")
    signal: str | None = Field(
        description="what put it in the story: new, url, content_hash, a model signal, editor_pin"
    )
    score: float | None
    matched_entry_id: int | None
    decision: str | None
    decided_at: datetime | None
    evidence: dict[str, Any] | None
    explanation: list[str] = Field(description="why it is in the story, in words")
    categories: list[CategoryReasonOut]
    enclosures: list[EnclosureOut] = Field(description="audio, video and other files")
    image: ImageOut | None = Field(description="the entry's picture")


class StoryDetailOut(BaseModel):
    id: int
    uid: str
    title: str
    published_at: datetime
    updated_at: datetime
    merged_into_id: int | None = Field(description="set when merged into another story")
    merged_by: str | None
    pinned_in: list[str]
    hidden_in: list[str]
    hidden_everywhere: bool
    entries: list[StoryEntryOut]
    corrections: list[CorrectionOut] = Field(description="active corrections touching it")


def story_out(detail: StoryDetail) -> StoryDetailOut:
    # Validated from the one JSON shape the CLI prints too (``stories show --json``).
    return StoryDetailOut.model_validate(story_json(detail))


def public_story(story: StoryDetailOut) -> StoryDetailOut:
    """What anyone may read of a story: no editor's name or note, nothing hidden everywhere."""
    if story.hidden_everywhere:
        raise EditRefused(Refusal.NOT_FOUND, f"no story {story.id}", field="story_id")
    return story.model_copy(update={"corrections": [], "merged_by": None})


def category_rules_out(category: CategoryConfig) -> CategoryRulesOut:
    return CategoryRulesOut(
        id=category.id,
        title=category.title,
        description=category.description,
        languages=list(category.languages),
        include=[rule_text(r) for r in category.include],
        exclude=[rule_text(r) for r in category.exclude],
    )


def dry_run_out(category: str, since: str, result: DryRun) -> DryRunOut:
    def entry(e: DryRunEntry) -> DryRunEntryOut:
        return DryRunEntryOut.model_validate(e, from_attributes=True)

    return DryRunOut(
        category=category,
        since=since,
        added=[entry(e) for e in result.added],
        removed=[entry(e) for e in result.removed],
        unchanged=result.unchanged,
        examined=result.examined,
    )


def correction_out(view: OverrideView) -> CorrectionOut:
    return CorrectionOut.model_validate(view.as_json())


def _done(done: Done) -> DoneOut:
    return DoneOut(
        message=done.message,
        applied=done.applied,
        override_id=done.override_id,
        story_id=done.story_id,
    )


def _editor(
    request: Request,
    x_editor: Annotated[
        str | None,
        Header(
            alias=EDITOR_HEADER,
            description="with the shared admin token only: the editor's name "
            "for the corrections log (an account's is its own)",
        ),
    ] = None,
) -> str:
    return acting_editor(request, x_editor, DEFAULT_API_EDITOR)


Editor = Annotated[str, Depends(_editor)]
# An editor's refused operation, as an HTTP answer.
REFUSAL_STATUS: dict[Refusal, int] = {
    Refusal.NOT_FOUND: 404,
    Refusal.INVALID: 422,
    Refusal.CONFLICT: 409,
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (401, "no or wrong Bearer token"),
        (
            403,
            "editing is disabled (no editor and no AGGREGATOR_ADMIN_TOKEN), "
            "or the token's role may not do this",
        ),
        (404, "no such source, category, story or correction"),
        (409, "conflicts with the configuration, or the files are read-only"),
        (422, "invalid input; `field` names it"),
    )
}


def include_api(
    app: FastAPI,
    bench: Workbench,
    auth: Auth,
    *,
    validators: ApiValidators | None = None,
    cache_control: Callable[[], str] = lambda: REVALIDATE,
) -> None:
    """Add the editors' API routes to ``app`` (after its own public reads). The public reads
    answer with strong ETags and 304s through ``validators``."""
    checks = validators or ApiValidators()

    def answer(request: Request, body: bytes, control: str) -> Response:
        status, headers, content = checks.answer(request.headers, body, control)
        return Response(content=content, status_code=status, headers=headers)

    reads = APIRouter(prefix="/api", tags=["editors"])
    writes = APIRouter(
        prefix="/api",
        tags=["editors"],
        route_class=token_route_class(auth),
        dependencies=[Security(bearer_scheme())],
        responses=ERRORS,
    )

    @app.exception_handler(EditRefused)
    async def _refused(_request: Request, exc: EditRefused) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.message, "field": exc.field}, status_code=REFUSAL_STATUS[exc.refusal]
        )

    @reads.get(
        "/categories/{category_id}",
        response_model=CategoryRulesOut,
        responses={404: {"model": ErrorOut}, 304: {"description": "not modified"}},
    )
    def category(request: Request, category_id: Annotated[str, Path(max_length=64)]) -> Response:
        """A category with its include and exclude rules, as the service runs it now."""
        out = category_rules_out(bench.category(category_id))
        return answer(request, out.model_dump_json().encode(), cache_control())

    @reads.get(
        "/stories/{story_id}",
        response_model=StoryDetailOut,
        responses={404: {"model": ErrorOut}, 304: {"description": "not modified"}},
    )
    def story(request: Request, story_id: StoryId) -> Response:
        """A story's entries: why each is in the story and why each category took it.
        Editors' corrections (who made them, their notes) and stories hidden everywhere are
        shown only with the admin token (Bearer); without it they are absent (404)."""
        detail = story_out(bench.story(story_id))
        shown = detail if auth.editor_request(request) else public_story(detail)
        # Corrections change it at any moment: caches keep it but ask first.
        return answer(request, shown.model_dump_json().encode(), REVALIDATE)

    @writes.post("/sources", response_model=DoneOut, status_code=201)
    def add_source(body: SourceIn, editor: Editor) -> DoneOut:
        """Add a feed to sources.toml (the URL must be the feed itself)."""
        return _done(
            bench.add(
                bench.new_source(
                    url=body.url,
                    categories=body.categories,
                    source_id=body.id,
                    title=body.title,
                    language=body.language,
                    interval=body.interval,
                ),
                by=editor,
            )
        )

    @writes.post("/sources/{source_id}/pause", response_model=DoneOut)
    def pause(source_id: Annotated[str, Path(max_length=64)], editor: Editor) -> DoneOut:
        """Stop polling a source (written as `enabled = false` in sources.toml)."""
        return _done(bench.set_enabled(source_id, False, by=editor))

    @writes.post("/sources/{source_id}/resume", response_model=DoneOut)
    def resume(source_id: Annotated[str, Path(max_length=64)], editor: Editor) -> DoneOut:
        return _done(bench.set_enabled(source_id, True, by=editor))

    @writes.delete("/sources/{source_id}", response_model=DoneOut)
    def remove(source_id: Annotated[str, Path(max_length=64)], editor: Editor) -> DoneOut:
        """Take a source out of sources.toml; its stored entries and stories stay."""
        return _done(bench.remove(source_id, by=editor))

    @writes.put("/categories/{category_id}/rules", response_model=DoneOut)
    def set_rules(
        category_id: Annotated[str, Path(max_length=64)], body: RulesIn, editor: Editor
    ) -> DoneOut:
        """Replace a category's include and exclude rules in categories.toml."""
        return _done(bench.set_rules(category_id, body.include, body.exclude, by=editor))

    @writes.post("/categories/{category_id}/dry-run", response_model=DryRunOut)
    def dry_run(category_id: Annotated[str, Path(max_length=64)], body: DryRunIn) -> DryRunOut:
        """What these rules would have added to and removed from the category over the
        stored entries of the last `since`; nothing is saved."""
        result = bench.dry_run(category_id, body.include, body.exclude, parse_since(body.since))
        return dry_run_out(category_id, body.since, result)

    @writes.post("/categories/{category_id}/apply", response_model=AppliedOut)
    def apply_rules(
        category_id: Annotated[str, Path(max_length=64)], body: ApplyRulesIn, editor: Editor
    ) -> AppliedOut:
        """Apply the category's rules, as the service runs them now, to the entries stored
        over the last `days`: what a dry run of them shows is written, recorded as a
        correction (kind `rules`) that `POST /api/corrections/{id}/undo` takes back."""
        done, diff = bench.apply_rules(category_id, body.days, by=editor, note=body.note)
        return AppliedOut.model_validate(applied_json(done, diff, body.days))

    @writes.post("/stories/{story_id}/merge", response_model=DoneOut)
    def merge(story_id: StoryId, body: MergeIn, editor: Editor) -> DoneOut:
        """Merge another story into this one (the older keeps its id); undoable."""
        return _done(bench.merge(story_id, body.other_story_id, by=editor, note=body.note))

    @writes.post("/stories/{story_id}/split", response_model=DoneOut)
    def split(story_id: StoryId, body: SplitIn, editor: Editor) -> DoneOut:
        """Move one entry out of the story into a new story of its own; undoable."""
        return _done(bench.split(story_id, body.entry_id, by=editor, note=body.note))

    @writes.post("/stories/{story_id}/pin", response_model=DoneOut)
    def pin(story_id: StoryId, body: PinIn, editor: Editor) -> DoneOut:
        """Keep the story in a category whatever its rules say; undoable."""
        return _done(bench.pin(story_id, body.category, by=editor, note=body.note))

    @writes.post("/stories/{story_id}/hide", response_model=DoneOut)
    def hide(story_id: StoryId, body: HideIn, editor: Editor) -> DoneOut:
        """Take the story out of one category's outputs, or all of them; undoable."""
        return _done(bench.hide(story_id, body.category, by=editor, note=body.note))

    @writes.get("/corrections", response_model=list[CorrectionOut])
    def corrections(include_undone: bool = Query(False)) -> list[CorrectionOut]:
        """The corrections log: who corrected what and when (it names editors, so it needs
        the token)."""
        return [correction_out(v) for v in bench.corrections(include_undone=include_undone)]

    @writes.post("/corrections/{override_id}/undo", response_model=DoneOut)
    def undo(override_id: Annotated[int, Path(ge=1, le=MAX_ID)], editor: Editor) -> DoneOut:
        """Withdraw a correction; the story returns to what the machine decided."""
        return _done(bench.undo(override_id, by=editor))

    app.include_router(reads)
    app.include_router(writes)
