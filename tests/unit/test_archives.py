"""Archive pages (aggregator.publishing.archives): places in first-seen order, frozen pages that
never
change, the early close that keeps every shown story reachable, and snapshots on disk."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.publishing.archives import ArchiveLog, archive_dir_for
from aggregator.types import Enclosure, EntryView, MediaImage, Membership, StoryView

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def story(n: int, *, title: str | None = None, extra: int = 0) -> StoryView:
    """Story ``n``, first seen ``n`` hours after T0, with ``extra`` more language versions."""
    when = T0 + timedelta(hours=n)
    entries = [
        EntryView(
            entry_id=n * 10,
            source_id="a",
            source_title="A",
            url=f"https://a.example/{n}",
            title=title or f"Story {n}",
            summary_html="<p>x</p>",
            language="en",
            published_at=when,
            updated_at=when,
            membership=Membership("new"),
        )
    ]
    for k in range(extra):
        entries.append(
            dataclasses.replace(
                entries[0], entry_id=n * 10 + k + 1, source_id=f"s{k}", language=("fr", "de")[k % 2]
            )
        )
    return StoryView(
        story_id=n, uid=f"u{n}", first_seen=when, updated_at=when, entries=tuple(entries)
    )


def newest(stories: list[StoryView], count: int) -> list[StoryView]:
    return sorted(stories, key=lambda s: s.first_seen, reverse=True)[:count]


def test_pages_fill_in_first_seen_order_and_freeze_when_full() -> None:
    log = ArchiveLog(None, page_size=3)
    seen = [story(n) for n in range(7)]
    assert log.observe("c", newest(seen, 12), newest(seen, 3)) == 2
    page0, page1 = log.page("c", 0), log.page("c", 1)
    assert page0 is not None
    assert page1 is not None
    assert [s.uid for s in page0] == ["u0", "u1", "u2"]
    assert [s.uid for s in page1] == ["u3", "u4", "u5"]
    assert log.page("c", 2) is None
    assert log.page("c", -1) is None
    assert log.page("other", 0) is None


def test_a_frozen_page_keeps_the_content_it_had() -> None:
    log = ArchiveLog(None, page_size=2)
    seen = [story(n) for n in range(3)]
    log.observe("c", seen, seen)
    frozen = log.page("c", 0)
    # Story 0 later gains two language versions and a new title; story 2 (the open tail)
    # takes the new content, the frozen page does not.
    changed = [story(0, title="Renamed", extra=2), seen[1], story(2, title="Tail now", extra=1)]
    more = [*changed, story(3)]
    assert log.observe("c", more, more) == 2
    assert log.page("c", 0) == frozen
    page1 = log.page("c", 1)
    assert page1 is not None
    assert [s.entries[0].title for s in page1] == ["Tail now", "Story 3"]
    assert len(page1[0].entries) == 2
    # Snapshots drop the clustering evidence: it is in no output.
    assert all(e.membership is None for s in page1 for e in s.entries)


def test_a_tail_story_gone_from_the_live_feed_closes_its_page_early() -> None:
    log = ArchiveLog(None, page_size=5)
    seen = [story(n) for n in range(3)]
    assert log.observe("c", seen, seen) == 0
    # Story 1 is no longer shown (newer stories pushed it out): the tail freezes as it is, so
    # the live feed and the archives together still hold it.
    assert log.observe("c", seen, [seen[0], seen[2]]) == 1
    page0 = log.page("c", 0)
    assert page0 is not None
    assert [s.uid for s in page0] == ["u0", "u1", "u2"]


def test_nothing_is_written_twice_and_old_stories_keep_their_place() -> None:
    log = ArchiveLog(None, page_size=2)
    first = [story(n) for n in range(2)]
    log.observe("c", first, first)
    # The same stories again, and one more: only the new one gets a place.
    again = [*first, story(2)]
    assert log.observe("c", again, again) == 1
    assert log.observe("c", again, again) == 1
    page0 = log.page("c", 0)
    assert page0 is not None
    assert [s.uid for s in page0] == ["u0", "u1"]


def test_pages_survive_a_restart_and_processes_share_the_folder(tmp_path: Path) -> None:
    seen = [story(n) for n in range(5)]
    one = ArchiveLog(tmp_path, page_size=2)
    assert one.observe("c", seen[:3], seen[:3]) == 1
    frozen = (tmp_path / "c" / "pages" / "0.json").read_bytes()
    # A second log on the same folder (a restart, or another process) continues the sequence.
    two = ArchiveLog(tmp_path, page_size=2)
    assert two.page_count("c") == 1
    assert two.observe("c", seen, seen) == 2
    assert one.page_count("c") == 2
    assert one.page("c", 1) == two.page("c", 1)
    page1 = two.page("c", 1)
    assert page1 is not None
    assert [s.uid for s in page1] == ["u2", "u3"]
    assert (tmp_path / "c" / "pages" / "0.json").read_bytes() == frozen
    assert one.page("c", 0) == ArchiveLog(tmp_path, page_size=2).page("c", 0)


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="page_size"):
        ArchiveLog(None, page_size=0)


@pytest.mark.parametrize(
    ("configured", "database", "expected"),
    [
        ("/srv/archives", "sqlite:///var/aggregator.db", Path("/srv/archives")),
        ("", "sqlite:///var/aggregator.db", Path("var/aggregator.archives")),
        ("", "sqlite:////tmp/x/demo.db", Path("/tmp/x/demo.archives")),
        ("", "sqlite://", None),
        ("", "sqlite:///:memory:", None),
        (
            "",
            "postgresql+psycopg://u:secret@db:5432/aggregator",
            Path("var/archives/db-aggregator"),
        ),
        ("", "postgresql+psycopg:///x?host=/run/pg", Path("var/archives/local-x")),
    ],
)
def test_archive_folder(configured: str, database: str, expected: Path | None) -> None:
    assert archive_dir_for(configured, database) == expected


def test_frozen_pages_keep_their_media_and_media_less_pages_their_bytes(tmp_path: Path) -> None:
    audio = Enclosure("https://cdn.example/ep.mp3", "audio/mpeg", 5)
    picture = MediaImage("https://cdn.example/ep.jpg", 10, 20)
    with_media = dataclasses.replace(
        story(0),
        entries=(dataclasses.replace(story(0).entries[0], enclosures=(audio,), image=picture),),
    )
    seen = [with_media, story(1)]
    ArchiveLog(tmp_path, page_size=2).observe("c", seen, seen)
    page = ArchiveLog(tmp_path, page_size=2).page("c", 0)
    assert page is not None
    assert page[0].entries[0].enclosures == (audio,)
    assert page[0].entries[0].image == picture
    assert page[1].entries[0].enclosures == ()
    frozen = (tmp_path / "c" / "pages" / "0.json").read_text(encoding="utf-8")
    # Only the entry with media writes the keys: pages frozen before media existed match.
    assert frozen.count('"enclosures"') == 1
