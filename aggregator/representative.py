"""Which entry represents a story in an output: the category's language preference decides.

Pure logic. Only entries the category accepted can represent the story there; among them the
earliest entry in the first preferred language wins, else the earliest one overall.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from aggregator.normalize import primary_language
from aggregator.types import EntryView, StoryView


def choose_representative(entries: Sequence[EntryView], languages: Sequence[str]) -> EntryView:
    if not entries:
        raise ValueError("a story without entries has no representative")
    eligible = [e for e in entries if e.in_category] or list(entries)
    by_time = sorted(eligible, key=lambda e: (e.published_at, e.entry_id))
    for wanted in languages:
        wanted_primary = primary_language(wanted)
        for entry in by_time:
            if primary_language(entry.language) == wanted_primary:
                return entry
    return by_time[0]


def for_output(story: StoryView, languages: Sequence[str]) -> StoryView:
    """The story with its representative first, the other entries after in time order."""
    chosen = choose_representative(story.entries, languages)
    rest = sorted((e for e in story.entries if e is not chosen),
                  key=lambda e: (e.published_at, e.entry_id))
    return dataclasses.replace(story, entries=(chosen, *rest))
