"""Which entry represents a story in an output: the category's language preference decides.

Pure logic. The representative is the earliest entry in the first preferred language that the
story has; with no preferred language present, the earliest entry overall.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from aggregator.types import EntryView, StoryView


def primary_language(tag: str | None) -> str | None:
    return tag.split("-", 1)[0].lower() if tag else None


def choose_representative(entries: Sequence[EntryView], languages: Sequence[str]) -> EntryView:
    if not entries:
        raise ValueError("a story without entries has no representative")
    by_time = sorted(entries, key=lambda e: (e.published_at, e.entry_id))
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
