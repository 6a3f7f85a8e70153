"""``aggregator stories``: list and explain stories (why each entry is in it, why each category
took it) and the editors' corrections: merge, split, pin, hide, undo, list."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.cli.context import Context, when_text
from aggregator.safety.terminal import terminal_json, terminal_text
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
                    {
                        "entry_id": e.entry_id,
                        "url": e.url,
                        "source_id": e.source_id,
                        "language": e.language,
                        "title": e.title,
                        "published_at": e.published_at.isoformat(),
                        "evidence": _evidence(e.membership),
                        "categories": [c.as_json() for c in categories.get(e.entry_id, ())],
                    }
                    for e in story.entries
                ],
            }
            if ctx.args.json:
                print(terminal_json(record))
            else:
                print(
                    terminal_text(
                        f"#{story.story_id} {story.representative.title} "
                        f"({len(story.entries)} entries)"
                    )
                )
                for e in story.entries:
                    print(terminal_text(f"    [{e.language or '?'}] {e.source_id}: {e.title}"))
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
    return {
        "signal": membership.signal,
        "score": membership.score,
        "matched_entry_id": membership.matched_entry_id,
        "decision": membership.decision,
        "decided_at": membership.decided_at.isoformat() if membership.decided_at else None,
        **details,
    }


def _with_categories(
    store: Store, views: Iterable[StoryView]
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
    from aggregator.clustering.explain import explain, explain_categories, story_json

    detail = store.story_detail(story_id)
    if detail is None:
        print(f"no story {story_id}", file=sys.stderr)
        return 1
    if as_json:
        print(terminal_json(story_json(detail)))
        return 0
    _say(f"story #{story_id} ({detail.uid}): {detail.title}")
    if detail.merged_into_id is not None:
        _say(f"  merged into story #{detail.merged_into_id} (by {detail.merged_by})")
    _say(f"  {len(detail.entries)} entries")
    for entry in detail.entries:
        row = entry.evidence_row()
        _say(f"  entry #{entry.entry_id} [{entry.source_id}] {entry.title}")
        _say(f"      {entry.url}")
        _say(f"      {date_line(entry.published_at, entry.date_source)}")
        for line in (*explain(row), *explain_categories(row)):
            _say(f"      {line}")
        if not entry.categories:
            _say("      in no category by its rules")
    if detail.hidden_everywhere:
        _say("  hidden from every category")
    for category in detail.hidden_in:
        _say(f"  hidden in {category}")
    for category in detail.pinned_in:
        _say(f"  pinned first in {category}")
    _say(f"  corrections: {len(detail.corrections) or 'none'}")
    for override in detail.corrections:
        _say(f"    {_correction_line(override)}")
    return 0


def _say(line: str) -> None:
    """Print a line that quotes feed or editor text (titles, URLs, notes, reasons)."""
    print(terminal_text(line))


# What each NormalizedEntry.date_source means to an editor reading ``stories show``.
DATE_SOURCES = {
    "feed": "the feed's date",
    "feed-localized": "the feed's date, read from localized month names",
    "first-seen": "no date in the feed: the time the entry was first seen",
    "backlog": (
        "no date in the feed, found on the source's first poll: dated below the "
        "feed's dated entries so a backlog never looks like today's news"
    ),
}


def date_line(published: datetime, source: str | None) -> str:
    where = DATE_SOURCES.get(source or "", "recorded before date sources were kept")
    return f"published {when_text(published)} ({where})"


def _correction_line(override: OverrideView) -> str:
    line = (
        f"#{override.id} {override.kind}: {override.describe()}, by {override.created_by} "
        f"at {when_text(override.created_at)}"
    )
    if override.note:
        line += f" ({override.note})"
    if override.undone_at is not None:
        line += f"; undone by {override.undone_by} at {when_text(override.undone_at)}"
    return line


def cmd_stories_correct(ctx: Context) -> int:
    """``stories merge|split|pin|hide|undo``: an editor's correction, applied at once, through
    the same operations (and refusals) as the API and the admin pages."""
    from aggregator.editorial.operations import Workbench

    args, by = ctx.args, ctx.editor
    catalog = ctx.catalog()
    store = ctx.store(auto_upgrade=False)
    bench = Workbench(store=store, catalog=lambda: catalog, config_dir=ctx.settings.config_dir)
    try:
        command = args.stories_command
        if command == "merge":
            done = bench.merge(args.id, args.other, by=by, note=args.note)
        elif command == "split":
            done = bench.split(None, args.entry_id, by=by, note=args.note)
        elif command == "pin":
            done = bench.pin(args.id, args.category, by=by, note=args.note)
        elif command == "hide":
            done = bench.hide(args.id, args.category, by=by, note=args.note)
        else:
            done = bench.undo(args.override_id, by=by)
    finally:
        store.close()
    _say(done.message)
    return 0


def cmd_stories_search(ctx: Context) -> int:
    """``stories search WORDS``: the entries holding every word, newest first, each with its
    story (the id to merge, split, pin or hide), as ``GET /api/search`` answers."""
    from aggregator.editorial.operations import Workbench

    catalog = ctx.catalog()
    store = ctx.store(auto_upgrade=False)
    bench = Workbench(store=store, catalog=lambda: catalog, config_dir=ctx.settings.config_dir)
    try:
        hits, _ = bench.search(" ".join(ctx.args.words), ctx.args.limit, include_hidden=True)
    finally:
        store.close()
    for hit in hits:
        if ctx.args.json:
            print(terminal_json(hit.as_json()))
            continue
        story = (
            f"story #{hit.story_id} {hit.story_title}"
            if hit.story_id is not None
            else "not clustered yet"
        )
        _say(
            f"#{hit.entry_id} [{hit.language or '?'}] {hit.source_id} "
            f"{hit.published_at:%Y-%m-%d %H:%M}  {hit.title}\n    {story}"
        )
    if not hits and not ctx.args.json:
        print("nothing found")
    return 0


def cmd_rules_apply(ctx: Context) -> int:
    """``rules apply [CATEGORY] --days N``: the running rules of one category (or of each)
    applied to the entries stored over the last N days, each category's diff one correction
    that ``stories undo`` takes back."""
    from aggregator.editorial.operations import Workbench, applied_json

    args, by = ctx.args, ctx.editor
    catalog = ctx.catalog()
    store = ctx.store(auto_upgrade=False)
    bench = Workbench(store=store, catalog=lambda: catalog, config_dir=ctx.settings.config_dir)
    wanted = [args.category] if args.category else [c.id for c in catalog.categories]
    try:
        for category in wanted:
            done, diff = bench.apply_rules(category, args.days, by=by, note=args.note)
            if args.json:
                print(terminal_json(applied_json(done, diff, args.days)))
            else:
                _say(done.message)
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
        print(
            terminal_json(row.as_json()) if ctx.args.json else terminal_text(_correction_line(row))
        )
    if not rows and not ctx.args.json:
        print("no corrections" if ctx.args.all else "no active corrections")
    return 0
