"""Who may edit (issue 6, acceptance 4): every route of the OpenAPI schema and every /admin/
route of the live router, walked without the token, refuses writes and admin pages; the token
and the session cookie are checked as documented; editing is off (403) without a token.

The walks are built from the running app's own route list, so a route added later is walked
too; one that forgets the guard fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from aggregator.demo.feedserver import FeedServer
from aggregator.errors import ConfigError
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.web import create_app
from aggregator.web.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Auth,
    FailureLimiter,
)
from tests.support.browser import TOKEN, Workbench, workbench
from tests.support.webserver import serve_app

READ_METHODS = {"get", "head", "options"}
# What each path parameter stands for in a walk: ids that exist, so a missing guard would act.
PATH_VALUES = {
    "source_id": "wire",
    "category_id": "tech",
    "category": "news",
    "story_id": "1",
    "override_id": "1",
    "name": "news.atom",
    "subscriber_id": "partner",
    "delivery_id": "1",
}


@pytest.fixture
def bench(sqlite_store: Store, feed_server: FeedServer, tmp_path: Path) -> Iterator[Workbench]:
    # These walks send hundreds of wrong tokens from one address to check access control;
    # the throttling that would otherwise answer 429 has its own tests (test_sessions.py).
    unthrottled = FailureLimiter(burst=1_000_000)
    with workbench(sqlite_store, feed_server, tmp_path / "config", limiter=unthrottled) as bench:
        yield bench


@pytest.fixture
def served(bench: Workbench) -> Iterator[str]:
    with serve_app(bench.app) as base:
        yield base


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES[m.group(1)], path)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    ]


def _routes(app: FastAPI) -> list[tuple[str, BaseRoute]]:
    """Every route of the app with its full path, included routers walked into."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers: the list is flat
        return [(getattr(r, "path", ""), r) for r in app.routes]
    return [
        (context.path or "", context.original_route) for context in iter_route_contexts(app.routes)
    ]


def _admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (path, method)
        for path, route in _routes(app)
        if isinstance(route, APIRoute) and path.startswith("/admin")
        for method in sorted(route.methods or ())
    ]


def test_every_write_in_the_schema_needs_the_token(served: str, bench: Workbench) -> None:
    schema = requests.get(f"{served}/api/openapi.json", timeout=10).json()
    assert schema["components"]["securitySchemes"]["adminToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["adminToken"]["description"],
    }
    guarded = []
    for path, method, operation in _operations(schema):
        secured = any("adminToken" in req for req in operation.get("security", []))
        if method not in READ_METHODS:
            assert secured, f"{method.upper()} {path} changes state without the token scheme"
        if not secured:
            continue
        guarded.append((method, path))
        url = served + _fill(path)
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            # A body that would be valid, and one that would not: the token comes first.
            for body in (
                {
                    "include": ["x"],
                    "other_story_id": 2,
                    "entry_id": 1,
                    "category": "news",
                    "url": "https://x.example/f",
                    "categories": ["news"],
                },
                {"unexpected": object.__name__},
            ):
                response = requests.request(method, url, json=body, headers=headers, timeout=10)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer")
    assert ("post", "/api/sources/{source_id}/pause") in guarded
    assert ("get", "/api/corrections") in guarded
    assert len(guarded) >= 12
    # Nothing was changed by any of those requests.
    assert "enabled" not in (bench.config / "sources.toml").read_text(encoding="utf-8")
    assert bench.store.overrides(include_undone=True) == []
    assert bench.reloads == 0


