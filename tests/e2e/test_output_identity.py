"""Every output byte for byte as before: a fixed set of feeds polled, clustered and published
with the clock frozen, compared with the golden files in ``tests/data/golden/outputs/``.

The golden files were written by the code before the per-feed CPU work (issue 19) from the same
input; a change to what the poll stores or how it is published shows here as a changed file.
``UPDATE_GOLDEN=1`` rewrites them (only for a deliberate change of output).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from aggregator.catalog import Catalog, load_catalog
from aggregator.clustering.stage import ClusteringStage
from aggregator.polling.fetch import Fetcher
from aggregator.polling.poller import Refresher
from aggregator.publishing.outputs import Outputs
from aggregator.store import Store, open_store
from aggregator.store.migrate import upgrade
from aggregator.types import FetchOptions, FetchResult
from aggregator.web import create_app
from tests.support.bench import bench_module
from tests.support.feeds import atom, rss, toml_tables, write_config
from tests.support.shared import require_shared
from tests.support.webserver import serve_app

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "outputs"
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
BASE = "https://agg.example"
HOST = "https://feeds.golden.test"
# Real documents of several shapes (RSS 2.0 and 1.0, Atom, podcasts, relative links, encodings,
# languages), read from the shared corpus.
CORPUS = (
    "rss-parser-inputs/guardian.rss",
    "rss-parser-inputs/feedburner.atom",
    "rss-parser-inputs/giantbomb-podcast.rss",
    "rss-parser-inputs/content-encoded.rss",
    "rss-parser-inputs/heise.atom",
    "rss-parser-inputs/uolNoticias.rss",
    "rss-parser-inputs/rss-1.rss",
    "rss-parser-inputs/encoding.rss",
    "node-feedparser-feeds/rss-with-relative-urls.xml",
    "node-feedparser-feeds/intertwingly.atom",
    "node-feedparser-feeds/wapowellness.xml",
    "fastfeedparser-realworld/benchmark_data/035c1b3dcccee254",
    "fastfeedparser-realworld/benchmark_data/07403555c6b2ebea",
)
SYNTHETIC = range(6)
HANDWRITTEN = {
    "policy-en.xml": rss(
        "Policy Wire",
        [
            {
                "guid": "p-1",
                "title": "EU lawmakers agree on AI Act enforcement timeline",
                "link": "https://wire.example/ai-act?utm_source=rss",
                "date": "Mon, 07 Dec 2026 05:00:00 GMT",
                "body": "<p>Brussels settled the <b>AI Act</b> calendar.</p><script>x()</script>",
            },
            {
                "guid": "p-2",
                "title": "Local club wins the football cup",
                "link": "https://wire.example/cup",
                "date": "Mon, 07 Dec 2026 04:00:00 GMT",
                "body": "A late goal decided the AI-free football final.",
            },
            {
                "guid": "p-3",
                "title": "Régulateurs: l'IA sous contrôle",
                "link": "https://wire.example/ia",
                "date": "Sun, 06 Dec 2026 22:00:00 GMT",
                "body": "Les autorités publient des règles sur l'intelligence artificielle.",
            },
        ],
    ),
    "policy-fr.atom": atom(
        "Fil Politique",
        [
            {
                "guid": "urn:fr:1",
                "title": "Loi sur l'IA : calendrier d'application fixé",
                "link": "https://fil.example/ia-calendrier",
                "date": "2026-12-07T05:30:00Z",
                "body": "Le calendrier de l'AI Act est fixé à Bruxelles.",
            },
            {
                "guid": "urn:fr:2",
                "title": "Une bibliothèque ouvre en ville",
                "link": "https://fil.example/bibliotheque",
                "date": "2026-12-06T12:00:00Z",
                "body": "Des livres pour tous, même le dimanche.",
            },
        ],
        language="fr",
    ),
}
CATEGORIES = toml_tables(
    "category",
    {
        "id": "ai-policy",
        "title": "AI policy",
        "description": "Rules for artificial intelligence",
        "languages": ["en", "fr"],
        "include": ["AI Act", "/\\bAI\\b/", "IA", "intelligence"],
        "exclude": ["football"],
    },
    {
        "id": "tech",
        "title": "Technology",
        "include": ["software", "computer", "Linux", "app", "internet", "/\\bweb\\b/"],
    },
    {"id": "general", "title": "General news", "languages": ["en"]},
)


class CorpusFetcher(Fetcher):
    """The network replaced by a fixed set of bodies, so that every URL (and every identity
    key derived from one) is the same in each run."""

    def __init__(self, bodies: dict[str, tuple[bytes, str]]) -> None:
        super().__init__(user_agent="golden-test")
        self.bodies = bodies

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        allow_private: bool = True,
        accept_html: bool = False,
        options: FetchOptions | None = None,
    ) -> FetchResult:
        body, content_type = self.bodies[url]
        return FetchResult(
            url=url, status=200, content=body, headers={"content-type": content_type}
        )


def _content_type(name: str) -> str:
    return "application/atom+xml" if name.endswith(".atom") else "application/xml"


def feed_bodies() -> dict[str, tuple[bytes, str]]:
    root = require_shared("data/feeds")
    bodies = {
        f"{HOST}/corpus/{name}": ((root / name).read_bytes(), _content_type(name))
        for name in CORPUS
    }
    synth = bench_module("synthfeeds")
    for index in SYNTHETIC:
        feed = synth.make_feed(index, seed=19)
        bodies[f"{HOST}/synthetic/{index}.xml"] = (feed.body, feed.content_type)
    for name, body in HANDWRITTEN.items():
        bodies[f"{HOST}/hand/{name}"] = (body, _content_type(name))
    return bodies


def catalog_for(urls: list[str], directory: Path) -> Catalog:
    tables = []
    for n, url in enumerate(urls):
        table: dict[str, object] = {
            "id": f"s{n:02d}",
            "url": url,
            "categories": ["ai-policy", "tech", "general"],
        }
        if url.endswith("policy-fr.atom"):
            table["language"] = "fr"
        if n % 4 == 1:
            table["exclude"] = ["/\\bsponsored\\b/"]
        tables.append(table)
    sources = toml_tables("source", *tables)  # type: ignore[arg-type]
    return load_catalog(write_config(directory, sources, CATEGORIES))


def _frozen() -> datetime:
    return NOW


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[Store, Outputs]]:
    bodies = feed_bodies()
    catalog = catalog_for(list(bodies), tmp_path / "config")
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(store.engine)
    store.sync_sources(catalog, NOW)
    refresher = Refresher(
        store=store, fetcher=CorpusFetcher(bodies), catalog=catalog, workers=1, clock=_frozen
    )
    try:
        by_id = {s.id: s for s in store.sources()}
        # One source at a time, in catalog order: entry and story ids follow that order.
        for config in catalog.sources:
            refresher.poll([by_id[config.id]])
        ClusteringStage(store, semantic=False, clock=_frozen, catalog=catalog).run()
        outputs = Outputs(
            store=store, catalog=catalog, base_url=BASE, tag_authority="agg.example", feed_size=20
        )
        yield store, outputs
    finally:
        refresher.close()
        store.close()


def _api_documents(store: Store, outputs: Outputs) -> Iterator[tuple[str, bytes]]:
    with serve_app(create_app(store=store, outputs=outputs)) as base, requests.Session() as http:

        def get(path: str) -> bytes:
            response = http.get(base + path, timeout=30)
            assert response.status_code == 200, (path, response.text)
            return response.content

        yield "api/categories", get("/api/categories")
        yield "api/sources", get("/api/sources")
        for category in outputs.catalog.categories:
            yield f"api/categories/{category.id}", get(f"/api/categories/{category.id}")
            path = f"/api/categories/{category.id}/stories?limit=100"
            stories = get(path)
            yield f"api/categories/{category.id}/stories", stories
            for story in json.loads(stories)[:5]:
                yield f"api/stories/{story['id']}", get(f"/api/stories/{story['id']}")
                yield (
                    f"api/stories/{story['id']}/evidence",
                    get(f"/api/stories/{story['id']}/evidence"),
                )


def _golden_name(path: str) -> str:
    return path.replace("/", "__")


def test_every_output_is_byte_identical_to_the_golden_files(
    published: tuple[Store, Outputs],
) -> None:
    store, outputs = published
    documents = {path: document.encoded(None) for path, document in outputs.all_documents()}
    documents.update(_api_documents(store, outputs))
    assert len(documents) > 30
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.iterdir():
            old.unlink()
        for path, body in documents.items():
            (GOLDEN / _golden_name(path)).write_bytes(body)
    expected = {p.name: p.read_bytes() for p in GOLDEN.iterdir()} if GOLDEN.exists() else {}
    assert expected, f"{GOLDEN} is empty: run with UPDATE_GOLDEN=1 on the reference code"
    actual = {_golden_name(path): body for path, body in documents.items()}
    assert sorted(actual) == sorted(expected)
    differing = [name for name in sorted(actual) if actual[name] != expected[name]]
    assert not differing, f"outputs differ from the golden files: {differing}"
