"""``GET /api/search`` over a real server and store (SQLite and PostgreSQL): every language by a
word of its title, validators and 304, cursor paging with ``Link: rel="next"``, a bad query
refused naming ``q``, and stories hidden everywhere searched only with the admin token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests

from aggregator.store import Store
from aggregator.web import create_app
from tests.integration.test_outputs import BASE, Newsroom, outputs_for
from tests.integration.test_search import TITLES
from tests.support.builders import NOW, entry
from tests.support.webserver import serve_app

TOKEN = "search-test-token-0123456789"


@dataclass
class Api:
    base: str
    store: Store
    http: requests.Session

    def get(self, path: str, **headers: str) -> requests.Response:
        return self.http.get(self.base + path, headers=headers, timeout=10)


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    room = Newsroom(store)
    room.poll(
        "en-a",
        *(
            entry(
                key,
                title=title,
                language=lang,
                text=f"{title}.",
                published_at=NOW - timedelta(hours=i),
            )
            for i, (key, lang, title, _) in enumerate(TITLES)
        ),
    )
    outputs = outputs_for(store, feed_size=50)
    app = create_app(store=store, outputs=outputs, admin_token=TOKEN)
    with serve_app(app) as base, requests.Session() as http:
        yield Api(base, store, http)


@pytest.mark.parametrize(("key", "word"), [(k, w) for k, _, _, w in TITLES])
def test_each_language_is_found_by_a_word_of_its_title(api: Api, key: str, word: str) -> None:
    response = api.http.get(api.base + "/api/search", params={"q": word}, timeout=10)
    assert response.status_code == 200, response.text
    hits = response.json()
    assert [h["url"].rsplit("/", 1)[-1] for h in hits] == [key]
    assert hits[0]["story_id"] is not None
    assert hits[0]["story_title"] == hits[0]["title"]


def test_search_has_validators_and_pages_with_link_next(api: Api) -> None:
    first = api.get("/api/search?q=a&limit=2")
    assert first.status_code == 200
    again = api.get("/api/search?q=a&limit=2", **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    seen = []
    url: str | None = api.base + "/api/search?q=a&limit=2"
    while url is not None:
        page = api.http.get(url, timeout=10)
        assert page.status_code == 200
        seen += [h["entry_id"] for h in page.json()]
        following = page.links.get("next")
        url = following["url"].replace(BASE, api.base) if following else None
    every = api.get("/api/search?q=a&limit=100").json()
    assert seen == [h["entry_id"] for h in every]
    assert len(seen) > 2


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("q=", "at least one word"),
        ("q=" + "+".join("abcdefghi"), "more than 8"),
    ],
)
def test_a_bad_query_is_refused_naming_q(api: Api, query: str, problem: str) -> None:
    response = api.get("/api/search?" + query)
    assert response.status_code == 422
    assert response.json()["field"] == "q"
    assert problem in response.json()["detail"]
    assert api.get("/api/search").status_code == 422
    assert api.get("/api/search?q=a&after=nonsense").status_code == 422


def test_a_story_hidden_everywhere_is_searched_with_the_token_only(api: Api) -> None:
    [hit] = api.get("/api/search?q=Госдума").json()
    api.store.hide_story(hit["story_id"], None, by="ed", now=NOW)
    assert api.get("/api/search?q=Госдума").json() == []
    shown = api.get("/api/search?q=Госдума", Authorization=f"Bearer {TOKEN}").json()
    assert [h["entry_id"] for h in shown] == [hit["entry_id"]]
