"""Editors with their own access (issue 18): each role's allowed and refused actions through
the API and the admin pages, revocation and rotation taking effect at once, tokens never
stored in clear, an audit row for each kind of edit (and none for a refused one), and the
per-source secrets absent from every output."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from aggregator.cli import main
from aggregator.demo.feedserver import FeedServer
from aggregator.editorial.operations import Workbench as Operations
from aggregator.safety.tokens import token_key
from aggregator.store import Store
from aggregator.web.auth import CSRF_FIELD
from tests.support.browser import TOKEN, Workbench, workbench
from tests.support.webserver import serve_app


@dataclass
class Newsroom:
    base: str
    bench: Workbench
    ops: Operations
    tokens: dict[str, str]

    def api(self, method: str, path: str, who: str | None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(who, who)}"
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def login(self, who: str) -> requests.Session:
        http = requests.Session()
        answer = http.post(
            self.base + "/admin/login",
            data={"token": self.tokens[who]},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 303, answer.text
        return http

    def form(self, http: requests.Session, path: str, **fields: str) -> requests.Response:
        page = http.get(self.base + "/admin/", timeout=30).text
        found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page)
        assert found is not None
        return http.post(
            self.base + path,
            data={CSRF_FIELD: found.group(1), **fields},
            allow_redirects=False,
            timeout=30,
        )

    def story_ids(self) -> list[int]:
        return sorted(self.bench.story_ids().values())


@pytest.fixture(params=["accounts only", "with the shared token"])
def newsroom(
    request: pytest.FixtureRequest, sqlite_store: Store, feed_server: FeedServer, tmp_path: Path
) -> Iterator[Newsroom]:
    token = TOKEN if request.param == "with the shared token" else ""
    with (
        workbench(sqlite_store, feed_server, tmp_path / "config", token=token) as bench,
        serve_app(bench.app) as base,
    ):
        ops = Operations(
            store=sqlite_store, catalog=lambda: bench.outputs.catalog, config_dir=bench.config
        )
        tokens = {
            name: ops.add_editor(name, name.split("-")[0], by="setup")[1]
            for name in ("viewer-vic", "editor-eva", "admin-ada")
        }
        yield Newsroom(base, bench, ops, tokens)


def _audit(room: Newsroom) -> list[dict[str, Any]]:
    answer = room.api("GET", "/api/audit?limit=500", "admin-ada")
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def test_each_role_through_the_api(newsroom: Newsroom) -> None:
    room = newsroom
    first, second = room.story_ids()[:2]
    rules = {"include": ["robot", "ferry"], "exclude": []}
    # A viewer reads what editors read, and is refused every edit, naming the role.
    assert room.api("GET", "/api/corrections", "viewer-vic").status_code == 200
    assert room.api("GET", "/api/audit", "viewer-vic").status_code == 200
    for method, path, body in (
        ("POST", "/api/sources/wire/pause", None),
        ("PUT", "/api/categories/tech/rules", rules),
        ("POST", f"/api/stories/{first}/merge", {"other_story_id": second}),
        ("GET", "/api/editors", None),
    ):
        refused = room.api(method, path, "viewer-vic", json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert "viewer role" in refused.json()["detail"]
    # An editor edits, and may not manage editors.
    assert room.api("POST", "/api/sources/wire/pause", "editor-eva").status_code == 200
    assert (
        room.api("PUT", "/api/categories/tech/rules", "editor-eva", json=rules).status_code == 200
    )
    merged = room.api(
        "POST", f"/api/stories/{first}/merge", "editor-eva", json={"other_story_id": second}
    )
    assert merged.status_code == 200, merged.text
    managing: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", "/api/editors", None),
        ("POST", "/api/editors", {"name": "sneaky", "role": "admin"}),
        ("DELETE", "/api/editors/admin-ada", None),
    ]
    for method, path, account in managing:
        refused = room.api(method, path, "editor-eva", json=account)
        assert refused.status_code == 403, (path, refused.text)
        assert "editor role" in refused.json()["detail"]
    # An admin manages accounts; a new token works at once, with its role.
    made = room.api("POST", "/api/editors", "admin-ada", json={"name": "new-nia", "role": "viewer"})
    assert made.status_code == 201, made.text
    new_token = made.json()["token"]
    assert room.api("GET", "/api/corrections", new_token).status_code == 200
    assert room.api("POST", "/api/sources/wire/resume", new_token).status_code == 403
    listed = room.api("GET", "/api/editors", "admin-ada").json()
    assert {e["name"]: e["role"] for e in listed} == {
        "viewer-vic": "viewer",
        "editor-eva": "editor",
        "admin-ada": "admin",
        "new-nia": "viewer",
    }
    assert new_token not in str(listed)
    # The correction is recorded under the account's name, whatever header is sent.
    corrections = room.api(
        "GET", "/api/corrections", "editor-eva", headers={"X-Editor": "Impostor"}
    ).json()
    assert [c["created_by"] for c in corrections] == ["editor-eva"]


def test_revoke_and_rotate_take_effect_at_once(newsroom: Newsroom) -> None:
    room = newsroom
    session = room.login("editor-eva")
    assert session.get(room.base + "/admin/sources", timeout=30).status_code == 200
    assert room.api("POST", "/api/sources/wire/pause", "editor-eva").status_code == 200
    room.ops.revoke_editor("editor-eva", by="admin-ada")
    refused = room.api("POST", "/api/sources/wire/resume", "editor-eva")
    assert refused.status_code == 401
    assert "not an active editor's token" in refused.json()["detail"]
    # The browser session ended with the token: the next page asks to log in again.
    page = session.get(room.base + "/admin/sources", allow_redirects=False, timeout=30)
    assert page.status_code == 303
    assert "/admin/login" in page.headers["location"]
    # Rotation: the old token and its session stop, the new one works.
    old = room.tokens["admin-ada"]
    admin_session = room.login("admin-ada")
    rotated = room.api("POST", "/api/editors/admin-ada/rotate", "admin-ada")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["token"]
    assert new != old
    assert room.api("GET", "/api/editors", old).status_code == 401
    assert room.api("GET", "/api/editors", new).status_code == 200
    assert (
        admin_session.get(
            room.base + "/admin/editors", allow_redirects=False, timeout=30
        ).status_code
        == 303
    )
    # Revoked is not forgotten: the account stays listed, inactive, with who revoked it.
    listed = {e["name"]: e for e in room.api("GET", "/api/editors", new).json()}
    assert (listed["editor-eva"]["active"], listed["editor-eva"]["revoked_by"]) == (
        False,
        "admin-ada",
    )


def test_tokens_are_not_stored_in_clear(newsroom: Newsroom) -> None:
    room = newsroom
    with room.bench.store.engine.connect() as connection:
        rows = [dict(r) for r in connection.execute(sa.text("SELECT * FROM editors")).mappings()]
        keys = [
            dict(r) for r in connection.execute(sa.text("SELECT * FROM signing_keys")).mappings()
        ]
    assert len(rows) == 3
    stored = repr(rows) + repr(keys)
    for token in room.tokens.values():
        # The secret is URL-safe base64 and may itself hold "_": take it by the token's
        # grammar (agg_ + 16-character key + _), not by the last underscore.
        key = token_key(token)
        assert key is not None
        secret = token.removeprefix(f"agg_{key}_")
        assert len(secret) == 43
        assert token not in stored
        assert secret not in stored
    assert all(str(r["token_hash"]).startswith("scrypt$16384$8$1$") for r in rows)
    # Two accounts never share a hash, even for the same role (salted).
    assert len({r["token_hash"] for r in rows}) == 3


def test_each_role_through_the_admin_pages(newsroom: Newsroom) -> None:
    room = newsroom
    viewer = room.login("viewer-vic")
    page = viewer.get(room.base + "/admin/sources", timeout=30)
    assert page.status_code == 200
    assert "signed in as viewer-vic (viewer)" in page.text
    assert 'id="read-only"' in page.text
    refused = room.form(viewer, "/admin/sources/wire/pause")
    assert refused.status_code == 403
    assert "viewer role" in refused.text
    assert "enabled = false" not in (room.bench.config / "sources.toml").read_text("utf-8")
    assert viewer.get(room.base + "/admin/editors", timeout=30).status_code == 403
    assert viewer.get(room.base + "/admin/audit", timeout=30).status_code == 200

    editor = room.login("editor-eva")
    done = room.form(editor, "/admin/sources/wire/pause")
    assert done.status_code == 303
    assert "enabled = false" in (room.bench.config / "sources.toml").read_text("utf-8")
    assert editor.get(room.base + "/admin/editors", timeout=30).status_code == 403
    assert room.form(editor, "/admin/editors/add", name="x", role="admin").status_code == 403
    overview = editor.get(room.base + "/admin/", timeout=30).text
    assert "Editors</a>" not in overview
    assert 'id="read-only"' not in overview

    admin = room.login("admin-ada")
    added = room.form(admin, "/admin/editors/add", name="page-pia", role="editor")
    assert added.status_code == 200
    found = re.search(r'<code id="new-token">([^<]+)</code>', added.text)
    assert found is not None
    assert room.api("POST", "/api/sources/wire/resume", found.group(1)).status_code == 200
    revoked = room.form(admin, "/admin/editors/page-pia/revoke")
    assert revoked.status_code == 303
    assert room.api("POST", "/api/sources/wire/pause", found.group(1)).status_code == 401


def test_an_audit_row_for_each_kind_of_edit(newsroom: Newsroom) -> None:
    room = newsroom
    first, second = room.story_ids()[:2]
    assert room.api("POST", "/api/sources/wire/pause", "editor-eva").status_code == 200
    assert (
        room.api(
            "PUT",
            "/api/categories/tech/rules",
            "editor-eva",
            json={"include": ["robot", "ferry"], "exclude": ["strike"]},
        ).status_code
        == 200
    )
    merged = room.api(
        "POST",
        f"/api/stories/{first}/merge",
        "editor-eva",
        json={"other_story_id": second, "note": "same ferry"},
    ).json()
    editor = room.login("editor-eva")
    assert room.form(editor, f"/admin/corrections/{merged['override_id']}/undo").status_code == 303
    assert room.api("DELETE", "/api/editors/viewer-vic", "admin-ada").status_code == 200
    rows = _audit(room)
    edits = [
        (r["editor"], r["kind"], r["action"], r["target"])
        for r in reversed(rows)
        if r["editor"] != "setup"
    ]
    assert edits == [
        ("editor-eva", "source", "pause", "wire"),
        ("editor-eva", "rules", "save", "tech"),
        ("editor-eva", "correction", "merge", f"story #{first}"),
        ("editor-eva", "correction", "undo", f"correction #{merged['override_id']}"),
        ("admin-ada", "editor", "revoke", "viewer-vic"),
    ]
    by_action = {r["action"]: r for r in rows}
    assert by_action["pause"]["detail"] == {"enabled": {"before": True, "after": False}}
    assert by_action["save"]["detail"] == {
        "include": {"added": ["ferry"], "removed": []},
        "exclude": {"added": ["strike"], "removed": []},
    }
    assert by_action["merge"]["detail"] == {
        "story_id": first,
        "other_story_id": second,
        "note": "same ferry",
        "override_id": merged["override_id"],
    }
    # Paged like the other lists: newest first, Link: rel="next" until the last page.
    seen: list[int] = []
    url: str | None = "/api/audit?limit=3"
    while url is not None:
        page = room.api("GET", url, "admin-ada")
        seen += [r["id"] for r in page.json()]
        link = page.headers.get("link")
        url = None
        if link is not None:
            url = re.sub(r"^<http://agg\.test(.*)>; rel=\"next\"$", r"\1", link)
    assert seen == [r["id"] for r in rows]
    assert len(seen) == 8  # three accounts made by setup, five edits
    shown = editor.get(room.base + "/admin/audit", timeout=30).text
    assert "rules save: tech" in shown
    assert "editor-eva" in shown


def test_a_refused_edit_writes_no_audit_row(newsroom: Newsroom) -> None:
    room = newsroom
    before = _audit(room)
    assert room.api("POST", "/api/sources/nope/pause", "editor-eva").status_code == 404
    assert (
        room.api(
            "PUT", "/api/categories/tech/rules", "editor-eva", json={"include": ["/(/"]}
        ).status_code
        == 422
    )
    assert (
        room.api(
            "POST", "/api/stories/999999/merge", "editor-eva", json={"other_story_id": 1}
        ).status_code
        == 404
    )
    assert room.api("POST", "/api/sources/wire/pause", "viewer-vic").status_code == 403
    assert _audit(room) == before


AUTH_SECRET = "wire-user:s3cr3t-pa55-91x"
COOKIE_SECRET = "sid=c00kie-v4lue-7d2e"


def test_source_secrets_appear_in_no_output(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    room = newsroom
    monkeypatch.setenv("WIRE_AUTH", AUTH_SECRET)
    monkeypatch.setenv("WIRE_COOKIE", COOKIE_SECRET)
    sources = room.bench.config / "sources.toml"
    text = sources.read_text("utf-8").replace(
        'id = "wire"\n',
        'id = "wire"\nauth_env = "WIRE_AUTH"\ncookie_env = "WIRE_COOKIE"\n'
        'user_agent = "WireBot/1.0"\nheaders = { "X-Client" = "newsroom" }\n',
        1,
    )
    sources.write_text(text, "utf-8")
    # An edit through the API applies the edited file to the running service.
    assert room.api("POST", "/api/sources/journal/pause", "editor-eva").status_code == 200
    assert room.bench.outputs.catalog.source("wire").fetch.auth_env == "WIRE_AUTH"
    admin = room.login("admin-ada")
    seen = [
        room.api("GET", "/api/sources", None).text,
        room.api("GET", "/api/sources", "admin-ada").text,
        room.api("GET", "/feeds.opml", None).text,
        room.api("GET", "/api/audit", "admin-ada").text,
        admin.get(room.base + "/admin/sources", timeout=30).text,
        admin.get(room.base + "/admin/", timeout=30).text,
    ]
    database = room.bench.store.engine.url.render_as_string(hide_password=False)
    for argv in (["sources", "export-opml"], ["sources", "list", "--json"], ["check", "--json"]):
        code = main([*argv, "--config", str(room.bench.config), "--database", database])
        assert code == 0
        seen.append(capsys.readouterr().out)
    assert "WireBot" not in seen[0]  # the settings themselves stay internal too
    for output in seen:
        assert AUTH_SECRET not in output
        assert COOKIE_SECRET not in output
        assert "s3cr3t" not in output
