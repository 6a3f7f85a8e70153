"""The representative entry follows the category's language preference, then time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aggregator.publishing.representative import choose_representative, for_output
from aggregator.types import EntryView, StoryView
from tests.support.builders import NOW


def view(entry_id: int, language: str | None, minutes: int) -> EntryView:
    return EntryView(
        entry_id=entry_id,
        source_id=f"s{entry_id}",
        source_title=f"S{entry_id}",
        url=f"https://x.example/{entry_id}",
        title=f"t{entry_id}",
        summary_html="",
        language=language,
        published_at=NOW + timedelta(minutes=minutes),
        updated_at=NOW + timedelta(minutes=minutes),
    )


def test_preferred_language_wins_over_time() -> None:
    entries = [view(1, "de", 0), view(2, "fr", 5), view(3, "en-GB", 10), view(4, "en", 20)]
    assert choose_representative(entries, ["en", "fr"]).entry_id == 3
    assert choose_representative(entries, ["fr", "en"]).entry_id == 2
    assert choose_representative(entries, ["ko"]).entry_id == 1
    assert choose_representative(entries, []).entry_id == 1


def test_for_output_puts_representative_first() -> None:
    story = StoryView(
        story_id=1,
        uid="u",
        first_seen=NOW,
        updated_at=NOW,
        entries=(view(1, "de", 0), view(2, "fr", 5), view(3, None, 1)),
    )
    ordered = for_output(story, ["fr"])
    assert [e.entry_id for e in ordered.entries] == [2, 1, 3]
    assert ordered.representative.entry_id == 2


def test_empty_story_has_no_representative() -> None:
    with pytest.raises(ValueError, match="without entries"):
        choose_representative([], ["en"])


def test_only_accepted_entries_represent_the_story() -> None:
    rejected = view(1, "en", 0)
    rejected = type(rejected)(**{**rejected.__dict__, "in_category": False})
    accepted = view(2, "de", 5)
    assert choose_representative([rejected, accepted], ["en"]).entry_id == 2


def test_source_priority_wins_within_the_preferred_language() -> None:
    # s1 and s3 are English, s3 later but from the higher-priority source.
    entries = [view(1, "en", 0), view(2, "fr", 5), view(3, "en", 10), view(4, "de", 20)]
    assert choose_representative(entries, ["en"], {"s3": 2}).entry_id == 3
    # Priority never overrides the language preference: the French entry still leads there.
    assert choose_representative(entries, ["fr", "en"], {"s3": 2, "s4": 9}).entry_id == 2
    # Without a preferred language in the story, priority then time over all entries.
    assert choose_representative(entries, ["ko"], {"s4": 1}).entry_id == 4
    # Equal priorities fall back to the earliest; missing sources count 0, below a positive
    # priority and above a negative one.
    assert choose_representative(entries, ["en"], {"s1": 1, "s3": 1}).entry_id == 1
    assert choose_representative(entries, ["en"], {"s1": -1}).entry_id == 3


def test_priority_does_not_let_a_rejected_entry_represent_the_story() -> None:
    rejected = view(1, "en", 0)
    rejected = type(rejected)(**{**rejected.__dict__, "in_category": False})
    assert choose_representative([rejected, view(2, "en", 5)], ["en"], {"s1": 5}).entry_id == 2


def test_for_output_orders_by_priority_then_time() -> None:
    story = StoryView(
        story_id=1,
        uid="u",
        first_seen=NOW,
        updated_at=NOW,
        entries=(view(1, "en", 0), view(2, "en", 5), view(3, "fr", 1)),
    )
    ordered = for_output(story, ["en"], {"s2": 3})
    assert [e.entry_id for e in ordered.entries] == [2, 1, 3]


def test_for_output_updated_is_the_newest_members_own_time() -> None:
    # The store moved the story's time to when we processed it; the outputs show the news.
    processed = NOW + timedelta(days=30)
    story = StoryView(
        story_id=1,
        uid="u",
        first_seen=NOW,
        updated_at=processed,
        entries=(view(1, "de", 0), view(2, "fr", 50), view(3, "en", 5)),
    )
    assert for_output(story, ["en"]).updated_at == NOW + timedelta(minutes=50)
