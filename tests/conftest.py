"""Shared fixtures: fresh databases on SQLite and PostgreSQL, a loopback feed server, and the
clustering models loaded once per test session. Migrated databases are copies of a template
migrated once per session (per xdist worker) on both engines; PostgreSQL ones are made one
ahead and dropped behind the tests (``databases.Clones``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aggregator.store import Store, open_store

if TYPE_CHECKING:
    from aggregator.clustering import Models
    from aggregator.demo.feedserver import FeedServer
from tests.support import databases

# What the clustering model builds once (its int8 graph, a few seconds of CPU) is kept here for
# every test, xdist worker and CLI process the tests start, and across runs: each file is
# named by its recipe and checked against its digest before it is read.
MODEL_CACHE = Path(tempfile.gettempdir()) / f"aggregator-tests-model-cache-{os.getuid()}"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AGGREGATOR_MODEL_CACHE", str(MODEL_CACHE))


@pytest.fixture(scope="session")
def pg_clones() -> Iterator[databases.Clones]:
    databases.require_postgres()
    with databases.clones() as clones:
        yield clones


@pytest.fixture(scope="session")
def pg_template(pg_clones: databases.Clones) -> Iterator[str]:
    name = databases.create_template()
    yield name
    pg_clones.discard(name)
    databases.drop(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.create_sqlite_template(tmp_path_factory.mktemp("template") / "store.db")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An EMPTY database (no schema) on each engine; each test gets its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    request.getfixturevalue("pg_clones")
    with databases.fresh_postgres(template=None) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each engine; PostgreSQL ones are cloned from a migrated template."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        store = databases.migrated_sqlite(template, tmp_path / "store.db")
        yield store
        store.close()
        return
    template = request.getfixturevalue("pg_template")
    with databases.fresh_postgres(template=template) as url:
        store = open_store(url)
        yield store
        store.close()


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store only, for tests that need no PostgreSQL half."""
    store = databases.migrated_sqlite(sqlite_template, tmp_path / "store.db")
    yield store
    store.close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    from aggregator.demo.feedserver import FeedServer

    with FeedServer() as server:
        yield server


@pytest.fixture(scope="session")
def models() -> Models:
    """The real language detector and embedding model, shared by every test (loaded on first
    use: about two seconds)."""
    from aggregator.clustering import Models

    return Models(cache=MODEL_CACHE)


# The fast tier (`pytest -m "not slow"`, CONTRIBUTING.md: the pure logic, the store and the
# poll path on SQLite) leaves out what starts processes, browsers, real clients, the web app
# or HTTP servers, loads the clustering models, walks the corpora, fuzzes, restarts a
# database, waits on real timeouts, and the PostgreSQL half (a fresh database per test).
# Marked here, in one place, by what each module or test does.
_SLOW_PREFIXES = (
    "tests/e2e/",  # the CLI as a process, servers, newsboat, Chromium, database restarts
    "tests/integration/test_corpus.py",  # every feed document of ../shared/data/feeds
    "tests/integration/test_api_fuzz.py",  # schemathesis over the whole API
    "tests/unit/test_dedup_model.py",  # the embedding model
    "tests/unit/test_topic_match.py",
    "tests/unit/test_localisation_package.py",  # builds the wheel
    "tests/integration/test_clustering.py",
    "tests/integration/test_feed_items_apart.py",  # the model over real feeds
    "tests/integration/test_topic_stage.py",
    "tests/integration/test_leases.py",  # several workers sharing PostgreSQL
    "tests/integration/test_migrations.py",  # every migration, up and down, on both engines
    # The web app, real HTTP servers and the W3C validator: the full tier runs them.
    "tests/integration/test_admin_pages.py",
    "tests/integration/test_search_web.py",
    "tests/integration/test_filtered_feeds.py",
    "tests/integration/test_api_auth.py",
    "tests/integration/test_api_caching.py",
    "tests/integration/test_api_docs.py",
    "tests/integration/test_api_privacy.py",
    "tests/integration/test_archive_validation.py",
    "tests/integration/test_broken_storage.py",
    "tests/integration/test_editor_input_web.py",
    "tests/integration/test_editor_accounts.py",
    "tests/integration/test_feed_validation.py",
    "tests/integration/test_feedserver.py",
    "tests/integration/test_fetch_safety.py",
    "tests/integration/test_fulltext.py",  # a loopback news site, its slow page, the web app
    "tests/integration/test_metrics.py",
    "tests/integration/test_outputs.py",
    "tests/integration/test_realfeeds.py",  # the real-world corpus of ../shared
    "tests/integration/test_request_bodies.py",
    "tests/integration/test_sessions.py",
    "tests/integration/test_web.py",
    "tests/integration/test_web_outputs.py",
    "tests/integration/test_websub.py",
    "tests/integration/test_webhooks_web.py",
    "tests/integration/test_xml_attacks.py",
    # poll worker processes
    "tests/integration/test_refresh.py::test_a_dead_worker_costs_only_its_sources",
    "tests/integration/test_refresh.py::test_a_worker_that_died_between_polls_is_replaced",
    "tests/integration/test_refresh.py::test_worker_processes_match_inline",
    "tests/integration/test_refresh.py::test_workers_that_cannot_start_leave_the_poll",
    "tests/integration/test_fetch_options.py::test_the_options_survive_the_poll_and_its_worker_processes[sqlite-1]",
    # real timeouts and drips
    "tests/integration/test_feedserver.py::test_delay_and_drip_slow_the_answer",
    "tests/integration/test_feedserver.py::test_stop_is_prompt_with_idle_and_slow",
    "tests/integration/test_fetch.py::test_slow_",
    "tests/integration/test_fetch.py::test_stalled_body_is_cut_at_the_total_timeout",
    "tests/integration/test_webhooks.py::test_failures_and_timeouts_",
    "tests/integration/test_xml_attacks.py::test_gzip_bomb_is_capped_with_bounded_memory",
    "tests/integration/test_xml_attacks.py::test_50_mb_body_is_cut_while_streaming",
    # the command line as a process
    "tests/integration/test_poll_logs.py::test_the_command_line_writes_json_lines",
    "tests/integration/test_editor_input_web.py::test_sources_add_refuses_bad_input",
    "tests/unit/test_configedit.py::test_pause_and_resume_every_starter_source",
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Work stealing for ``-n`` runs unless ``--dist`` chose a mode: an idle worker takes
    queued tests from a busy one, which the store-heavy files' long tails need. A hook rather
    than ``--dist`` in ``addopts``, so that ``-p no:xdist`` still runs the suite."""
    chosen = any(
        arg == "--dist" or arg.startswith("--dist=") for arg in config.invocation_params.args
    )
    if chosen or config.getoption("dist") != "load":
        return None
    from xdist.scheduler import WorkStealingScheduling  # type: ignore[import-untyped]

    scheduler: object = WorkStealingScheduling(config, log)
    return scheduler


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(_SLOW_PREFIXES) or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.slow)
