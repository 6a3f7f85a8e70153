"""``aggregator stories``: list and explain stories (why each entry is in it, why each category
took it) and the editors' corrections: merge, split, pin, hide, undo, list."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.cli.context import Context, when_text
from aggregator.errors import ConfigError
from aggregator.types import Membership

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from aggregator.store import Store
    from aggregator.store.overrides import OverrideView
    from aggregator.store.stories import CategoryDecision
    from aggregator.types import StoryView


def cmd_stories(ctx: Context) -> int:
    store = ctx.store(auto_upgrade=False)
    try:
        if ctx.args.show is not None:
            return _show_story(store, ctx.args.show, as_json=ctx.args.show_json)
        for story, categories in _with_categories(store, store.iter_stories()):
            record = {
                "id": story.story_id,
                "uid": story.uid,
                "title": story.representative.title,
                "entries": [
                    {"id": e.entry_id, "url": e.url, "source": e.source_id,
                     "language": e.language, "title": e.title,
                     "published": e.published_at.isoformat(),
                     "evidence": _evidence(e.membership),
                     "categories": [c.as_json() for c in categories.get(e.entry_id, ())]}
                    for e in story.entries
                ],
            }
            if ctx.args.json:
                print(json.dumps(record, ensure_ascii=False))
            else:
                print(f"#{story.story_id} {story.representative.title} "
                      f"({len(story.entries)} entries)")
                for e in story.entries:
                    print(f"    [{e.language or '?'}] {e.source_id}: {e.title}")
    finally:
        store.close()
    return 0


def _evidence(membership: Membership | None) -> dict[str, object] | None:
    """Why the entry is in its story: the signal, score and matched entry, then what the
    clustering stage recorded (decision, parts of the score, languages, nearest candidate)."""
    if membership is None:
        return None
    details = dict(membership.evidence or {})
    details.pop("decision", None)
    return {"signal": membership.signal, "score": membership.score,
            "matched_entry_id": membership.matched_entry_id,
            "decision": membership.decision,
            "decided_at": membership.decided_at.isoformat() if membership.decided_at else None,
            **details}


def _with_categories(store: Store, views: Iterable[StoryView]
                     ) -> Iterator[tuple[StoryView, dict[int, tuple[CategoryDecision, ...]]]]:
    """Each story with its entries' category decisions, read a page of stories at a time."""
    page: list[StoryView] = []
    for view in (*views, None):
        if view is not None:
            page.append(view)
        if page and (view is None or len(page) >= STORIES_PAGE):
            found = store.entry_categories([e.entry_id for s in page for e in s.entries])
            for story in page:
                yield story, found
            page = []


STORIES_PAGE = 500


def _show_story(store: Store, story_id: int, *, as_json: bool = False) -> int:
    from aggregator.clustering.explain import explain, explain_categories

    detail = store.story_detail(story_id)
    if detail is None:
        print(f"no story {story_id}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(detail.as_json(), ensure_ascii=False))
        return 0
    print(f"story #{story_id} ({detail.uid}): {detail.title}")
    if detail.merged_into_id is not None:
        print(f"  merged into story #{detail.merged_into_id} (by {detail.merged_by})")
    print(f"  {len(detail.entries)} entries")
    for entry in detail.entries:
        row = entry.evidence_row()
        print(f"  entry #{entry.entry_id} [{entry.source_id}] {entry.title}")
        print(f"      {entry.url}")
        print(f"      {date_line(entry.published_at, entry.date_source)}")
        for line in (*explain(row), *explain_categories(row)):
            print(f"      {line}")
        if not entry.categories:
            print("      in no category by its rules")
    if detail.hidden_everywhere:
        print("  hidden from every category")
    for category in detail.hidden_in:
        print(f"  hidden in {category}")
    for category in detail.pinned_in:
        print(f"  pinned first in {category}")
    print(f"  corrections: {len(detail.corrections) or 'none'}")
    for override in detail.corrections:
        print(f"    {_correction_line(override)}")
    return 0


# What each NormalizedEntry.date_source means to an editor reading ``stories show``.
DATE_SOURCES = {
    "feed": "the feed's date",
    "feed-localized": "the feed's date, read from localized month names",
    "first-seen": "no date in the feed: the time the entry was first seen",
    "backlog": ("no date in the feed, found on the source's first poll: dated below the "
                "feed's dated entries so a backlog never looks like today's news"),
}


def date_line(published: datetime, source: str | None) -> str:
    where = DATE_SOURCES.get(source or "", "recorded before date sources were kept")
    return f"published {when_text(published)} ({where})"


def _correction_line(override: OverrideView) -> str:
    line = (f"#{override.id} {override.kind}: {override.describe()}, by {override.created_by} "
            f"at {when_text(override.created_at)}")
    if override.note:
        line += f" ({override.note})"
    if override.undone_at is not None:
        line += f"; undone by {override.undone_by} at {when_text(override.undone_at)}"
    return line


def _by(ctx: Context) -> str:
    return str(ctx.args.by or os.environ.get("USER") or "cli")


def _known_category(ctx: Context, category: str | None) -> None:
    if category is None:
        return
    known = [c.id for c in ctx.catalog().categories]
    if category not in known:
        raise ConfigError(f"unknown category {category!r}; known: {', '.join(known)}",
                          key="--category")


def cmd_stories_correct(ctx: Context) -> int:
    """``stories merge|split|pin|hide|undo``: an editor's correction, applied at once."""
    from aggregator.clock import utc_now

    args, by, now = ctx.args, _by(ctx), utc_now()
    command = args.stories_command
    if command in {"pin", "hide"}:
        _known_category(ctx, args.category)
    store = ctx.store(auto_upgrade=False)
    try:
        if command == "merge":
            override = store.merge_stories(args.id, args.other, by=by, now=now, note=args.note)
            detail = store.story_detail(args.id)
            kept = detail.merged_into_id if detail and detail.merged_into_id else args.id
            print(f"merged stories #{args.id} and #{args.other} into #{kept} "
                  f"(correction #{override})")
        elif command == "split":
            story = store.split_entry(args.entry_id, by=by, now=now, note=args.note)
            print(f"split entry #{args.entry_id} into new story #{story}")
        elif command == "pin":
            override = store.pin_story(args.id, args.category, by=by, now=now, note=args.note)
            print(f"pinned story #{args.id} first in {args.category} (correction #{override})")
        elif command == "hide":
            override = store.hide_story(args.id, args.category, by=by, now=now, note=args.note)
            where = f"in {args.category}" if args.category else "in every category"
            print(f"hid story #{args.id} {where} (correction #{override})")
        elif not store.undo_override(args.override_id, by=by, now=now):
            print(f"error: no active correction {args.override_id}", file=sys.stderr)
            return 1
        else:
            print(f"undid correction #{args.override_id}")
    except ValueError as exc:  # the store names the id it refused; nothing was changed
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def cmd_stories_corrections(ctx: Context) -> int:
    store = ctx.store(auto_upgrade=False)
    try:
        rows = store.overrides(include_undone=ctx.args.all)
    finally:
        store.close()
    for row in rows:
        print(json.dumps(row.as_json(), ensure_ascii=False) if ctx.args.json
              else _correction_line(row))
    if not rows and not ctx.args.json:
        print("no corrections" if ctx.args.all else "no active corrections")
    return 0
