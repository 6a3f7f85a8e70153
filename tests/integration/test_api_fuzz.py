"""The editors' JSON API: one editing round through it (files, store and running configuration
change as answered), bad requests answered 4xx naming the field, and a bounded schemathesis run
over every operation of the OpenAPI schema, with the token, that finds no 500 (issue 6,
acceptance 4).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from aggregator.demo.feedserver import FeedServer
from aggregator.store import Store, open_store, upgrade
from tests.support.browser import HOSTILE_TITLE, TOKEN, Workbench, workbench
from tests.support.webserver import serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Editor": "fuzzer"}
# Examples per operation: enough to reach every validation branch, bounded so the whole run
# stays within seconds (about 20 operations).
FUZZ_EXAMPLES = 15


@pytest.fixture
def served(
    store: Store, feed_server: FeedServer, tmp_path: Path
) -> Iterator[tuple[str, Workbench]]:
    with workbench(store, feed_server, tmp_path / "config") as bench, serve_app(bench.app) as base:
        yield base, bench


class Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def __call__(self, method: str, path: str, body: Any = None, *, status: int = 200) -> Any:
        response = requests.request(method, self.base + path, json=body, headers=AUTH, timeout=10)
        assert response.status_code == status, (method, path, response.text)
        return response.json()


def test_an_editing_round_through_the_api(served: tuple[str, Workbench]) -> None:
    base, bench = served
    api = Api(base)
    assert api("GET", "/api/categories/tech")["include"] == ["robot"]
    added = api(
        "POST",
        "/api/sources",
        {"url": "https://feeds.example/new.xml", "categories": ["news"], "title": "New feed"},
        status=201,
    )
    assert added["applied"] is True
    assert {s["id"] for s in api("GET", "/api/sources")} >= {"new-feed", "wire"}
    api("POST", "/api/sources/new-feed/pause")
    assert [s["state"] for s in api("GET", "/api/sources") if s["id"] == "new-feed"] == ["paused"]
    api("DELETE", "/api/sources/new-feed")
    assert "new-feed" not in (bench.config / "sources.toml").read_text(encoding="utf-8")

    dry = api("POST", "/api/categories/tech/dry-run", {"include": ["ferry"], "since": "7d"})
    assert [e["title"] for e in dry["added"]] == ["Ferry runs aground off Paros"]
    # Only the wire feeds tech: the journal's robot story was never a candidate.
    assert [e["title"] for e in dry["removed"]] == ["Robot wins the world chess final"]
    assert dry["examined"] >= 3
    assert "ferry" not in (bench.config / "categories.toml").read_text(encoding="utf-8")
    api("PUT", "/api/categories/tech/rules", {"include": ["ferry", "/robots?/"], "exclude": []})
    assert api("GET", "/api/categories/tech")["include"] == ["ferry", "/robots?/"]

    ids = bench.story_ids()
    rail, ferry = (
        ids["Rail workers announce a national strike"],
        ids["Ferry runs aground off Paros"],
    )
    merged = api(
        "POST", f"/api/stories/{rail}/merge", {"other_story_id": ferry, "note": "one event"}
    )
    kept = merged["story_id"]
    assert kept == min(rail, ferry)
    story = api("GET", f"/api/stories/{kept}")
    assert len(story["entries"]) == 2
    assert all(e["explanation"] for e in story["entries"])
    assert [c["kind"] for c in story["corrections"]] == ["merge"]
    moved = max(e["entry_id"] for e in story["entries"])
    split = api("POST", f"/api/stories/{kept}/split", {"entry_id": moved})
    assert len(api("GET", f"/api/stories/{split['story_id']}")["entries"]) == 1
    api("POST", f"/api/stories/{kept}/pin", {"category": "news"})
    api("POST", f"/api/stories/{kept}/hide", {"category": "tech"})
    story = api("GET", f"/api/stories/{kept}")
    assert (story["pinned_in"], story["hidden_in"]) == (["news"], ["tech"])
    log = api("GET", "/api/corrections")
    assert [c["kind"] for c in log] == ["merge", "split", "category_pin", "hide"]
    assert {c["created_by"] for c in log} == {"fuzzer"}
    for correction in reversed(log):  # newest first, as an editor retraces steps
        api("POST", f"/api/corrections/{correction['id']}/undo")
    assert api("GET", "/api/corrections") == []
    assert len(api("GET", "/api/corrections?include_undone=true")) == 4
    assert len(api("GET", f"/api/stories/{kept}")["entries"]) == 1  # the merge undone too


# method, path, JSON body, expected status, the field the answer names
BAD_REQUESTS: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
    ("POST", "/api/sources", {"url": "ftp://x.example/f", "categories": ["news"]}, 422, "url"),
    ("POST", "/api/sources", {"url": "http://10.0.0.1/f", "categories": ["news"]}, 422, "url"),
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example/f", "categories": ["nope"]},
        422,
        "categories",
    ),
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example/f", "categories": ["news"], "id": "Bad Id"},
        422,
        "id",
    ),
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example/f", "categories": ["news"], "interval": "1s"},
        422,
        "interval",
    ),
    (
        "POST",
        "/api/sources",
        {"url": "https://x.example/f", "categories": ["news"], "id": "wire"},
        409,
        "id",
    ),
    ("POST", "/api/sources/nope/pause", None, 404, "source_id"),
    ("DELETE", "/api/sources/nope", None, 404, "source_id"),
    ("PUT", "/api/categories/tech/rules", {"include": ["ok", "/[/"]}, 422, "include[1]"),
    ("PUT", "/api/categories/nope/rules", {"include": []}, 404, "category_id"),
    ("POST", "/api/categories/tech/dry-run", {"since": "forever"}, 422, "since"),
    ("POST", "/api/categories/tech/dry-run", {"since": "999d"}, 422, "since"),
    ("POST", "/api/categories/tech/dry-run", {"since": "99999999999999d"}, 422, "since"),
    ("POST", "/api/sources", {"url": "http://[::1", "categories": ["news"]}, 422, "url"),
    ("POST", "/api/stories/999999/merge", {"other_story_id": 1}, 404, "story_id"),
    ("POST", "/api/stories/1/merge", {"other_story_id": 1}, 422, "other_story_id"),
    ("POST", "/api/stories/1/split", {"entry_id": 999999}, 422, "entry_id"),
    ("POST", "/api/stories/1/pin", {"category": "nope"}, 422, "category"),
    ("POST", "/api/corrections/999999/undo", None, 404, "override_id"),
    ("GET", "/api/stories/999999", None, 404, "story_id"),
    ("GET", "/api/categories/nope", None, 404, "category_id"),
]


def test_bad_requests_name_the_field_and_change_nothing(served: tuple[str, Workbench]) -> None:
    base, bench = served
    files = ("sources.toml", "categories.toml")
    before = {name: (bench.config / name).read_text(encoding="utf-8") for name in files}
    for method, path, body, status, at_fault in BAD_REQUESTS:
        answer = Api(base)(method, path, body, status=status)
        assert answer["field"] == at_fault, (method, path, answer)
        assert answer["detail"]
    assert before == {name: (bench.config / name).read_text(encoding="utf-8") for name in files}
    assert bench.store.overrides(include_undone=True) == []
    assert bench.reloads == 0


def test_malformed_bodies_are_422_naming_the_field(served: tuple[str, Workbench]) -> None:
    base, _bench = served
    for body, where in (
        ({"other_story_id": "x"}, "other_story_id"),
        ({"other_story_id": 2**40}, "other_story_id"),
        ({"other_story_id": 2, "extra": 1}, "extra"),
    ):
        response = requests.post(f"{base}/api/stories/1/merge", json=body, headers=AUTH, timeout=10)
        assert response.status_code == 422
        assert where in {str(part) for error in response.json()["detail"] for part in error["loc"]}
    broken = requests.post(
        f"{base}/api/stories/1/merge",
        data=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=10,
    )
    assert broken.status_code == 422
    huge = requests.post(
        f"{base}/api/stories/{2**40}/merge", json={"other_story_id": 1}, headers=AUTH, timeout=10
    )
    assert huge.status_code == 422


# -- the fuzzer ----------------------------------------------------------------------------


@dataclass
class FuzzLog:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def fuzz(operation: Any, mode: GenerationMode, http: requests.Session, log: FuzzLog) -> None:
    """``FUZZ_EXAMPLES`` requests generated for ``operation`` in ``mode``, each sent with the
    token; every answer's status is counted and any 5xx kept with the request that caused it."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        response = case.call(session=http, headers=AUTH, timeout=10)
        log.statuses[(mode.value, response.status_code)] += 1
        if response.status_code >= 500:
            log.failures.append(
                f"{response.status_code} {case.as_curl_command()}\n{response.text[:500]}"
            )

    try:
        call()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (it takes no input).
        assert mode is GenerationMode.NEGATIVE, operation.label
        log.skipped.append(operation.label)