def test_every_admin_route_needs_a_session(served: str, bench: Workbench) -> None:
    routes = _admin_routes(bench.app)
    assert ("/admin/", "GET") in routes
    assert ("/admin/stories/{story_id}/merge", "POST") in routes
    forged = {SESSION_COOKIE: "1.abc.YWRtaW4.0123456789abcdef"}
    for path, method in routes:
        url = served + _fill(path)
        for cookies in ({}, forged):
            response = requests.request(
                method,
                url,
                data={"include": "x", "entry_id": "1"},
                cookies=cookies,
                allow_redirects=False,
                timeout=10,
            )
            if path == "/admin/login":
                expected = 200 if method == "GET" else 401  # the form; no token given
            else:
                expected = 303 if method == "GET" else 401
            assert response.status_code == expected, (method, path, cookies)
            if expected == 303:
                assert response.headers["location"].startswith("/admin/login?next=")
    assert "enabled" not in (bench.config / "sources.toml").read_text(encoding="utf-8")
    assert bench.store.overrides(include_undone=True) == []


def test_without_a_token_editing_is_disabled(
    sqlite_store: Store, feed_server: FeedServer, tmp_path: Path
) -> None:
    with (
        workbench(sqlite_store, feed_server, tmp_path / "config", token="") as off,
        serve_app(off.app) as base,
    ):
        schema = requests.get(f"{base}/api/openapi.json", timeout=10).json()
        for path, method, operation in _operations(schema):
            if not operation.get("security"):
                continue
            response = requests.request(
                method,
                base + _fill(path),
                json={},
                headers={"Authorization": "Bearer "},
                timeout=10,
            )
            assert response.status_code == 403, (method, path)
            assert "AGGREGATOR_ADMIN_TOKEN" in response.json()["detail"]
        for path, method in _admin_routes(off.app):
            response = requests.request(
                method, base + _fill(path), data={"token": ""}, allow_redirects=False, timeout=10
            )
            assert response.status_code == 403, (method, path)
            assert "AGGREGATOR_ADMIN_TOKEN" in response.text
        # Reading stays open, as for the feeds.
        assert requests.get(f"{base}/api/categories/tech", timeout=10).json()["include"] == [
            "robot"
        ]


