"""Rules applied to stored entries over a real store (SQLite and PostgreSQL) filled by a real
poll: the dry run's diff is written as one correction with who and when, and undoing it leaves
the category rows exactly as before."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.catalog import Catalog
from aggregator.demo.feedserver import FeedServer
from aggregator.editorial.dryrun import changed_rules
from aggregator.editorial.operations import Workbench
from aggregator.errors import EditRefused
from aggregator.store import Store
from aggregator.types import CorrectionKind
from tests.integration.test_dryrun import entry_ids, poll_feeds
from tests.support.builders import NOW


@pytest.fixture
def polled(store: Store, feed_server: FeedServer) -> Catalog:
    return poll_feeds(store, feed_server)


def category_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        return sorted(
            tuple(row)
            for row in connection.execute(
                sa.text("SELECT entry_id, category_id, score, reason, origin FROM entry_categories")
            )
        )


def bench_with_new_rules(store: Store, catalog: Catalog) -> Workbench:
    """The service after an editor saved changed ai-policy rules: new entries get them, the
    stored ones do not until the rules are applied."""
    changed = changed_rules(
        catalog.category("ai-policy"), add_include=["export rules"], add_exclude=["Strasbourg"]
    )
    categories = tuple(changed if c.id == "ai-policy" else c for c in catalog.categories)
    running = replace(catalog, categories=categories)
    return Workbench(store=store, catalog=lambda: running, config_dir=None, clock=lambda: NOW)


def test_apply_writes_the_dry_run_and_undo_restores_the_rows(store: Store, polled: Catalog) -> None:
    bench = bench_with_new_rules(store, polled)
    before = category_rows(store)
    ids = entry_ids(store)
    done, diff = bench.apply_rules("ai-policy", 7, by="Mia", note="export rules")
    assert [e.entry_id for e in diff.added] == [ids["w3"]]
    assert [e.entry_id for e in diff.removed] == [ids["w1"]]
    assert done.override_id is not None
    assert done.message == (
        f"applied the rules of 'ai-policy' to the last 7 days: 1 added, "
        f"1 removed (correction #{done.override_id})"
    )
    after = category_rows(store)
    assert (
        ids["w3"],
        "ai-policy",
        1.0,
        "include 'export rules' matched in title",
        "rules",
    ) in after
    assert [r for r in after if r[0] == ids["w1"]] == []
    # Everything else is as it was.
    untouched = [r for r in before if r[0] not in (ids["w1"], ids["w3"])]
    assert [r for r in after if r[0] not in (ids["w1"], ids["w3"])] == untouched
    [correction] = bench.corrections()
    assert (correction.kind, correction.category, correction.created_by, correction.note) == (
        CorrectionKind.RULES,
        "ai-policy",
        "Mia",
        "export rules",
    )
    assert correction.created_at == NOW
    assert correction.describe() == "apply the rules in 'ai-policy' to stored entries"
    # Applied: a second dry run of the same rules finds nothing left to change.
    again = bench.apply_rules("ai-policy", 7, by="Mia", note=None)[0]
    assert again.override_id is None
    assert "change nothing stored" in again.message
    bench.undo(done.override_id, by="Lou")
    assert category_rows(store) == before
    [undone] = store.overrides(include_undone=True)
    assert (undone.undone_by, undone.undone_at) == ("Lou", NOW)


def test_undo_skips_entries_that_retention_removed_meanwhile(store: Store, polled: Catalog) -> None:
    bench = bench_with_new_rules(store, polled)
    ids = entry_ids(store)
    done, _ = bench.apply_rules("ai-policy", 7, by="Mia", note=None)
    assert done.override_id is not None
    with store.engine.begin() as connection:
        for table in ("entry_categories", "entry_features"):
            connection.execute(
                sa.text(f"DELETE FROM {table} WHERE entry_id = :id"), {"id": ids["w1"]}
            )
        connection.execute(sa.text("DELETE FROM entries WHERE id = :id"), {"id": ids["w1"]})
    bench.undo(done.override_id, by="Lou")
    rows = category_rows(store)
    assert [r for r in rows if r[0] in (ids["w1"], ids["w3"])] == []


@pytest.mark.parametrize("days", [0, -1, 367])
def test_a_window_out_of_bounds_is_refused_naming_days(
    store: Store, polled: Catalog, days: int
) -> None:
    bench = bench_with_new_rules(store, polled)
    with pytest.raises(EditRefused) as refused:
        bench.apply_rules("ai-policy", days, by="Mia", note=None)
    assert refused.value.field == "days"
    assert store.overrides() == []
