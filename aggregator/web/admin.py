"""The editors' pages under /admin/: log in with the admin token, then source health with
pause, resume, add and remove; category rules with a dry run; stories with their explanations
and correction buttons; the corrections log with undo.

Every change is a POSTed form carrying the session's CSRF token, answered with a redirect back
and a one-time flash message (post/redirect/get). Pages are built by ``admin_pages``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from aggregator.catalog import CategoryConfig
from aggregator.editorial.operations import (
    DEFAULT_DRY_RUN_SINCE,
    Done,
    Workbench,
    parse_since,
    rule_text,
)
from aggregator.errors import EditRefused, Refusal, StoreError
from aggregator.store.search import SearchHit
from aggregator.types import Role
from aggregator.web import admin_pages as pages
from aggregator.web.admin_pages import Chrome, admin_url
from aggregator.web.auth import (
    ADMIN_PREFIX,
    CSRF_FIELD,
    DEFAULT_ADMIN_EDITOR,
    DISABLED_MESSAGE,
    FLASH_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Auth,
    Session,
    client_address,
    editor_name,
    role_refusal,
)

log = logging.getLogger(__name__)

# The pages run no script and load nothing from elsewhere; forms post only here.
ADMIN_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
ADMIN_HEADERS: Final = {
    "Content-Security-Policy": ADMIN_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MAX_FORM_BYTES: Final = 256 * 1024
MAX_FORM_FIELDS: Final = 2000
STORIES_PER_CATEGORY: Final = 20
AUDIT_PAGE: Final = 50
SEARCH_RESULTS: Final = 50
FORM_TYPE: Final = "application/x-www-form-urlencoded"

Form = dict[str, list[str]]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=ADMIN_HEADERS)


async def _read_form(request: Request) -> Form | Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (FORM_TYPE, ""):
        return _html(
            pages.message_page("Unsupported form", f"forms must be sent as {FORM_TYPE}"), 415
        )
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            return _html(
                pages.message_page("Form too large", f"at most {MAX_FORM_BYTES} bytes"), 413
            )
    try:
        return parse_qs(
            body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:
        return _html(pages.message_page("Form too large", f"at most {MAX_FORM_FIELDS} fields"), 413)


def _first(form: Form, name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0] if values else default


def admin_route_class(auth: Auth, *, signed_in: bool, needed: Role | None = None) -> type[APIRoute]:
    """Routes that answer 403 while editing is disabled and, when ``signed_in``, need a
    session: a GET without one is sent to the login page (303), anything else gets 401, and a
    POST must carry the session's CSRF token. A POST's form is parsed once, here. The
    session's role must reach ``needed`` (None: a viewer reads, an editor posts), else 403."""

    class AdminRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                # Both read the database (accounts): off the event loop.
                if not await run_in_threadpool(lambda: auth.enabled):
                    return _html(pages.message_page("Editing is disabled", DISABLED_MESSAGE), 403)
                session = await run_in_threadpool(auth.session, request.cookies.get(SESSION_COOKIE))
                if signed_in and session is None:
                    if request.method in ("GET", "HEAD"):
                        target = request.url.path + (
                            f"?{request.url.query}" if request.url.query else ""
                        )
                        return RedirectResponse(
                            f"{admin_url('login')}?next={quote(target, safe='')}",
                            303,
                            headers=ADMIN_HEADERS,
                        )
                    return _html(
                        pages.message_page("Not signed in", "log in at /admin/login first"), 401
                    )
                request.state.session = session
                if signed_in and session is not None:
                    role = needed or (Role.EDITOR if request.method == "POST" else Role.VIEWER)
                    refusal = role_refusal(session, role)
                    if refusal is not None:
                        return _html(
                            pages.message_page("Not allowed", refusal, back=ADMIN_PREFIX + "/"), 403
                        )
                if request.method == "POST":
                    form = await _read_form(request)
                    if isinstance(form, Response):
                        return form
                    if (
                        signed_in
                        and session is not None
                        and not auth.csrf_matches(session, _first(form, CSRF_FIELD))
                    ):
                        return _html(
                            pages.message_page(
                                "Form expired",
                                "this form is stale or did not come from these "
                                "pages: reload the page and try again",
                            ),
                            403,
                        )
                    request.state.form = form
                response = await handler(request)
                for name, value in ADMIN_HEADERS.items():
                    response.headers.setdefault(name, value)
                return response

            return guarded

    return AdminRoute


