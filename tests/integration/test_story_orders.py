"""Determinism through the model (issue 14): the same entries polled in two different orders
give the same stories under the same uids, so the same item ids in every output.

Seven reports of four events in three languages, one source each, are stored into two stores
in opposite orders (so the write path founds their stories in opposite orders: checked), then
the clustering stage decides them with the real model. The stories' row ids are the database's
own counter, assigned when the write path founds a story: they follow the storage order and
are not compared (readers never see them; ``stories show`` takes them per database).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from aggregator.clustering import ClusteringStage, Models
from aggregator.store import Store
from tests.integration.test_cluster_extract import ITEMS, PARTITION, _news
from tests.support.builders import NOW, catalog, fetched, match, source
from tests.support.stories import STAGE_NOW


def _poll(store: Store, order: list[dict[str, str]]) -> None:
    store.sync_sources(catalog(*(source(i["guid"]) for i in ITEMS)), NOW)
    for item in order:
        store.save_poll(
            item["guid"],
            fetched(),
            body_hash=None,
            feed_title="F",
            feed_link=None,
            entries=[(_news(item), [match("news")])],
            next_check_at=NOW,
            now=NOW,
        )


def _stories(store: Store) -> dict[frozenset[str], str]:
    """Each story as the set of its entries' guids, with its uid."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT e.guid, s.uid FROM entries e JOIN stories s ON s.id = e.story_id")
        )
        members: dict[str, set[str]] = {}
        for guid, uid in rows:
            members.setdefault(uid, set()).add(guid)
    return {frozenset(guids): uid for uid, guids in members.items()}


def _first_guid(store: Store) -> str:
    with store.engine.connect() as connection:
        return str(
            connection.execute(sa.text("SELECT guid FROM entries ORDER BY id LIMIT 1")).scalar_one()
        )


def test_two_orders_give_the_same_stories_and_uids(
    store: Store, other: Store, models: Models
) -> None:
    _poll(store, ITEMS)
    _poll(other, list(reversed(ITEMS)))
    assert _first_guid(store) != _first_guid(other)  # the orders did differ
    for one in (store, other):
        ClusteringStage(
            one, models=models, clock=lambda: STAGE_NOW, max_age=timedelta(days=7), batch_size=3
        ).run()
    first, second = _stories(store), _stories(other)
    assert set(first) == PARTITION
    assert first == second
