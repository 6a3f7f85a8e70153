"""Editors' input at every door (issue 16, items 3 and 4): the JSON API, the admin forms and
``aggregator sources add`` refuse what the catalog refuses (a NUL in a URL, control characters,
regexes the linear-time engine cannot run), naming the field, and change no file; the dry run
runs off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.editorial import dryrun, operations
from aggregator.store import Store
from aggregator.web.auth import CSRF_FIELD
from tests.support.browser import TOKEN, Workbench, workbench
from tests.support.feeds import aggregator, rss, write_config
from tests.support.webserver import serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Editor": "tester"}
FILES = ("sources.toml", "categories.toml")


@pytest.fixture
def served(
    store: Store, feed_server: FeedServer, tmp_path: Path
) -> Iterator[tuple[str, Workbench]]:
    with workbench(store, feed_server, tmp_path / "config") as bench, serve_app(bench.app) as base:
        yield base, bench


def _files(bench: Workbench) -> dict[str, str]:
    return {name: (bench.config / name).read_text(encoding="utf-8") for name in FILES}


def _login(http: requests.Session, base: str) -> None:
    """Log ``http`` in to the admin pages as the editor Mia."""
    response = http.post(
        f"{base}/admin/login",
        data={"token": TOKEN, "editor": "Mia"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303


def _csrf(http: requests.Session, url: str) -> str:
    """The CSRF token of the form on the page at ``url``."""
    page = http.get(url, timeout=10).text
    return page.split(f'name="{CSRF_FIELD}" value="', 1)[1].split('"', 1)[0]


def _api(base: str, method: str, path: str, body: Any) -> requests.Response:
    return requests.request(method, base + path, json=body, headers=AUTH, timeout=30)


BAD_API_INPUT = [
    # The reproduction: 201 and a sources.toml that no longer loaded.
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example/f\u0000.xml", "categories": ["news"]},
        "url",
        "U+0000",
    ),
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example/a b", "categories": ["news"]},
        "url",
        "space",
    ),
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example:70000/f", "categories": ["news"]},
        "url",
        "valid URL",
    ),
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example/f", "categories": ["news"], "title": "New\u001b]0;pwned\u0007"},
        "title",
        "U+001B",
    ),
    (
        "PUT",
        "/api/categories/tech/rules",
        {"include": ["ok", r"/(a)\1/"]},
        "include[1]",
        "backreferences",
    ),
    (
        "PUT",
        "/api/categories/tech/rules",
        {"include": [], "exclude": ["/(?<!no )robot/"]},
        "exclude[0]",
        "lookbehind",
    ),
    ("PUT", "/api/categories/tech/rules", {"include": ["robot\u0000"]}, "include[0]", "U+0000"),
    (
        "POST",
        "/api/categories/tech/dry-run",
        {"include": ["/robot(?=s)/"], "since": "7d"},
        "include[0]",
        "lookahead",
    ),
]


def test_the_api_refuses_what_the_catalog_refuses(served: tuple[str, Workbench]) -> None:
    base, bench = served
    before = _files(bench)
    for method, path, body, field, says in BAD_API_INPUT:
        answer = _api(base, method, path, body)
        assert answer.status_code == 422, (path, body, answer.text)
        assert answer.json()["field"] == field, answer.json()
        assert says in answer.json()["detail"], answer.json()
        if "categories/tech" in path:
            assert "'tech'" in answer.json()["detail"]  # the category is named
    assert _files(bench) == before
    assert bench.reloads == 0


def test_a_catastrophic_regex_is_saved_and_runs_in_linear_time(
    served: tuple[str, Workbench],
) -> None:
    base, bench = served
    dry = _api(
        base, "POST", "/api/categories/tech/dry-run", {"include": ["/(.+)+#$/"], "since": "7d"}
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["examined"] >= 3
    saved = _api(base, "PUT", "/api/categories/tech/rules", {"include": ["/(.+)+#$/"]})
    assert saved.status_code == 200, saved.text
    assert bench.reloads == 1  # applied by the running service, whose polls then use it


def test_the_dry_run_runs_off_the_event_loop(
    served: tuple[str, Workbench], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _bench = served
    on_loop: list[bool] = []

    def watched(*args: Any, **kwargs: Any) -> dryrun.DryRun:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return dryrun.rules_dry_run(*args, **kwargs)

    monkeypatch.setattr(operations, "rules_dry_run", watched)
    assert (
        _api(
            base, "POST", "/api/categories/tech/dry-run", {"include": ["ferry"], "since": "7d"}
        ).status_code
        == 200
    )
    with requests.Session() as http:
        _login(http, base)
        token = _csrf(http, f"{base}/admin/categories/tech")
        page = http.post(
            f"{base}/admin/categories/tech",
            timeout=30,
            data={
                CSRF_FIELD: token,
                "include": "ferry",
                "exclude": "",
                "since": "7d",
                "action": "dry-run",
            },
        )
        assert page.status_code == 200
    assert on_loop == [False, False]


def test_the_admin_forms_refuse_what_the_catalog_refuses(served: tuple[str, Workbench]) -> None:
    base, bench = served
    before = _files(bench)
    with requests.Session() as http:
        _login(http, base)

        def csrf() -> str:
            return _csrf(http, f"{base}/admin/")

        def flash(response: requests.Response) -> str:
            assert response.status_code == 303, response.text
            page = http.get(base + response.headers["location"], timeout=10).text
            return page.split('<p class="flash" role="status">', 1)[1].split("</p>", 1)[0]

        for fields, field in (
            ({"url": "https://x.example/f\x00", "categories": "news"}, "url"),
            ({"url": "https://x.example/f", "categories": "news", "title": "a\x1b[2Jb"}, "title"),
        ):
            answer = http.post(
                f"{base}/admin/sources/add",
                data={CSRF_FIELD: csrf(), **fields},
                allow_redirects=False,
                timeout=10,
            )
            assert flash(answer).startswith(f"Refused ({field})")
        saved = http.post(
            f"{base}/admin/categories/tech",
            allow_redirects=False,
            timeout=10,
            data={
                CSRF_FIELD: csrf(),
                "include": "robot\n/(x)\\1/",
                "exclude": "",
                "action": "save",
            },
        )
        assert flash(saved).startswith("Refused (include[1])")
        dry = http.post(
            f"{base}/admin/categories/tech",
            timeout=10,
            data={
                CSRF_FIELD: csrf(),
                "include": "/(?=robot)r/",
                "exclude": "",
                "since": "7d",
                "action": "dry-run",
            },
        )
        assert dry.status_code == 422
        assert "include[0]: bad rule" in dry.text
        assert "lookahead" in dry.text
    assert _files(bench) == before


SOURCES = (
    '[[source]]\nid = "first"\nurl = "https://first.example/feed.xml"\ncategories = ["news"]\n'
)
CATEGORIES = '[[category]]\nid = "news"\ntitle = "News"\n'


def test_sources_add_refuses_bad_input_and_cleans_the_publishers_title(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    config = write_config(tmp_path / "config", SOURCES, CATEGORIES)
    before = (config / "sources.toml").read_text(encoding="utf-8")
    spaced = aggregator(
        "sources",
        "add",
        feed_server.url("/a feed.xml"),
        "--category",
        "news",
        "--config",
        str(config),
        check=False,
    )
    assert spaced.returncode == 3  # a configuration error (README: exit codes)
    assert "key='URL'" in spaced.stderr
    assert "space" in spaced.stderr
    feed_server.set(
        "/feed.xml",
        Resource(
            body=rss(
                "Hostile\x1b]0;pwned\x07 feed",
                [{"guid": "a", "title": "A", "link": "https://x.example/a"}],
            )
        ),
    )
    titled = aggregator(
        "sources",
        "add",
        feed_server.url("/feed.xml"),
        "--category",
        "news",
        "--title",
        "Typed\x07title",
        "--config",
        str(config),
        check=False,
    )
    assert titled.returncode == 3
    assert "key='title'" in titled.stderr
    assert "U+0007" in titled.stderr
    assert (config / "sources.toml").read_text(encoding="utf-8") == before
    aggregator(
        "sources",
        "add",
        feed_server.url("/feed.xml"),
        "--category",
        "news",
        "--config",
        str(config),
    )
    text = (config / "sources.toml").read_text(encoding="utf-8")
    assert "\\u001b" not in text
    assert "\\u0007" not in text
    assert aggregator("check", "--config", str(config)).returncode == 0
