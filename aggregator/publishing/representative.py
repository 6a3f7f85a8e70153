"""Which entry represents a story in an output: the category's language preference decides,
then the editors' source priority, then time.

Pure logic. Only entries the category accepted can represent the story there; among them, in
the first preferred language the story has, the entry of the highest-priority source wins and,
between equal priorities, the earliest; without any preferred language, the same order over all.
A story's update time in the outputs is its members' newest own time, not ours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregator.polling.normalize import primary_language
from aggregator.types import EntryView, StoryView


def choose_representative(
    entries: Sequence[EntryView],
    languages: Sequence[str],
    priorities: Mapping[str, int] | None = None,
) -> EntryView:
    """``priorities`` maps source ids to their priority (missing ones count 0)."""
    if not entries:
        raise ValueError("a story without entries has no representative")
    eligible = [e for e in entries if e.in_category] or list(entries)
    weights = priorities or {}
    ranked = sorted(
        eligible, key=lambda e: (-weights.get(e.source_id, 0), e.published_at, e.entry_id)
    )
    for wanted in languages:
        wanted_primary = primary_language(wanted)
        for entry in ranked:
            if primary_language(entry.language) == wanted_primary:
                return entry
    return ranked[0]


def for_output(
    story: StoryView, languages: Sequence[str], priorities: Mapping[str, int] | None = None
) -> StoryView:
    """The story with its representative first, the other entries after in time order, and
    its ``updated_at`` the newest member's own update time (``news_updated``)."""
    chosen = choose_representative(story.entries, languages, priorities)
    rest = sorted(
        (e for e in story.entries if e is not chosen), key=lambda e: (e.published_at, e.entry_id)
    )
    return dataclasses.replace(story, entries=(chosen, *rest), updated_at=news_updated(story))


def news_updated(story: StoryView) -> datetime:
    """When the story's news last changed: the newest of its members' own update times.

    The stored story time moves when we process it (a poll, a re-clustering), which would
    show a month-old story as updated today; the members' times are the publishers' own.
    Only a story without members, which no output shows, keeps the stored time.
    """
    return max((e.updated_at for e in story.entries), default=story.updated_at)
