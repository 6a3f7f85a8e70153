"""Webhook subscribers, the delivery log and source-health alerts through the JSON API and the
/admin/ pages of a real server: refusals name the field, secrets never come back, file
subscribers are the file's, and an alert shows on the overview as it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from aggregator.catalog import load_catalog
from aggregator.clock import utc_now
from aggregator.delivery.detect import Detector
from aggregator.delivery.dispatcher import sync_subscribers
from aggregator.demo.feedserver import FeedServer
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.store.webhooks import NewEvent
from aggregator.types import DeliveryState, EventKind
from aggregator.web.auth import CSRF_FIELD
from tests.support.browser import TOKEN, Workbench, workbench
from tests.support.outputchecks import html5_errors
from tests.support.webserver import serve_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "a-long-enough-secret-1234"
PUBLIC = "https://hooks.example/in"


@pytest.fixture
def served(
    sqlite_store: Store, feed_server: FeedServer, tmp_path: Path
) -> Iterator[tuple[str, Workbench]]:
    with (
        workbench(sqlite_store, feed_server, tmp_path / "config") as bench,
        serve_app(bench.app) as base,
    ):
        yield base, bench


def _api(
    base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.request(
        method, base + path, json=body, headers=AUTH if headers is None else headers, timeout=30
    )


def _subscriber(**changes: Any) -> dict[str, Any]:
    return {"id": "partner", "url": PUBLIC, "secret": SECRET, **changes}


def test_subscribers_through_the_api(served: tuple[str, Workbench]) -> None:
    base, bench = served
    assert _api(base, "GET", "/api/webhooks", headers={}).status_code == 401
    assert _api(base, "POST", "/api/webhooks", _subscriber(), headers={}).status_code == 401

    refused = _api(base, "POST", "/api/webhooks", _subscriber(url="http://127.0.0.1:9/in"))
    assert refused.status_code == 422
    assert refused.json()["field"] == "url"
    assert "loopback" in refused.json()["detail"]
    assert (
        _api(base, "POST", "/api/webhooks", _subscriber(secret="short")).json()["field"] == "secret"
    )
    assert (
        _api(base, "POST", "/api/webhooks", _subscriber(categories=["nope"])).json()["field"]
        == "categories"
    )
    # An environment variable is the file's way to give a secret, never the API's.
    assert (
        _api(
            base, "POST", "/api/webhooks", _subscriber(secret_env="AGGREGATOR_ADMIN_TOKEN")
        ).status_code
        == 422
    )
    assert bench.store.webhooks.subscribers() == []

    assert (
        _api(base, "POST", "/api/webhooks", _subscriber(events=["story.published"])).status_code
        == 201
    )
    assert _api(base, "POST", "/api/webhooks", _subscriber()).status_code == 409
    listed = _api(base, "GET", "/api/webhooks")
    assert listed.status_code == 200
    assert SECRET not in listed.text
    [partner] = listed.json()
    assert partner["events"] == ["story.published"]
    assert (partner["origin"], partner["secret_from"]) == ("api", "stored")

    assert _api(base, "DELETE", "/api/webhooks/partner").status_code == 200
    assert _api(base, "DELETE", "/api/webhooks/partner").status_code == 404
    assert _api(base, "GET", "/api/webhooks").json() == []


def test_a_file_subscriber_is_removed_in_the_file_only(
    served: tuple[str, Workbench], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, bench = served
    monkeypatch.setenv("PARTNER_SECRET", SECRET)
    (bench.config / "webhooks.toml").write_text(
        f'[[subscriber]]\nid = "partner"\nurl = "{PUBLIC}"\nsecret_env = "PARTNER_SECRET"\n',
        encoding="utf-8",
    )
    settings = Settings.from_env({"AGGREGATOR_CONFIG": str(bench.config)})
    sync_subscribers(settings, bench.store, load_catalog(bench.config))
    [partner] = _api(base, "GET", "/api/webhooks").json()
    assert (partner["origin"], partner["secret_from"]) == ("file", "env:PARTNER_SECRET")
    refused = _api(base, "DELETE", "/api/webhooks/partner")
    assert refused.status_code == 409
    assert "webhooks.toml" in refused.json()["detail"]


def test_delivery_log_and_send_again(served: tuple[str, Workbench]) -> None:
    base, bench = served
    assert _api(base, "POST", "/api/webhooks", _subscriber()).status_code == 201
    hooks = bench.store.webhooks
    hooks.record(
        [
            NewEvent(
                key="story.published:x:news",
                kind=EventKind.STORY_PUBLISHED,
                payload={"story": {"uid": "x"}},
                categories=("news",),
            )
        ],
        {},
        utc_now(),
    )
    [pending] = _api(base, "GET", "/api/webhooks/deliveries").json()
    assert (pending["state"], pending["event_id"]) == ("pending", "story.published:x:news")
    assert (
        _api(base, "POST", f"/api/webhooks/deliveries/{pending['id']}/retry").status_code == 404
    )  # only failed ones are sent again
    hooks.finish(
        pending["id"], now=utc_now(), delivered=False, status=500, error="HTTP 500", retry_at=None
    )
    [failed] = _api(base, "GET", "/api/webhooks/deliveries?state=failed").json()
    assert (failed["attempts"], failed["last_status"]) == (1, 500)
    assert _api(base, "POST", f"/api/webhooks/deliveries/{failed['id']}/retry").status_code == 200
    assert hooks.deliveries()[0].state == DeliveryState.PENDING
    assert _api(base, "GET", "/api/webhooks/deliveries?state=bogus").status_code == 422


def test_source_health_alert_on_the_api_and_the_admin_overview(
    served: tuple[str, Workbench],
) -> None:
    base, bench = served
    source_id = bench.store.sources()[0].id
    detector = Detector(bench.store.webhooks, health_every=timedelta(0))
    detector.run(utc_now())
    assert _api(base, "GET", "/api/alerts").json() == []
    for _ in range(3):
        bench.store.save_error(
            source_id,
            message="HTTP 503",
            kind="http",
            status=503,
            now=utc_now(),
            next_check_at=utc_now() + timedelta(minutes=5),
        )
    detector.run(utc_now())
    [alert] = _api(base, "GET", "/api/alerts").json()
    assert (alert["source_id"], alert["health"]) == (source_id, "failing")
    assert "3 failed polls in a row" in alert["detail"]

    http = requests.Session()
    assert (
        http.post(
            f"{base}/admin/login",
            data={"token": TOKEN, "editor": "Mia"},
            allow_redirects=False,
            timeout=10,
        ).status_code
        == 303
    )
    overview = http.get(f"{base}/admin/", timeout=10).text
    assert "Source-health alerts" in overview
    assert f"{source_id}</a>: <strong>failing</strong>" in overview


def test_admin_webhooks_page_adds_lists_and_removes(served: tuple[str, Workbench]) -> None:
    base, bench = served
    http = requests.Session()
    assert (
        http.post(
            f"{base}/admin/login",
            data={"token": TOKEN, "editor": "Mia"},
            allow_redirects=False,
            timeout=10,
        ).status_code
        == 303
    )
    page = http.get(f"{base}/admin/webhooks", timeout=10).text
    csrf = page.split(f'name="{CSRF_FIELD}" value="', 1)[1].split('"', 1)[0]
    refused = http.post(
        f"{base}/admin/webhooks/add",
        data={CSRF_FIELD: csrf, "id": "partner", "url": "http://10.0.0.1/in", "secret": SECRET},
        timeout=10,
    )
    assert "Refused (url)" in refused.text
    added = http.post(
        f"{base}/admin/webhooks/add",
        data={
            CSRF_FIELD: csrf,
            "id": "partner",
            "url": PUBLIC,
            "secret": SECRET,
            "languages": "en, fr",
            "events": ["source.health"],
        },
        timeout=10,
    )
    assert "Added webhook subscriber partner" in added.text
    assert 'id="subscriber-partner"' in added.text
    assert SECRET not in added.text
    bench.store.webhooks.record(
        [
            NewEvent(
                key="source.health:wire:1",
                kind=EventKind.SOURCE_HEALTH,
                payload={"health": "failing"},
                languages=("en",),
            )
        ],
        {},
        utc_now(),
    )
    [delivery] = bench.store.webhooks.deliveries()
    bench.store.webhooks.finish(
        delivery.id,
        now=utc_now(),
        delivered=False,
        status=None,
        error="<b>refused</b>",
        retry_at=None,
    )
    shown = http.get(f"{base}/admin/webhooks", timeout=10)
    assert html5_errors(shown.content) == []
    assert "&lt;b&gt;refused&lt;/b&gt;" in shown.text
    retried = http.post(
        f"{base}/admin/webhooks/deliveries/{delivery.id}/retry", data={CSRF_FIELD: csrf}, timeout=10
    )
    assert f"Delivery {delivery.id} is queued again" in retried.text
    [partner] = bench.store.webhooks.subscribers()
    assert (partner.languages, partner.events) == (("en", "fr"), ("source.health",))
    removed = http.post(
        f"{base}/admin/webhooks/partner/remove", data={CSRF_FIELD: csrf}, timeout=10
    )
    assert "Removed webhook subscriber partner" in removed.text
    assert bench.store.webhooks.subscribers() == []
