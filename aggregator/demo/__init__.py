"""``aggregator demo``: the real service against bundled sample feeds, with no internet.

A loopback server serves ``demo/feeds/``; the demo's config (``demo/config/``) points at it once
the placeholder host is replaced; the store is a throwaway SQLite file. It polls once, clusters
the stories, prints what it found and the URLs to open, then serves until stopped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from aggregator.catalog import (
    CATEGORIES_FILE,
    SOURCES_FILE,
    Catalog,
    CategoryConfig,
    load_catalog,
)
from aggregator.demo.feedserver import FeedServer
from aggregator.settings import Settings
from aggregator.store import Store, open_store, upgrade

DEMO_DIR = Path(__file__).resolve().parent
FEEDS_DIR = DEMO_DIR / "feeds"
CONFIG_DIR = DEMO_DIR / "config"
# The demo config names this host; it becomes the loopback feed server's real address.
PLACEHOLDER_BASE = "http://demo.localhost"


def write_demo_config(target: Path, feeds_base_url: str) -> Path:
    """Copy the demo config into ``target`` with feed URLs pointing at ``feeds_base_url``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (SOURCES_FILE, CATEGORIES_FILE):
        text = (CONFIG_DIR / name).read_text(encoding="utf-8")
        (target / name).write_text(
            text.replace(PLACEHOLDER_BASE, feeds_base_url.rstrip("/")), encoding="utf-8"
        )
    return target


def run_demo(settings: Settings, *, port: int, once: bool) -> int:
    from aggregator.cli.progress import cluster_progress, progress_for
    from aggregator.clustering.stage import user_model_cache
    from aggregator.runtime.service import Service, listen

    with tempfile.TemporaryDirectory(prefix="aggregator-demo-") as tmp, FeedServer() as feeds:
        feeds.serve_directory(FEEDS_DIR)
        config_dir = write_demo_config(Path(tmp) / "config", feeds.base_url)
        sock = listen(settings.host, port)
        try:
            bound_port = sock.getsockname()[1]
            # The sample feeds are dated November 2026: no age limit on clustering them.
            demo = settings.with_overrides(
                config_dir=config_dir,
                database_url=f"sqlite:///{tmp}/demo.db",
                port=bound_port,
                base_url="",
                tick_seconds=60,
                clustering_max_age_hours=0.0,
                # What the model builds once outlives the throwaway database.
                model_cache=settings.model_cache or str(user_model_cache()),
            )
            print(f"demo: sample feeds served at {feeds.base_url}/")
            print(f"demo: throwaway database {demo.database_url}")
            catalog = load_catalog(config_dir)
            store = open_store(demo.database_url)
            try:
                upgrade(store.engine)
                service = Service(demo, store, catalog)
                try:
                    total = len(catalog.sources)
                    summary = service.poll(on_outcome=progress_for(total))
                    print(f"demo: {summary.new_entries} entries stored")
                    clustered = service.cluster(on_progress=cluster_progress())
                    print(
                        f"demo: {clustered.describe()}: {len(list(store.iter_stories()))} stories"
                    )
                    if once:
                        _print_stories(demo, store, catalog)
                    else:
                        _print_urls(demo, catalog.categories)
                        print("demo: serving; press Ctrl-C to stop", flush=True)
                        service.serve(sock)
                finally:
                    service.close()
            finally:
                store.close()
        finally:
            sock.close()
    return 0


def _print_stories(settings: Settings, store: Store, catalog: Catalog) -> None:
    from aggregator.runtime.service import make_outputs

    outputs = make_outputs(settings, store, catalog)
    for category in catalog.categories:
        feed = outputs.output_feed(category)
        print(f"\n{category.title}: {len(feed.stories)} stories")
        for story in feed.stories:
            versions = ", ".join(f"{e.language or '?'}: {e.source_title}" for e in story.entries)
            print(f"  - {story.representative.title}\n      ({versions})")


def _print_urls(settings: Settings, categories: Sequence[CategoryConfig]) -> None:
    from aggregator.publishing.formats import feed_url

    base = settings.public_url
    print(f"open {base}/  (index)")
    for category in categories:
        for fmt in ("atom", "rss", "json"):
            print(f"open {feed_url(base, category.id, fmt)}")
    print(f"open {base}/feeds.opml", flush=True)
