"""A service clustering in exact mode never loads numpy (the dedup core takes it through
``clustering/dedup/lazynumpy``): it would be ≈ 12 MB of the main process for nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from datetime import timedelta
from aggregator.clock import utc_now
from aggregator.clustering import ClusteringStage
from aggregator.store import open_store
from aggregator.store.migrate import upgrade
from tests.support.builders import catalog, entry, fetched, match, source

store = open_store("sqlite:///" + sys.argv[1])
upgrade(store.engine)
store.sync_sources(catalog(source("a")), utc_now())
now = utc_now()
store.save_poll("a", fetched(url="https://feeds.example/a.xml"), body_hash=None,
                feed_title="A", feed_link=None,
                entries=[(entry(key, title="Rates rise " + key, published_at=now), [match("news")])
                         for key in ("one", "two", "three")],
                next_check_at=now + timedelta(minutes=30), now=now)
summary = ClusteringStage(store, semantic=False).run()
assert summary.entries == 3, summary
print("numpy" in sys.modules)
"""


def test_exact_clustering_of_stored_entries_leaves_numpy_unloaded(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "store.db")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
