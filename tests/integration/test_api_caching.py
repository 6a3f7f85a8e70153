"""The JSON API's public reads cache and page like the feeds: strong ETags, Last-Modified,
Cache-Control and 304 on every GET, and cursor paging (``after``, ``limit``, ``since``) with a
``Link: rel="next"`` header on every list, over a real store and server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests

from aggregator.store import Store
from aggregator.web import create_app
from tests.integration.test_outputs import BASE, Newsroom, outputs_for
from tests.support.builders import NOW, entry
from tests.support.webserver import serve_app


@dataclass
class Api:
    base: str
    room: Newsroom
    http: requests.Session

    def get(self, path: str, **headers: str) -> requests.Response:
        return self.http.get(self.base + path, headers=headers, timeout=10)

    def follow(self, path: str) -> tuple[list[dict[str, object]], int]:
        """Every item of a list, page after page; and how many pages it took."""
        items: list[dict[str, object]] = []
        pages = 0
        url: str | None = self.base + path
        while url is not None:
            response = self.http.get(url, timeout=10)
            assert response.status_code == 200, response.text
            items += response.json()
            pages += 1
            following = response.links.get("next")
            # The link is on the public base URL; the test server listens elsewhere.
            url = following["url"].replace(BASE, self.base) if following else None
        return items, pages


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    room = Newsroom(store)
    for n in range(5):
        room.story(f"s{n}")
    outputs = outputs_for(store, feed_size=50)
    with serve_app(create_app(store=store, outputs=outputs)) as base, requests.Session() as http:
        yield Api(base, room, http)


def _public_gets(api: Api) -> list[str]:
    story_id = api.get("/api/categories/news/stories").json()[0]["id"]
    return [
        "/api/openapi.json",
        "/api/categories",
        "/api/categories/news",
        "/api/sources",
        "/api/categories/news/stories",
        f"/api/stories/{story_id}/evidence",
        f"/api/stories/{story_id}",
    ]


def test_every_public_get_has_validators_and_answers_304(api: Api) -> None:
    for path in _public_gets(api):
        response = api.get(path)
        assert response.status_code == 200, path
        etag = response.headers["ETag"]
        assert etag.startswith('"'), path  # strong: no W/ prefix
        assert response.headers["Cache-Control"].startswith("public"), path
        last_modified = response.headers["Last-Modified"]
        assert response.headers["Content-Type"] == "application/json", path
        again = api.get(path)
        assert again.headers["ETag"] == etag, path  # same bytes, same validator
        assert again.headers["Last-Modified"] == last_modified, path
        not_modified = api.get(path, **{"If-None-Match": etag})
        assert (not_modified.status_code, not_modified.content) == (304, b""), path
        assert not_modified.headers["ETag"] == etag, path
        by_date = api.get(path, **{"If-Modified-Since": last_modified})
        assert by_date.status_code == 304, path
        assert api.get(path, **{"If-None-Match": '"other"'}).status_code == 200, path


def test_a_change_gives_a_new_etag_and_a_full_answer(api: Api) -> None:
    first = api.get("/api/categories/news/stories")
    api.room.story("later")
    changed = api.get("/api/categories/news/stories", **{"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert len(changed.json()) == len(first.json()) + 1


def test_story_pages_follow_link_next_to_the_same_list(api: Api) -> None:
    whole = api.get("/api/categories/news/stories?limit=500").json()
    assert "Link" not in api.get("/api/categories/news/stories?limit=500").headers
    paged, pages = api.follow("/api/categories/news/stories?limit=2")
    assert [s["id"] for s in paged] == [s["id"] for s in whole]
    assert len(whole) == 5
    assert pages == 3


def test_since_returns_new_and_changed_stories_only(api: Api) -> None:
    before = api.get("/api/categories/news/stories").json()
    mark = api.room.clock + timedelta(minutes=30)
    # After the mark: a new story, and a French version joining the oldest story.
    api.room.story("fresh")
    oldest_url = before[-1]["url"]
    api.room.poll(
        "fr-a",
        entry(
            "s0-fr",
            url=oldest_url,
            language="fr",
            title="Version",
            published_at=NOW,
            updated_at=NOW,
        ),
    )
    since = mark.isoformat().replace("+00:00", "Z")
    changed, _ = api.follow(f"/api/categories/news/stories?limit=1&since={since}")
    titles = {s["title"] for s in changed}
    assert titles == {"Title fresh", before[-1]["title"]}


def test_sources_and_categories_page_by_id(api: Api) -> None:
    every = api.get("/api/sources?limit=500").json()
    paged, pages = api.follow("/api/sources?limit=1")
    assert [s["id"] for s in paged] == sorted(s["id"] for s in every)
    assert pages == len(every)
    categories, _ = api.follow("/api/categories?limit=1")
    assert [c["id"] for c in categories] == ["news"]
    checked = [s for s in every if s["last_checked_at"] is not None]
    latest = max(s["last_checked_at"] for s in checked)
    recent = api.get(f"/api/sources?since={latest.replace('+00:00', 'Z')}").json()
    assert {s["id"] for s in recent} == {s["id"] for s in checked if s["last_checked_at"] == latest}


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("after=not-a-cursor", "after"),
        ("after=WyJ4Il0", "after"),  # a cursor of the wrong kind (an id list's)
        ("since=2026-01-01T00:00:00", "since"),  # no time zone
    ],
)
def test_bad_paging_input_is_refused_naming_it(api: Api, query: str, named: str) -> None:
    response = api.get(f"/api/categories/news/stories?{query}")
    assert response.status_code == 422
    assert named in response.text


def test_the_client_loop_of_the_downstream_guide_works(store: Store) -> None:
    """The Python example in docs/downstream.md, run as written against a live server."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "downstream.md").read_text(
        encoding="utf-8"
    )
    (code,) = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    room = Newsroom(store)
    for n in range(5):
        room.story(f"s{n}")
    outputs = outputs_for(store, feed_size=50)
    saved: dict[int, str] = {}
    namespace: dict[str, object] = {
        "save": lambda story: saved.update({story["id"]: story["title"]})
    }
    exec(compile(code, "downstream.md", "exec"), namespace)
    sync = namespace["sync"]
    assert callable(sync)
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        outputs.base_url = base  # the Link headers must point at this server
        first = sync(base, "news", None)
        assert sorted(saved.values()) == [f"Title s{n}" for n in range(5)]
        saved.clear()
        # The test's store clock is fixed; the next poll happens after the walk started.
        room.clock = max(room.clock, first)
        room.story("s5")
        sync(base, "news", first)
        assert list(saved.values()) == ["Title s5"]
