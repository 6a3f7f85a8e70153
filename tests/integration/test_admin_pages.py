"""The /admin/ pages over HTTP, on a store filled by polling a loopback feed server: each form
posts, redirects back and says what it did once; edits reach the TOML files and the running
configuration; corrections are explained and undoable; nothing a source sends becomes markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import html5lib
import pytest
import requests

from aggregator.demo.feedserver import FeedServer
from aggregator.store import Store
from aggregator.web.auth import CSRF_FIELD
from tests.support.browser import HOSTILE_TITLE, TOKEN, Workbench, workbench
from tests.support.outputchecks import html5_errors
from tests.support.webserver import serve_app

XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass
class Editor:
    base: str
    http: requests.Session
    bench: Workbench

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.http.get(self.base + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def csrf(self, path: str = "/admin/") -> str:
        found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', self.get(path).text)
        assert found is not None
        return found.group(1)

    def post(self, path: str, **fields: str) -> requests.Response:
        """Post a form as the browser would, without following the redirect."""
        data = {CSRF_FIELD: self.csrf(), **fields}
        return self.http.post(self.base + path, data=data, allow_redirects=False, timeout=10)

    def follow(self, response: requests.Response) -> requests.Response:
        assert response.status_code == 303, response.text
        return self.get(response.headers["location"])

    def sources_toml(self) -> str:
        return (self.bench.config / "sources.toml").read_text(encoding="utf-8")


@pytest.fixture
def editor(store: Store, feed_server: FeedServer, tmp_path: Path) -> Iterator[Editor]:
    with (
        workbench(store, feed_server, tmp_path / "config") as bench,
        serve_app(bench.app) as base,
        requests.Session() as http,
    ):
        login = http.post(
            f"{base}/admin/login",
            data={"token": TOKEN, "editor": "Mia"},
            allow_redirects=False,
            timeout=10,
        )
        assert login.status_code == 303
        yield Editor(base, http, bench)


def _flash(page: str) -> str | None:
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', page)
    return found.group(1) if found else None


def test_overview_and_source_health(editor: Editor) -> None:
    overview = editor.get("/admin/")
    assert overview.status_code == 200
    assert "Sources</a>: 2 (2 active); 0 failing" in overview.text
    sources = editor.get("/admin/sources").text
    assert 'id="source-wire"' in sources
    assert 'class="state state-active">active<' in sources
    assert "<time" in sources  # last success is shown


def test_pause_and_resume_write_the_file_and_say_so_once(editor: Editor) -> None:
    page = editor.follow(editor.post("/admin/sources/wire/pause"))
    assert _flash(page.text) == "Paused source 'wire'"
    assert re.search(r'id="source-wire">.*?state-paused">paused<', page.text)
    assert "enabled = false" in editor.sources_toml()
    assert "# Editors' sources (comments are kept by edits)" in editor.sources_toml()
    assert [s.state for s in editor.bench.store.sources() if s.id == "wire"] == ["paused"]
    assert _flash(editor.get("/admin/sources").text) is None  # shown once
    editor.follow(editor.post("/admin/sources/wire/resume"))
    assert "enabled" not in editor.sources_toml()
    refused = editor.follow(editor.post("/admin/sources/nope/pause"))
    assert _flash(refused.text) == "Refused (source_id): no source 'nope' in the configuration"


def test_add_source_checks_the_url_and_the_categories(editor: Editor) -> None:
    added = editor.follow(
        editor.post(
            "/admin/sources/add",
            url="https://feeds.example/new.xml",
            categories="news",
            title="New Feed",
        )
    )
    assert "Added source 'new-feed'" in (_flash(added.text) or "")
    assert 'id = "new-feed"' in editor.sources_toml()
    # Nobody reviewed the URL: the source may only be fetched from public addresses.
    added_block = editor.sources_toml().split('id = "new-feed"', 1)[1]
    assert "public_only = true" in added_block
    assert [s.public_only for s in editor.bench.store.sources() if s.id == "new-feed"] == [True]
    for fields, field in (
        ({"url": "http://127.0.0.1:9/feed", "categories": "news"}, "url"),
        ({"url": "javascript:alert(1)", "categories": "news"}, "url"),
        ({"url": "https://x.example/f", "categories": "nope"}, "categories"),
    ):
        refused = editor.follow(editor.post("/admin/sources/add", **fields))
        assert (_flash(refused.text) or "").startswith(f"Refused ({field})"), refused.text
    assert "127.0.0.1:9" not in editor.sources_toml()


def test_dry_run_shows_the_difference_and_saves_nothing(editor: Editor) -> None:
    page = editor.get("/admin/categories/tech")
    assert ">robot</textarea>" in page.text
    before = (editor.bench.config / "categories.toml").read_text(encoding="utf-8")
    response = editor.http.post(
        editor.base + "/admin/categories/tech",
        data={
            CSRF_FIELD: editor.csrf(),
            "include": "ferry\n/paros/",
            "exclude": "",
            "since": "7d",
            "action": "dry-run",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 200
    section = response.text.split('<section id="dry-run">', 1)[1]
    added, removed = section.split("Would be removed", 1)
    assert "Ferry runs aground off Paros" in added
    assert "Robot wins the world chess final" in removed
    assert ">ferry\n/paros/</textarea>" in response.text  # the rules as typed stay
    assert (editor.bench.config / "categories.toml").read_text(encoding="utf-8") == before
    bad = editor.http.post(
        editor.base + "/admin/categories/tech",
        data={CSRF_FIELD: editor.csrf(), "include": "robot\n/(/", "action": "dry-run"},
        timeout=10,
    )
    assert bad.status_code == 422
    assert "include[1]: bad rule" in bad.text


def test_save_rules_writes_the_file_and_the_running_catalog(editor: Editor) -> None:
    page = editor.follow(
        editor.post(
            "/admin/categories/tech", include="ferry\n/robots?/", exclude="cook", action="save"
        )
    )
    assert _flash(page.text) == "Saved the rules of 'tech': 2 include, 1 exclude"
    text = (editor.bench.config / "categories.toml").read_text(encoding="utf-8")
    assert '"ferry"' in text
    assert '"/robots?/"' in text
    assert '"cook"' in text
    assert [r.label for r in editor.bench.outputs.catalog.category("tech").include] == [
        "'ferry'",
        "/robots?/",
    ]


def _story_ids(editor: Editor) -> dict[str, int]:
    return editor.bench.story_ids()


def test_merge_then_undo_from_the_story_page(editor: Editor) -> None:
    ids = _story_ids(editor)
    rail, ferry = (
        ids["Rail workers announce a national strike"],
        ids["Ferry runs aground off Paros"],
    )
    merged = editor.post(f"/admin/stories/{rail}/merge", other_story_id=str(ferry), note="same day")
    kept, gone = min(rail, ferry), max(rail, ferry)
    assert merged.headers["location"] == f"/admin/stories/{kept}"
    page = editor.follow(merged).text
    assert f"Merged story #{gone} into #{kept}" in (_flash(page) or "")
    assert 'id="entry-' in page
    assert page.count('id="entry-') == 2
    assert "merge story" in page  # the correction, with its undo button
    override = editor.bench.store.overrides()[0]
    assert override.created_by == "Mia"
    assert override.note == "same day"
    undone = editor.follow(
        editor.post(f"/admin/corrections/{override.id}/undo", back=f"/admin/stories/{kept}")
    )
    assert _flash(undone.text) == f"Undid correction #{override.id}"
    assert undone.text.count('id="entry-') == 1
    assert editor.bench.store.overrides() == []
    log = editor.get("/admin/corrections").text
    assert "undone by Mia" in log


def test_split_pin_and_hide_from_the_story_page(editor: Editor) -> None:
    ids = _story_ids(editor)
    rail, ferry = (
        ids["Rail workers announce a national strike"],
        ids["Ferry runs aground off Paros"],
    )
    kept = min(rail, ferry)
    editor.follow(editor.post(f"/admin/stories/{rail}/merge", other_story_id=str(ferry)))
    detail = editor.bench.store.story_detail(kept)
    assert detail is not None
    moved = max(e.entry_id for e in detail.entries)
    split = editor.follow(editor.post(f"/admin/stories/{kept}/split", entry_id=str(moved)))
    assert "Split entry #" in (_flash(split.text) or "")
    assert split.text.count('id="entry-') == 1
    pinned = editor.follow(editor.post(f"/admin/stories/{kept}/pin", category="tech"))
    assert "pinned in tech" in pinned.text
    hidden = editor.follow(editor.post(f"/admin/stories/{kept}/hide", category="news"))
    assert "hidden in news" in hidden.text
    assert kept not in {s.story_id for s in editor.bench.store.category_stories("news", 50)}
    refused = editor.follow(editor.post(f"/admin/stories/{kept}/pin", category="nope"))
    assert (_flash(refused.text) or "").startswith("Refused (category)")
    wrong = editor.follow(editor.post(f"/admin/stories/{kept}/merge", other_story_id="abc"))
    assert (_flash(wrong.text) or "").startswith("Refused (other_story_id)")


def test_story_page_explains_each_entry(editor: Editor) -> None:
    ids = _story_ids(editor)
    page = editor.get(f"/admin/stories/{ids['Robot wins the world chess final']}")
    assert page.status_code == 200
    assert "founded the story" in page.text
    assert "tech: " in page.text  # why the tech category took it: its rule
    assert "robot" in page.text
    assert editor.get("/admin/stories/999999").status_code == 404
    jump = editor.get(
        f"/admin/stories?id={ids['Ferry runs aground off Paros']}", allow_redirects=False
    )
    assert jump.headers["location"] == f"/admin/stories/{ids['Ferry runs aground off Paros']}"


def _executable(page: str) -> list[str]:
    """Script elements and event-handler attributes in the parsed page."""
    found = []
    for element in html5lib.parse(page).iter():
        if element.tag == f"{XHTML}script":
            found.append("script element")
        found += [
            f"{element.tag} {name}" for name in element.attrib if name.lower().startswith("on")
        ]
    return found


def test_source_text_is_never_markup(editor: Editor) -> None:
    hostile = _story_ids(editor)[HOSTILE_TITLE]
    for path in ("/admin/stories", f"/admin/stories/{hostile}"):
        page = editor.get(path).text
        assert (
            "&lt;script&gt;alert('x')&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
        ), path
        assert _executable(page) == [], path
    dry_run = editor.http.post(
        editor.base + "/admin/categories/tech",
        data={CSRF_FIELD: editor.csrf(), "include": "hostile", "action": "dry-run"},
        timeout=10,
    ).text
    assert "Hostile headline" in dry_run
    assert _executable(dry_run) == []


def test_every_page_is_valid_html5(editor: Editor) -> None:
    story = _story_ids(editor)[HOSTILE_TITLE]
    pages = {
        path: editor.get(path).content
        for path in (
            "/admin/",
            "/admin/sources",
            "/admin/categories",
            "/admin/categories/tech",
            "/admin/stories",
            f"/admin/stories/{story}",
            "/admin/corrections",
        )
    }
    pages["dry run"] = editor.http.post(
        editor.base + "/admin/categories/tech",
        data={CSRF_FIELD: editor.csrf(), "include": "hostile", "action": "dry-run"},
        timeout=10,
    ).content
    pages["login"] = requests.get(editor.base + "/admin/login", timeout=10).content
    for name, page in pages.items():
        assert html5_errors(page) == [], name


GARBAGE_FORMS: list[dict[str, str]] = [
    {},
    {"other_story_id": str(2**70), "entry_id": "-1", "category": "x" * 5000, "note": "n" * 900},
    {"other_story_id": "#", "entry_id": "1e9", "url": "http://[::1", "categories": ""},
    {"include": "/(?P<x/\n" * 50, "exclude": "\x00\u202e\uffff", "since": "-5d", "action": "save"},
    {"include": "a", "since": "99999999999999999999d", "action": "dry-run"},
    {"back": "//evil.example/", "id": "../../etc", "title": "<script>", "url": "https://x.e/"},
]


def test_garbage_forms_never_fail_the_server(editor: Editor) -> None:
    """Every admin POST route of the live router, given hostile or broken forms, answers with
    a page or a redirect, never a server error."""
    from fastapi.routing import APIRoute, iter_route_contexts

    ids = _story_ids(editor)
    values = {
        "story_id": str(ids["Ferry runs aground off Paros"]),
        "source_id": "wire",
        "category_id": "tech",
        "override_id": "1",
        "name": "mia",
        "subscriber_id": "partner",
        "delivery_id": "1",
    }
    posts = [
        context.path or ""
        for context in iter_route_contexts(editor.bench.app.routes)
        if isinstance(context.original_route, APIRoute)
        and (context.path or "").startswith("/admin/")
        and "POST" in (context.original_route.methods or ())
        and context.path not in ("/admin/login", "/admin/logout")
    ]
    assert len(posts) >= 10
    csrf = editor.csrf()
    for path in posts:
        url = editor.base + re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        for form in GARBAGE_FORMS:
            response = editor.http.post(
                url, data={CSRF_FIELD: csrf, **form}, allow_redirects=False, timeout=10
            )
            assert response.status_code < 500, (path, form, response.text[:300])
        for body, kind in (
            (b"x" * (300 * 1024), "application/x-www-form-urlencoded"),
            (b"&".join([b"a=1"] * 3000), "application/x-www-form-urlencoded"),
            (b'{"csrf": 1}', "application/json"),
        ):
            response = editor.http.post(
                url, data=body, headers={"Content-Type": kind}, allow_redirects=False, timeout=10
            )
            assert response.status_code in (403, 413, 415), (path, kind, response.status_code)


def test_search_finds_the_story_and_merges_it_from_the_results(editor: Editor) -> None:
    ids = _story_ids(editor)
    rail, ferry = (
        ids["Rail workers announce a national strike"],
        ids["Ferry runs aground off Paros"],
    )
    found = editor.get("/admin/stories", params={"q": "paros"})
    assert found.status_code == 200
    assert 'id="search-results"' in found.text
    assert f'href="/admin/stories/{ferry}"' in found.text
    results = found.text.split('id="search-results"')[1].split("</table>")[0]
    assert "Paros" in results
    assert "Rail workers" not in results
    on_story = editor.get(f"/admin/stories/{rail}", params={"q": "ferry"}).text
    assert f'aria-label="merge story {ferry}"' in on_story
    merged = editor.post(f"/admin/stories/{rail}/merge", other_story_id=str(ferry))
    kept, gone = min(rail, ferry), max(rail, ferry)
    assert f"Merged story #{gone} into #{kept}" in (_flash(editor.follow(merged).text) or "")
    # The ferry's entry now names the story it was merged into.
    again = editor.get("/admin/stories", params={"q": "paros"}).text
    assert (
        f'href="/admin/stories/{kept}"'
        in again.split('id="search-results"')[1].split("</table>")[0]
    )
    refused = editor.get("/admin/stories", params={"q": "x" * 201})
    assert refused.status_code == 422
    assert "q: longer than 200 characters" in refused.text


def test_saved_rules_applied_to_stored_entries_then_undone(editor: Editor) -> None:
    store = editor.bench.store

    def tech_titles() -> list[str]:
        return sorted(s.representative.title for s in store.category_stories("tech", 50))

    before = tech_titles()
    assert "Ferry runs aground off Paros" not in before
    editor.follow(
        editor.post(
            "/admin/categories/tech", include="ferry\n/robots?/", exclude="cook", action="save"
        )
    )
    assert tech_titles() == before  # saved rules take new entries only
    page = editor.follow(
        editor.post("/admin/categories/tech", action="apply", days="7", note="ferries are tech now")
    )
    override = store.overrides()[0]
    assert _flash(page.text) == (
        f"Applied the rules of 'tech' to the last 7 days: 1 added, "
        f"0 removed (correction #{override.id})"
    )
    assert (override.kind, override.created_by, override.note) == (
        "rules",
        "Mia",
        "ferries are tech now",
    )
    assert tech_titles() == sorted([*before, "Ferry runs aground off Paros"])
    log = editor.get("/admin/corrections").text
    assert "apply the rules in 'tech' to stored entries" in log
    editor.follow(
        editor.post(f"/admin/corrections/{override.id}/undo", back="/admin/categories/tech")
    )
    assert tech_titles() == before
    refused = editor.follow(editor.post("/admin/categories/tech", action="apply", days="0"))
    assert _flash(refused.text) == "Refused (days): days must be from 1 to 366, not 0"