def _safe_next(path: str) -> str:
    """Only our own admin pages are a target after login (no open redirect)."""
    if path.startswith(ADMIN_PREFIX + "/") and not path.startswith("//") and "\\" not in path:
        return path
    return ADMIN_PREFIX + "/"


class AdminPages:
    """The page handlers over one workbench; ``include_admin`` routes them."""

    def __init__(self, bench: Workbench, auth: Auth) -> None:
        self.bench = bench
        self.auth = auth

    # -- plumbing --------------------------------------------------------------------------

    def _cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=ADMIN_PREFIX,
            httponly=True,
            samesite="strict",
            secure=self.auth.secure_cookie,
        )

    def chrome(self, request: Request, error: str | None = None) -> Chrome:
        session: Session = request.state.session
        return Chrome(
            csrf=self.auth.csrf_token(session),
            editor=session.editor,
            role=session.role,
            flash=self.auth.read_flash(request.cookies.get(FLASH_COOKIE)),
            error=error,
        )

    def show(self, request: Request, body: str, status: int = 200) -> HTMLResponse:
        response = _html(body, status)
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(
                FLASH_COOKIE,
                path=ADMIN_PREFIX,
                httponly=True,
                samesite="strict",
                secure=self.auth.secure_cookie,
            )
        return response

    def back(self, path: str, message: str) -> RedirectResponse:
        response = RedirectResponse(path, 303)
        self._cookie(response, FLASH_COOKIE, self.auth.flash(message), 60)
        return response

    def act(self, path: str, action: Callable[[], str]) -> RedirectResponse:
        """Run an edit and go back to ``path`` saying what happened or why it was refused."""
        try:
            message = action()
        except (EditRefused, StoreError) as exc:
            message = _refused(exc)
        return self.back(path, message)

    @staticmethod
    def form(request: Request) -> Form:
        form: Form = request.state.form
        return form

    @staticmethod
    def editor(request: Request) -> str:
        session: Session = request.state.session
        return session.editor

    # -- login -----------------------------------------------------------------------------

    def login_form(self, request: Request) -> Response:
        return _html(pages.login_page(_safe_next(request.query_params.get("next", ""))))

    def login(self, request: Request) -> Response:
        form = self.form(request)
        next_path = _safe_next(_first(form, "next"))
        address = client_address(request)
        wait = self.auth.limiter.retry_after(address)
        if wait is not None:
            log.warning("action=admin-login outcome=rate-limited client=%s", address)
            refused = _html(
                pages.login_page(
                    next_path, f"Too many failed logins from this address: try again in {wait} s."
                ),
                429,
            )
            refused.headers["Retry-After"] = str(wait)
            return refused
        identity = self.auth.identify(_first(form, "token"))
        if identity is None:
            self.auth.limiter.failed(address)
            log.warning("action=admin-login outcome=refused client=%s", address)
            return _html(pages.login_page(next_path, "That is not an active editor's token."), 401)
        # An account's name is its own; only the shared token's users name themselves.
        editor = (
            identity.name
            if identity.account
            else editor_name(_first(form, "editor"), DEFAULT_ADMIN_EDITOR)
        )
        response = RedirectResponse(next_path, 303)
        self._cookie(
            response, SESSION_COOKIE, self.auth.issue(editor, identity.key), SESSION_SECONDS
        )
        log.info("action=admin-login outcome=done editor=%r", editor)
        return response

    def logout(self, request: Request) -> Response:
        session: Session = request.state.session
        self.auth.revoke(session)
        log.info("action=admin-logout outcome=done editor=%r", session.editor)
        response = RedirectResponse(admin_url("login"), 303)
        response.delete_cookie(
            SESSION_COOKIE,
            path=ADMIN_PREFIX,
            httponly=True,
            samesite="strict",
            secure=self.auth.secure_cookie,
        )
        return response

    # -- pages -----------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        bench = self.bench
        return self.show(
            request,
            pages.overview_page(
                self.chrome(request),
                bench.sources(),
                bench.catalog.categories,
                bench.corrections(),
                bench.store.counts(),
                bench.source_alerts(),
            ),
        )

    def sources(self, request: Request) -> Response:
        return self.show(
            request,
            pages.sources_page(
                self.chrome(request), self.bench.sources(), self.bench.catalog.categories
            ),
        )

    def source_action(self, request: Request) -> Response:
        source_id = request.path_params["source_id"]
        verb = request.url.path.rsplit("/", 1)[-1]
        by = self.editor(request)
        actions: dict[str, Callable[[], str]] = {
            "pause": lambda: _said(self.bench.set_enabled(source_id, False, by=by)),
            "resume": lambda: _said(self.bench.set_enabled(source_id, True, by=by)),
            "remove": lambda: _said(self.bench.remove(source_id, by=by)),
        }
        return self.act(admin_url("sources"), actions[verb])

    def add_source(self, request: Request) -> Response:
        form = self.form(request)

        def add() -> str:
            return _said(
                self.bench.add(
                    self.bench.new_source(
                        url=_first(form, "url"),
                        categories=form.get("categories", []),
                        source_id=_first(form, "id"),
                        title=_first(form, "title"),
                    ),
                    by=self.editor(request),
                )
            )

        return self.act(admin_url("sources"), add)

    def categories(self, request: Request) -> Response:
        return self.show(
            request, pages.categories_page(self.chrome(request), self.bench.catalog.categories)
        )

    def category(self, request: Request) -> Response:
        category = self._category(request)
        return self.show(
            request,
            pages.category_page(
                self.chrome(request),
                category,
                "\n".join(rule_text(r) for r in category.include),
                "\n".join(rule_text(r) for r in category.exclude),
                DEFAULT_DRY_RUN_SINCE,
                None,
            ),
        )

    def category_post(self, request: Request) -> Response:
        category = self._category(request)
        form = self.form(request)
        include, exclude = _first(form, "include"), _first(form, "exclude")
        since = _first(form, "since", DEFAULT_DRY_RUN_SINCE).strip() or DEFAULT_DRY_RUN_SINCE
        lines_in, lines_out = include.splitlines(), exclude.splitlines()
        path = admin_url("categories", category.id)
        if _first(form, "action") == "save":
            return self.act(
                path,
                lambda: _said(
                    self.bench.set_rules(category.id, lines_in, lines_out, by=self.editor(request))
                ),
            )
        if _first(form, "action") == "apply":

            def apply() -> str:
                days = _first(form, "days").strip()
                if not (days.isdigit() and len(days) < 4):
                    raise EditRefused(
                        Refusal.INVALID, f"{days!r} is not a number of days", field="days"
                    )
                done, _ = self.bench.apply_rules(
                    category.id,
                    int(days),
                    by=self.editor(request),
                    note=_first(form, "note") or None,
                )
                return _said(done)

            return self.act(path, apply)
        # A dry run changes nothing, so its answer is the page itself, rules as typed.
        try:
            result = self.bench.dry_run(category.id, lines_in, lines_out, parse_since(since))
            error = None
        except EditRefused as exc:
            result, error = None, f"{exc.field or 'rules'}: {exc.message}"
        return self.show(
            request,
            pages.category_page(
                self.chrome(request, error), category, include, exclude, since, result
            ),
            200 if error is None else 422,
        )

    def _category(self, request: Request) -> CategoryConfig:
        try:
            return self.bench.category(request.path_params["category_id"])
        except EditRefused as exc:
            raise _NotFound(exc.message) from exc

    def stories(self, request: Request) -> Response:
        wanted = request.query_params.get("id", "").strip().lstrip("#")
        if wanted:
            if wanted.isdigit() and 0 < int(wanted) < 2**31:
                return RedirectResponse(admin_url("stories", int(wanted)), 303)
            return self.back(admin_url("stories"), f"Refused (id): {wanted!r} is not a story id")
        per_category = [
            (c, self.bench.recent_stories(c.id, STORIES_PER_CATEGORY))
            for c in self.bench.catalog.categories
        ]
        query, hits, error = self._search(request)
        return self.show(
            request,
            pages.stories_page(self.chrome(request, error), per_category, query, hits),
            200 if error is None else 422,
        )

    def _search(self, request: Request) -> tuple[str, list[SearchHit] | None, str | None]:
        """The page's ``q``, what it found (None without one) and why it was refused."""
        query = request.query_params.get("q", "")
        if not query:
            return query, None, None
        try:
            hits, _ = self.bench.search(query, SEARCH_RESULTS, include_hidden=True)
        except EditRefused as exc:
            return query, None, f"{exc.field}: {exc.message}"
        return query, hits, None

    def story(self, request: Request) -> Response:
        story_id = _int(request.path_params["story_id"], "story")
        try:
            detail = self.bench.story(story_id)
        except EditRefused as exc:
            raise _NotFound(exc.message) from exc
        query, hits, error = self._search(request)
        return self.show(
            request,
            pages.story_page(
                self.chrome(request, error), detail, self.bench.catalog.categories, query, hits
            ),
            200 if error is None else 422,
        )

    def story_action(self, request: Request) -> Response:
        story_id = _int(request.path_params["story_id"], "story")
        verb = request.url.path.rsplit("/", 1)[-1]
        form, by = self.form(request), self.editor(request)
        note = _first(form, "note") or None
        back = admin_url("stories", story_id)

        def number(field: str) -> int:
            value = _first(form, field).strip().lstrip("#")
            if not (value.isdigit() and 0 < int(value) < 2**31):
                raise EditRefused(Refusal.INVALID, f"{value!r} is not an id", field=field)
            return int(value)

        def merge() -> str:
            done = self.bench.merge(story_id, number("other_story_id"), by=by, note=note)
            return _said(done)

        def split() -> str:
            return _said(self.bench.split(story_id, number("entry_id"), by=by, note=note))

        def pin() -> str:
            return _said(self.bench.pin(story_id, _first(form, "category"), by=by, note=note))

        def hide() -> str:
            category = _first(form, "category") or None
            return _said(self.bench.hide(story_id, category, by=by, note=note))

        actions: dict[str, Callable[[], str]] = {
            "merge": merge,
            "split": split,
            "pin": pin,
            "hide": hide,
        }
        try:
            message = actions[verb]()
        except (EditRefused, StoreError) as exc:
            return self.back(back, _refused(exc))
        # After a merge the page to see is the story that kept its id.
        target = back
        if verb == "merge":
            kept = self.bench.store.story_detail(story_id)
            if kept is not None and kept.merged_into_id is not None:
                target = admin_url("stories", kept.merged_into_id)
        return self.back(target, message)

    def corrections(self, request: Request) -> Response:
        return self.show(
            request,
            pages.corrections_page(
                self.chrome(request), self.bench.corrections(include_undone=True)
            ),
        )

    def undo(self, request: Request) -> Response:
        override_id = _int(request.path_params["override_id"], "correction")
        back = _safe_next(_first(self.form(request), "back", admin_url("corrections")))
        return self.act(back, lambda: _said(self.bench.undo(override_id, by=self.editor(request))))

    def audit(self, request: Request) -> Response:
        before = request.query_params.get("before", "")
        rows = self.bench.audit_log(AUDIT_PAGE + 1, int(before) if before.isdigit() else None)
        return self.show(
            request,
            pages.audit_page(self.chrome(request), rows[:AUDIT_PAGE], more=len(rows) > AUDIT_PAGE),
        )

    def editors(self, request: Request) -> Response:
        return self._editors(request, None)

    def _editors(self, request: Request, token: tuple[str, str] | None) -> Response:
        return self.show(
            request, pages.editors_page(self.chrome(request), self.bench.editors(), token)
        )

    def add_editor(self, request: Request) -> Response:
        form = self.form(request)
        try:
            done, token = self.bench.add_editor(
                _first(form, "name"), _first(form, "role"), by=self.editor(request)
            )
        except (EditRefused, StoreError) as exc:
            return self.back(admin_url("editors"), _refused(exc))
        # The token is shown on this answer only (no redirect: it must not sit in a cookie).
        return self._editors(request, (done.message, token))

    def editor_action(self, request: Request) -> Response:
        name = request.path_params["name"]
        verb = request.url.path.rsplit("/", 1)[-1]
        by = self.editor(request)
        try:
            if verb == "rotate":
                done, token = self.bench.rotate_editor(name, by=by)
                return self._editors(request, (done.message, token))
            return self.back(admin_url("editors"), _said(self.bench.revoke_editor(name, by=by)))
        except (EditRefused, StoreError) as exc:
            return self.back(admin_url("editors"), _refused(exc))


