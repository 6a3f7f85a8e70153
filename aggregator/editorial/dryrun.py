"""The rules dry run: what a changed category would have added and removed over stored history.

Re-classifies the stored entries of the category's sources published within a window with the
changed rules and compares each decision with the one stored; writes nothing. Entries are
streamed from the store a page at a time, so the cost is bounded by the window, not the store.
Used by ``aggregator rules test`` and the admin pages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aggregator.catalog import Catalog, CategoryConfig, Rule, attach_source_rules, parse_rule
from aggregator.editorial.classify import explain
from aggregator.errors import ConfigError
from aggregator.store import Store
from aggregator.types import CategoryOrigin

TOPIC_OFF_REASON = "topic = false: the topic match no longer takes it"


@dataclass(frozen=True)
class DryRunEntry:
    """One entry whose decision would change. ``reason`` is the new decision's reason (the
    matching rule for an added entry, why it is no longer taken for a removed one);
    ``previous_reason`` is the stored one, for a removed entry."""

    entry_id: int
    source_id: str
    title: str
    url: str | None
    published_at: datetime
    reason: str
    previous_reason: str | None = None
    # The new decision's score: what applying the rules writes for an added entry.
    score: float = 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "source_id": self.source_id,
            "title": self.title,
            "url": self.url,
            "published_at": self.published_at.isoformat(),
            "reason": self.reason,
            "previous_reason": self.previous_reason,
        }


@dataclass(frozen=True)
class DryRun:
    """What the changed rules would have done to the entries published since ``since``."""

    added: list[DryRunEntry]
    removed: list[DryRunEntry]
    unchanged: int
    examined: int
    category_id: str = ""
    since: datetime | None = None
    source_ids: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "category": self.category_id,
            "since": self.since.isoformat() if self.since else None,
            "sources": list(self.source_ids),
            "examined": self.examined,
            "unchanged": self.unchanged,
            "added": [e.as_json() for e in self.added],
            "removed": [e.as_json() for e in self.removed],
        }


def rules_dry_run(
    store: Store, catalog: Catalog, changed: CategoryConfig, *, since: timedelta, now: datetime
) -> DryRun:
    """Compare ``changed`` with the stored decisions over entries published since
    ``now - since`` by the sources that list the category in ``catalog``.

    An entry the topic match took stays taken while ``changed`` keeps ``topic = true`` and no
    exclude rule matches it (the topic match itself needs the model and is not re-run here).
    """
    if since <= timedelta(0):
        raise ValueError(f"the window must be positive, not {since}")
    # Whatever built ``changed``, the sources' own rules apply as they do when polling.
    category = attach_source_rules(changed, catalog.sources)
    sources = tuple(s.id for s in catalog.sources_of(category.id))
    start = now - since
    added: list[DryRunEntry] = []
    removed: list[DryRunEntry] = []
    examined = unchanged = 0
    categories = {category.id: category}
    for stored in store.category_history(category.id, sources, start):
        examined += 1
        entry = stored.entry
        [decision] = explain(
            entry,
            source_categories=(category.id,),
            categories=categories,
            source_id=entry.source_id,
        )
        if decision.accepted == stored.accepted:
            unchanged += 1
            continue
        if stored.origin == CategoryOrigin.TOPIC:
            if category.topic and not decision.excluded:
                unchanged += 1
                continue
            reason = decision.reason if decision.excluded else TOPIC_OFF_REASON
        else:
            reason = decision.reason
        found = DryRunEntry(
            entry.entry_id,
            entry.source_id,
            entry.title,
            entry.url,
            entry.published_at,
            reason,
            previous_reason=stored.reason,
            score=decision.score,
        )
        (added if decision.accepted else removed).append(found)
    return DryRun(
        added=added,
        removed=removed,
        unchanged=unchanged,
        examined=examined,
        category_id=category.id,
        since=start,
        source_ids=sources,
    )


def changed_rules(
    category: CategoryConfig,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    add_include: Sequence[str] = (),
    add_exclude: Sequence[str] = (),
    min_score: float | None = None,
) -> CategoryConfig:
    """``category`` with its rule lists replaced (``include``/``exclude`` given) or extended
    (``add_include``/``add_exclude``), as written on a command line or in a form.

    Raises ConfigError naming the option of a bad rule or score.
    """

    def parsed(texts: Sequence[str], key: str) -> tuple[Rule, ...]:
        rules = []
        for text in texts:
            try:
                rules.append(parse_rule(text))
            except (re.error, ValueError) as exc:
                raise ConfigError(f"bad rule {text!r}: {exc}", item=category.id, key=key) from exc
        return tuple(rules)

    new_include = parsed(include, "--include") if include is not None else category.include
    new_exclude = parsed(exclude, "--exclude") if exclude is not None else category.exclude
    new_include += parsed(add_include, "--add-include")
    new_exclude += parsed(add_exclude, "--add-exclude")
    score = category.min_score
    if min_score is not None:
        if not 0.0 <= min_score <= 1.0:
            raise ConfigError(
                f"must be a number from 0 to 1, not {min_score!r}",
                item=category.id,
                key="--min-score",
            )
        score = min_score
    return replace(category, include=new_include, exclude=new_exclude, min_score=score)


def describe(result: DryRun) -> str:
    """The dry run as an editor reads it: counts, then each added and removed entry."""
    since = result.since.strftime("%Y-%m-%d %H:%M UTC") if result.since else "?"
    sources = len(result.source_ids)
    lines = [
        f"category {result.category_id}: {result.examined} entries of {sources} "
        f"source{'' if sources == 1 else 's'} published since {since}",
        f"{len(result.added)} added, {len(result.removed)} removed, {result.unchanged} unchanged",
    ]
    for title, sign, found in (("added", "+", result.added), ("removed", "-", result.removed)):
        if not found:
            continue
        lines.append(f"\n{title} ({len(found)}):")
        for item in found:
            lines.append(
                f"  {sign} {item.published_at:%Y-%m-%d %H:%M}  [{item.source_id}]  {item.title}"
            )
            lines.append(f"      {item.reason}")
            if item.previous_reason:
                lines.append(f"      (was: {item.previous_reason})")
    return "\n".join(lines)