def test_the_token_opens_the_api_and_names_the_editor(served: str, bench: Workbench) -> None:
    # Control characters go, and the name is cut to 64 characters.
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Editor": "Ana\tLopez " + "x" * 100}
    recorded = ("AnaLopez " + "x" * 100)[:64]
    response = requests.post(f"{served}/api/sources/journal/pause", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["applied"] is True
    ids = bench.story_ids()
    rail, ferry = (
        ids["Rail workers announce a national strike"],
        ids["Ferry runs aground off Paros"],
    )
    merged = requests.post(
        f"{served}/api/stories/{rail}/merge",
        headers=headers,
        json={"other_story_id": ferry},
        timeout=10,
    )
    assert merged.status_code == 200, merged.text
    log = requests.get(f"{served}/api/corrections", headers=headers, timeout=10).json()
    assert [(c["kind"], c["created_by"]) for c in log] == [("merge", recorded)]
    anonymous = requests.post(
        f"{served}/api/corrections/{log[0]['id']}/undo",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert anonymous.status_code == 200
    undone = bench.store.overrides(include_undone=True)[0]
    assert undone.undone_by == "api"


def _login(served: str, http: requests.Session, token: str = TOKEN) -> requests.Response:
    return http.post(
        f"{served}/admin/login",
        data={"token": token, "editor": "Mia", "next": "/admin/sources"},
        allow_redirects=False,
        timeout=10,
    )


def test_login_sets_a_strict_cookie_without_the_token(served: str) -> None:
    with requests.Session() as http:
        refused = _login(served, http, "not-the-token-0123456789")
        assert refused.status_code == 401
        assert SESSION_COOKIE not in http.cookies
        response = _login(served, http)
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/sources"
        cookie = response.headers["set-cookie"]
        assert TOKEN not in cookie
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin"):
            assert attribute.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # the public URL here is plain http
        page = http.get(f"{served}/admin/sources", timeout=10)
        assert page.status_code == 200
        assert "signed in as Mia" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        # A login never sends anyone elsewhere (no open redirect).
        away = http.post(
            f"{served}/admin/login",
            data={"token": TOKEN, "next": "//evil.example/x"},
            allow_redirects=False,
            timeout=10,
        )
        assert away.headers["location"] == "/admin/"


def test_admin_posts_need_the_csrf_token_of_their_session(served: str, bench: Workbench) -> None:
    with requests.Session() as http:
        _login(served, http)
        page = http.get(f"{served}/admin/sources", timeout=10).text
        csrf = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page)
        assert csrf is not None
        url = f"{served}/admin/sources/wire/pause"
        for data in ({}, {CSRF_FIELD: "0" * 64}):
            response = http.post(url, data=data, allow_redirects=False, timeout=10)
            assert response.status_code == 403
        # Another session's token is no good either.
        with requests.Session() as other:
            _login(served, other)
            response = other.post(
                url, data={CSRF_FIELD: csrf.group(1)}, allow_redirects=False, timeout=10
            )
            assert response.status_code == 403
        assert "enabled" not in (bench.config / "sources.toml").read_text(encoding="utf-8")
        done = http.post(url, data={CSRF_FIELD: csrf.group(1)}, allow_redirects=False, timeout=10)
        assert done.status_code == 303
        assert "enabled = false" in (bench.config / "sources.toml").read_text(encoding="utf-8")
        # Logging out ends the session in this browser.
        http.post(f"{served}/admin/logout", data={CSRF_FIELD: csrf.group(1)}, timeout=10)
        assert http.get(f"{served}/admin/", allow_redirects=False, timeout=10).status_code == 303


def test_session_cookie_is_secure_behind_https(
    sqlite_store: Store, tmp_path: Path, feed_server: FeedServer
) -> None:
    with workbench(sqlite_store, feed_server, tmp_path / "config") as bench:
        bench.outputs.base_url = "https://agg.example"
        app = create_app(
            store=bench.store, outputs=bench.outputs, admin_token=TOKEN, config_dir=bench.config
        )
        with serve_app(app) as base, requests.Session() as http:
            response = _login(base, http)
            assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("token", ["short", "has a space in the middle"])
def test_a_weak_token_is_refused_naming_the_setting(token: str) -> None:
    with pytest.raises(ConfigError, match="AGGREGATOR_ADMIN_TOKEN"):
        Settings.from_env({"AGGREGATOR_ADMIN_TOKEN": token})
    assert Settings.from_env({"AGGREGATOR_ADMIN_TOKEN": TOKEN}).admin_token == TOKEN
    assert Settings.from_env({}).admin_token == ""


def test_sessions_expire_and_refuse_tampering() -> None:
    now = [1_000_000.0]
    auth = Auth(TOKEN, secure_cookie=False, clock=lambda: now[0])
    value = auth.issue("Mia")
    session = auth.session(value)
    assert session is not None
    assert session.editor == "Mia"
    nonce, name, issued, signature = value.split(".")
    later = Auth(TOKEN, secure_cookie=False, clock=lambda: now[0] + 3600).issue("Mia")
    for forged in (
        f"{nonce}.{name}.{issued}.{'0' * len(signature)}",
        f"{nonce}.{name}.{later.split('.')[2]}.{signature}",
        f"{nonce}.TWFsbG9yeQ.{issued}.{signature}",
        value + "x",
        "",
        "a.b.c.d",
    ):
        assert auth.session(forged) is None, forged
    # Another token (or none) accepts nothing this one issued.
    assert Auth("another-token-0123456789", secure_cookie=False).session(value) is None
    assert Auth("", secure_cookie=False).session(value) is None
    assert auth.csrf_matches(session, auth.csrf_token(session))
    other = auth.session(auth.issue("Mia"))
    assert other is not None
    assert not auth.csrf_matches(other, auth.csrf_token(session))
    now[0] += SESSION_SECONDS - 1
    assert auth.session(value) is not None
    now[0] += 2
    assert auth.session(value) is None
    assert auth.read_flash(auth.flash("Saved <b>")) == "Saved <b>"
    assert auth.read_flash("U2F2ZWQ." + "0" * 64) is None
