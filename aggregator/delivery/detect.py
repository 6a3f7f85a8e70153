"""Which changes become webhook events: stories published in a category or gaining a version
or a source, merges, splits and hides, and source-health changes.

The changes come from several writers (polls, the clustering stage, editors' corrections, on
one or several workers), so the detector reads what they committed and compares it with its
own marks; the events, their deliveries and the new marks are then written in one
transaction (``WebhookStore.record``). Keys are derived from the change itself, so a detector
that crashed, or two that looked at the same time, write each event once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from aggregator.delivery.health import DEFAULT_FAILURES, DEFAULT_SILENT_FACTOR, assess
from aggregator.store.webhooks import NewEvent, SourceFacts, StoryFacts, WebhookStore
from aggregator.types import CorrectionKind, EventKind, SourceHealth

log = logging.getLogger("aggregator.webhooks")

STORY_CURSOR = "cursor:stories"
CORRECTION_CURSOR = "cursor:corrections"
SOURCE_CURSOR = "cursor:sources"
# Entries committed by another worker may carry a clustering time a little before ours.
OVERLAP = timedelta(minutes=10)
# Reading the whole overlap at every look re-read every story of a poll round (and of the
# clustering after it) every few seconds for ten minutes. A look reads back RECENT past its
# cursor; every FULL_EVERY a look reads back OVERLAP past the previous such look, so a commit
# up to OVERLAP late is still found, within FULL_EVERY.
RECENT = timedelta(seconds=30)
FULL_EVERY = timedelta(minutes=2)
DEFAULT_HEALTH_EVERY = timedelta(seconds=60)
# Changed stories read, compared and recorded at a time.
STORY_CHUNK = 1000
# Sources read and assessed at a time: the whole list at 10,000 sources held ≈ 12 MB of rows
# and marks at each health look (docs/benchmarks.md), pages that the allocator kept.
SOURCE_CHUNK = 1000


def story_data(story: StoryFacts) -> dict[str, Any]:
    """A story as every story event's ``data.story`` shows it."""
    links = [link for _, _, _, link in story.entries.values() if link]
    return {
        "id": story.id,
        "uid": story.uid,
        "title": story.title,
        "published_at": story.published_at.isoformat(),
        "link": links[0] if links else None,
        "categories": sorted(story.categories),
        "languages": list(story.languages),
        "sources": sorted(story.sources),
        "entry_count": len(story.entries),
    }


def _story_state(story: StoryFacts) -> dict[str, Any]:
    return {
        "entries": {str(eid): facts[1] for eid, facts in sorted(story.entries.items())},
        "categories": sorted(story.categories),
    }