class _NotFound(Exception):
    """A page for an id that does not exist: answered 404 with the reason."""


def _refused(exc: EditRefused | StoreError) -> str:
    if isinstance(exc, StoreError):
        log.error("action=admin-edit outcome=error error=%r", str(exc))
        return f"Refused: the store is unavailable ({exc})"
    where = f" ({exc.field})" if exc.field else ""
    return f"Refused{where}: {exc.message}"


def _said(done: Done) -> str:
    message = str(done.message)
    if not done.applied:
        message += " (saved; the service applies it at its next reload)"
    return message[:1].upper() + message[1:]


def _int(value: str, what: str) -> int:
    if value.isdigit() and 0 < int(value) < 2**31:
        return int(value)
    raise _NotFound(f"{value!r} is not a {what} id")


def include_admin(app: FastAPI, bench: Workbench, auth: Auth) -> None:
    """Add the /admin/ pages to ``app``; none appears in the API schema."""
    handlers = AdminPages(bench, auth)
    entry = APIRouter(
        prefix=ADMIN_PREFIX,
        include_in_schema=False,
        route_class=admin_route_class(auth, signed_in=False),
    )
    inside = APIRouter(
        prefix=ADMIN_PREFIX,
        include_in_schema=False,
        route_class=admin_route_class(auth, signed_in=True),
    )
    # Every signed-in editor may log out; only admins manage accounts.
    anyone = APIRouter(
        prefix=ADMIN_PREFIX,
        include_in_schema=False,
        route_class=admin_route_class(auth, signed_in=True, needed=Role.VIEWER),
    )
    admins = APIRouter(
        prefix=ADMIN_PREFIX,
        include_in_schema=False,
        route_class=admin_route_class(auth, signed_in=True, needed=Role.ADMIN),
    )
    entry.add_api_route("/login", handlers.login_form, methods=["GET"])
    entry.add_api_route("/login", handlers.login, methods=["POST"])
    anyone.add_api_route("/logout", handlers.logout, methods=["POST"])
    admins.add_api_route("/editors", handlers.editors, methods=["GET"])
    admins.add_api_route("/editors/add", handlers.add_editor, methods=["POST"])
    admins.add_api_route("/editors/{name}/rotate", handlers.editor_action, methods=["POST"])
    admins.add_api_route("/editors/{name}/revoke", handlers.editor_action, methods=["POST"])
    for path, handler, method in (
        ("/", handlers.overview, "GET"),
        ("/audit", handlers.audit, "GET"),
        ("/sources", handlers.sources, "GET"),
        ("/sources/add", handlers.add_source, "POST"),
        ("/sources/{source_id}/pause", handlers.source_action, "POST"),
        ("/sources/{source_id}/resume", handlers.source_action, "POST"),
        ("/sources/{source_id}/remove", handlers.source_action, "POST"),
        ("/categories", handlers.categories, "GET"),
        ("/categories/{category_id}", handlers.category, "GET"),
        ("/categories/{category_id}", handlers.category_post, "POST"),
        ("/stories", handlers.stories, "GET"),
        ("/stories/{story_id}", handlers.story, "GET"),
        ("/stories/{story_id}/merge", handlers.story_action, "POST"),
        ("/stories/{story_id}/split", handlers.story_action, "POST"),
        ("/stories/{story_id}/pin", handlers.story_action, "POST"),
        ("/stories/{story_id}/hide", handlers.story_action, "POST"),
        ("/corrections", handlers.corrections, "GET"),
        ("/corrections/{override_id}/undo", handlers.undo, "POST"),
    ):
        inside.add_api_route(path, handler, methods=[method])

    @app.exception_handler(_NotFound)
    async def _not_found(_request: Request, exc: _NotFound) -> Response:
        return _html(pages.message_page("Not found", str(exc)), 404)

    app.include_router(entry)
    app.include_router(anyone)
    app.include_router(admins)
    app.include_router(inside)
