"""The editors' workbench for tests: a config folder and a store filled by polling a loopback
feed server through the real pipeline, the app served with an admin token, and a headless
Debian Chromium driven by selenium (skipped with the reason outside CI when it is missing, a
failure in CI, where .ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from aggregator.catalog import load_catalog
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.publishing.outputs import Outputs
from aggregator.runtime.service import Service
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.web import create_app
from aggregator.web.auth import FailureLimiter
from tests.support.feeds import rss, toml_tables, write_config
from tests.support.shared import in_ci

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

TOKEN = "editors-test-token-0123456789"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Wherever the browser is slower than expected, waiting for an element gives up after this.
BROWSER_WAIT_SECONDS = 20

# The classic ways a title could run script if a page wrote it as markup.
HOSTILE_TITLE = "<script>alert('x')</script><img src=x onerror=alert(1)> Hostile headline"
# Relative to the real clock: normalize refuses future dates, and a dry run looks back a week.
PUBLISHED = datetime.now(UTC) - timedelta(days=1)


def _item(key: str, title: str, body: str, site: str, hours: int) -> dict[str, str]:
    moment = PUBLISHED - timedelta(hours=hours)
    return {
        "guid": key,
        "title": title,
        "body": body,
        "link": f"https://{site}.example/{key}",
        "date": moment.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }


WIRE_ITEMS = [
    _item(
        "robot-chess",
        "Robot wins the world chess final",
        "A robot beat the champion in the final game.",
        "wire",
        1,
    ),
    _item(
        "ferry",
        "Ferry runs aground off Paros",
        "All passengers were rescued by the coast guard.",
        "wire",
        2,
    ),
    _item("hostile", HOSTILE_TITLE, "A feed that tries to run script.", "wire", 3),
]
JOURNAL_ITEMS = [
    _item(
        "rail",
        "Rail workers announce a national strike",
        "Unions said they will walk out next week.",
        "journal",
        4,
    ),
    _item(
        "robot-cook",
        "Robots learn to cook in a Lyon restaurant",
        "The kitchen robot makes an omelette.",
        "journal",
        5,
    ),
]

CATEGORIES_TOML = toml_tables(
    "category",
    {"id": "news", "title": "News", "languages": ["en"]},
    {"id": "tech", "title": "Tech", "languages": ["en"], "include": ["robot"]},
)


def service_settings(database_url: str, **extra: str) -> Settings:
    """Settings for a service in a test: no model, no worker processes, no politeness wait."""
    return Settings.from_env(
        {
            "AGGREGATOR_DATABASE_URL": database_url,
            "AGGREGATOR_CLUSTERING": "exact",
            "AGGREGATOR_POLL_PROCESSES": "0",
            "AGGREGATOR_HOST_DELAY": "0",
            **extra,
        }
    )


def write_newsroom(feed_server: FeedServer, directory: Path) -> Path:
    """Serve the two feeds and write the config folder that reads them; returns the folder."""
    feed_server.set("/wire.xml", Resource(body=rss("Wire", WIRE_ITEMS)))
    feed_server.set("/journal.xml", Resource(body=rss("Journal", JOURNAL_ITEMS)))
    sources = toml_tables(
        "source",
        {"id": "wire", "url": feed_server.url("/wire.xml"), "categories": ["news", "tech"]},
        {"id": "journal", "url": feed_server.url("/journal.xml"), "categories": ["news"]},
    )
    return write_config(
        directory, "# Editors' sources (comments are kept by edits)\n" + sources, CATEGORIES_TOML
    )


@dataclass
class Workbench:
    """A filled store, its config folder and the editors' app over them."""

    config: Path
    store: Store
    outputs: Outputs
    app: FastAPI
    reloads: int = 0

    def story_ids(self, category: str = "news") -> dict[str, int]:
        """Title → story id of the category's stories."""
        return {
            s.representative.title: s.story_id for s in self.store.category_stories(category, 100)
        }


@contextmanager
def workbench(
    store: Store,
    feed_server: FeedServer,
    directory: Path,
    *,
    token: str = TOKEN,
    limiter: FailureLimiter | None = None,
) -> Iterator[Workbench]:
    """Poll both feeds once and cluster (as ``aggregator poll --all``), then build the app as
    ``Service.serve`` does, config edits applied by the service's own reload."""
    config = write_newsroom(feed_server, directory)
    service = Service(service_settings("sqlite://"), store, load_catalog(config))
    try:
        service.poll()
        service.cluster()
        outputs = Outputs(
            store=store,
            catalog=service.catalog,
            base_url="http://agg.test",
            tag_authority="agg.test",
            feed_size=50,
        )
        service.outputs = outputs
        bench = Workbench(config=config, store=store, outputs=outputs, app=FastAPI())

        def reload() -> None:
            service.reload_now()
            bench.reloads += 1

        bench.app = create_app(
            store=store,
            outputs=outputs,
            admin_token=token,
            config_dir=config,
            on_config_change=reload,
            failure_limiter=limiter,
        )
        yield bench
    finally:
        service.close()


# -- the browser ----------------------------------------------------------------------------


def require_browser() -> None:
    """Skip (outside CI) or fail (in CI) when Chromium, its driver or selenium is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        message = (
            "headless browser tests need "
            + ", ".join(missing)
            + " (apt-get install chromium chromium-driver)"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    """Headless Debian Chromium through its own chromedriver; Selenium Manager never runs
    (both paths are given and SE_OFFLINE forbids any download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    previous = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with it
    try:
        driver = webdriver.Chrome(
            service=DriverService(executable_path=str(CHROMEDRIVER)), options=options
        )
    finally:
        if previous is None:
            del os.environ["SE_OFFLINE"]
        else:
            os.environ["SE_OFFLINE"] = previous
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