def test_the_fuzzer_finds_no_server_error(tmp_path: Path, feed_server: FeedServer) -> None:
    """Every operation of the live schema gets schema-valid and schema-violating requests
    (schemathesis's generators driven by hypothesis, derandomized so a failure repeats), with
    the token so they reach the handlers; none may answer 5xx."""
    store = open_store(f"sqlite:///{tmp_path / 'fuzz.db'}")
    upgrade(store.engine)
    log = FuzzLog()
    try:
        with (
            workbench(store, feed_server, tmp_path / "config") as bench,
            serve_app(bench.app) as base,
            requests.Session() as http,
        ):
            assert HOSTILE_TITLE in bench.story_ids()
            schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
            operations = []
            for result in schema.get_all_operations():
                assert isinstance(result, Ok), result.err()
                operations.append(result.ok())
            assert len(operations) >= 20
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz(operation, mode, http, log)
    finally:
        store.close()
    assert log.failures == []
    # The requests reached the handlers: accepted ones and refused ones; only the negative
    # mode (which also sends broken Authorization headers) meets the token guard.
    assert log.statuses[("positive", 200)] > 0, log.statuses
    assert log.statuses[("negative", 422)] > 0, log.statuses
    assert log.statuses[("positive", 401)] == 0, log.statuses
    assert len(log.skipped) < len(operations) // 2, log.skipped