class Detector:
    """Finds new events since its marks; ``run`` writes them and returns how many."""

    def __init__(
        self,
        hooks: WebhookStore,
        *,
        failures: int = DEFAULT_FAILURES,
        silent_factor: float = DEFAULT_SILENT_FACTOR,
        health_every: timedelta = DEFAULT_HEALTH_EVERY,
    ) -> None:
        self.hooks = hooks
        self.failures = failures
        self.silent_factor = silent_factor
        self.health_every = health_every
        # Events recorded by this run before its last ``record`` (chunks of changed stories).
        self._early = 0
        # When this detector last read the whole overlap (None: not yet, so the next does).
        self._full_at: datetime | None = None

    def run(self, now: datetime) -> int:
        cursors = self.hooks.marks([STORY_CURSOR, CORRECTION_CURSOR, SOURCE_CURSOR])
        events: list[NewEvent] = []
        marks: dict[str, dict[str, Any]] = {}
        full = self._full_at is None or now - self._full_at >= FULL_EVERY
        self._stories(cursors.get(STORY_CURSOR), now, events, marks, full=full)
        self._corrections(cursors.get(CORRECTION_CURSOR), events, marks)
        last = cursors.get(SOURCE_CURSOR)
        if last is None or now - datetime.fromisoformat(last["at"]) >= self.health_every:
            self._sources(now, events, marks)
            marks[SOURCE_CURSOR] = {"at": now.isoformat()}
        new = self._early + self.hooks.record(events, marks, now)
        self._early = 0
        if full:
            self._full_at = now
        if new:
            log.info("action=webhook_detect outcome=ok events=%d", new)
        return new

    def _stories(
        self,
        cursor: dict[str, Any] | None,
        now: datetime,
        events: list[NewEvent],
        marks: dict[str, dict[str, Any]],
        *,
        full: bool,
    ) -> None:
        marks[STORY_CURSOR] = {"at": now.isoformat()}
        if cursor is None:
            # The first look starts now: enabling webhooks does not replay the archive.
            return
        at = datetime.fromisoformat(cursor["at"])
        if not full:
            since = at - RECENT
        elif self._full_at is None:
            since = at - OVERLAP
        else:
            # Whatever was committed since the last full look, at most OVERLAP late.
            since = min(at, self._full_at) - OVERLAP
        changed = self.hooks.changed_stories(since)
        for start in range(0, len(changed), STORY_CHUNK):
            if start:
                # A big clustering run changes tens of thousands of stories: each chunk's
                # events and marks are recorded before the next is read, so memory holds one
                # chunk. The cursor goes with the last ``record``: a crash reads them again,
                # and their marks and event keys make that harmless. ``run`` looks at stories
                # first, so ``events`` holds only theirs here.
                chunk_marks = {k: v for k, v in marks.items() if k.startswith("story:")}
                self._early += self.hooks.record(events, chunk_marks, now)
                events.clear()
                for key in chunk_marks:
                    del marks[key]
            facts = self.hooks.story_facts(changed[start : start + STORY_CHUNK])
            seen = self.hooks.marks([f"story:{story_id}" for story_id in facts])
            for story in facts.values():
                subject = f"story:{story.id}"
                state = _story_state(story)
                previous = seen.get(subject)
                if previous == state:
                    continue
                marks[subject] = state
                events.extend(self._story_events(story, previous))
        merged = self.hooks.merged_since(since)
        holders = self.hooks.story_facts(sorted({into_id for _, into_id, _, _, _ in merged}))
        for uid, into_id, into_uid, by, when in merged:
            holder = holders.get(into_id)
            events.append(
                NewEvent(
                    key=f"story.merged:{uid}:{into_uid}:{when.isoformat()}",
                    kind=EventKind.STORY_MERGED,
                    payload={
                        "story": {"uid": uid},
                        "into": {"uid": into_uid},
                        "by": by or "cluster",
                    },
                    # The filters see the merged story's categories and languages.
                    categories=tuple(sorted(holder.categories)) if holder else (),
                    languages=holder.languages if holder else (),
                )
            )

    @staticmethod
    def _story_events(story: StoryFacts, previous: dict[str, Any] | None) -> list[NewEvent]:
        data = story_data(story)
        langs = story.languages
        before = set(previous["categories"]) if previous else set()
        found = [
            NewEvent(
                key=f"story.published:{story.uid}:{category}",
                kind=EventKind.STORY_PUBLISHED,
                payload={"story": data, "category": category},
                categories=(category,),
                languages=langs,
            )
            for category in sorted(story.categories - before)
        ]
        if previous is None:
            return found
        cats = tuple(sorted(story.categories))
        old_entries: dict[str, str] = previous["entries"]
        old_sources = {facts[0] for eid, facts in story.entries.items() if str(eid) in old_entries}
        new_sources: set[str] = set()
        for eid, (source, digest, lang, link) in sorted(story.entries.items()):
            if str(eid) in old_entries and old_entries[str(eid)] == digest:
                continue
            entry = {
                "id": eid,
                "source_id": source,
                "language": lang,
                "link": link,
                "content_hash": digest,
            }
            if source not in old_sources and source not in new_sources:
                new_sources.add(source)
                found.append(
                    NewEvent(
                        key=f"story.source:{story.uid}:{source}",
                        kind=EventKind.STORY_SOURCE,
                        payload={"story": data, "entry": entry},
                        categories=cats,
                        languages=langs,
                    )
                )
            else:
                found.append(
                    NewEvent(
                        key=f"story.version:{story.uid}:{eid}:{digest[:32]}",
                        kind=EventKind.STORY_VERSION,
                        payload={"story": data, "entry": entry},
                        categories=cats,
                        languages=langs,
                    )
                )
        return found

    def _corrections(
        self,
        cursor: dict[str, Any] | None,
        events: list[NewEvent],
        marks: dict[str, dict[str, Any]],
    ) -> None:
        if cursor is None:
            marks[CORRECTION_CURSOR] = {"id": self.hooks.last_correction_id()}
            return
        last = int(cursor["id"])
        rows = self.hooks.corrections_after(last, [CorrectionKind.SPLIT, CorrectionKind.HIDE])
        stories = self.hooks.story_facts(
            sorted({row["story_id"] for row in rows if row["story_id"] is not None})
        )
        for row in rows:
            last = max(last, int(row["id"]))
            by = {"editor": row["created_by"], "note": row["note"]}
            story = stories.get(row["story_id"])
            cats = tuple(sorted(story.categories)) if story else ()
            langs = story.languages if story else ()
            if row["kind"] == CorrectionKind.SPLIT:
                entry_id = row["entry_id"]
                events.append(
                    NewEvent(
                        key=f"story.split:{row['id']}",
                        kind=EventKind.STORY_SPLIT,
                        payload={
                            "story": {"uid": row["story_uid"]},
                            "entry_id": entry_id,
                            "new_story": {"uid": self.hooks.entry_story_uid(entry_id)},
                            **by,
                        },
                        categories=cats,
                        languages=langs,
                    )
                )
            else:
                category = row["category"]
                events.append(
                    NewEvent(
                        key=f"story.hidden:{row['id']}",
                        kind=EventKind.STORY_HIDDEN,
                        payload={"story": {"uid": row["story_uid"]}, "category": category, **by},
                        categories=(category,) if category else cats,
                        languages=langs,
                    )
                )
        marks[CORRECTION_CURSOR] = {"id": last}

    def _sources(
        self, now: datetime, events: list[NewEvent], marks: dict[str, dict[str, Any]]
    ) -> None:
        after = ""
        while sources := self.hooks.source_facts(after, SOURCE_CHUNK):
            after = sources[-1].id
            self._source_page(sources, now, events, marks)

    def _source_page(
        self,
        sources: list[SourceFacts],
        now: datetime,
        events: list[NewEvent],
        marks: dict[str, dict[str, Any]],
    ) -> None:
        seen = self.hooks.marks([f"source:{s.id}" for s in sources])
        for source in sources:
            alert = assess(source, now, failures=self.failures, silent_factor=self.silent_factor)
            subject = f"source:{source.id}"
            previous = seen.get(subject)
            before = previous["health"] if previous else SourceHealth.OK.value
            if previous is not None and before == alert.health:
                continue
            seq = int(previous["seq"]) + 1 if previous else 1
            marks[subject] = {"health": alert.health.value, "seq": seq, "detail": alert.detail}
            if previous is None and alert.health == SourceHealth.OK:
                continue
            events.append(
                NewEvent(
                    key=f"source.health:{source.id}:{seq}",
                    kind=EventKind.SOURCE_HEALTH,
                    payload={
                        "source": {
                            "id": source.id,
                            "url": source.url,
                            "title": source.title,
                            "categories": list(source.categories),
                            "language": source.language,
                        },
                        "health": alert.health.value,
                        "previous": before,
                        "detail": alert.detail,
                    },
                    categories=source.categories,
                    languages=(source.language,) if source.language else (),
                )
            )
