"""The ``aggregator`` command line: run, poll, cluster, publish, check, sources, stories, rules,
db, eval, demo.

Every command takes ``--config DIR`` and ``--database URL`` over the environment settings.
Exit codes: 0 success, 1 the command ran and found problems, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import __version__
from aggregator.catalog import Catalog, load_catalog
from aggregator.errors import AggregatorError, ConfigError, StoreError
from aggregator.logs import configure as configure_logging
from aggregator.settings import Settings
from aggregator.store import (
    PollOutcome,
    SourceStatus,
    Store,
    current_revision,
    head_revision,
    is_known_revision,
    open_store,
)
from aggregator.store import upgrade as upgrade_schema
from aggregator.types import Membership

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from aggregator.discover import DiscoveredFeed
    from aggregator.store.overrides import OverrideView
    from aggregator.store.stories import CategoryDecision
    from aggregator.types import StoryView

log = logging.getLogger("aggregator.cli")


@dataclass
class Context:
    settings: Settings
    args: argparse.Namespace

    def catalog(self) -> Catalog:
        return load_catalog(self.settings.config_dir)

    def store(self, *, auto_upgrade: bool) -> Store:
        store = open_store(self.settings.database_url)
        revision = current_revision(store.engine)
        head = head_revision()
        if revision is None and auto_upgrade:
            log.info("action=db-upgrade outcome=start reason=empty-database")
            upgrade_schema(store.engine)
        elif revision is None:
            raise StoreError("the database has no schema yet; run `aggregator db upgrade`")
        elif revision != head:
            if not is_known_revision(revision):
                raise StoreError(f"the database schema {revision} is newer than this "
                                 f"aggregator ({__version__}); upgrade the aggregator")
            raise StoreError(f"the database schema is at {revision}, this version needs "
                             f"{head}; run `aggregator db upgrade`")
        return store


# -- commands -----------------------------------------------------------------------------

def cmd_check(ctx: Context) -> int:
    catalog = ctx.catalog()
    print(f"{ctx.settings.config_dir}: OK, {len(catalog.sources)} sources, "
          f"{len(catalog.categories)} categories")
    return 0


def cmd_db_upgrade(ctx: Context) -> int:
    store = open_store(ctx.settings.database_url)
    try:
        before = current_revision(store.engine)
        upgrade_schema(store.engine)
        after = current_revision(store.engine)
    finally:
        store.close()
    print(f"database schema: {before or 'empty'} -> {after}")
    return 0


def progress_for(total: int) -> ProgressBar | None:
    """A live progress line on a terminal (per-source logs quieted); logs alone otherwise."""
    if not sys.stdout.isatty():
        return None
    logging.getLogger("aggregator.refresh").setLevel(logging.WARNING)
    return ProgressBar(total)


def step_progress(label: str, unit: str) -> Callable[[int, int], None] | None:
    """``{label} [#####.....] 120/400 {unit}`` redrawn in place on a terminal."""
    if not sys.stdout.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = ProgressBar.WIDTH
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}",
              end=end, flush=True)

    return show


def cluster_progress() -> Callable[[int, int], None] | None:
    return step_progress("clustering", "entries")


class ProgressBar:
    """``[#####.....] 120/1000 sources · 340 new · 2 errors`` redrawn in place."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = self.new = self.errors = 0

    def __call__(self, outcome: PollOutcome) -> None:
        self.done += 1
        self.new += outcome.new_entries
        self.errors += outcome.result == "error"
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if self.done >= self.total else ""
        print(f"\r[{bar}] {self.done}/{self.total} sources · {self.new} new · "
              f"{self.errors} errors", end=end, flush=True)


def cmd_poll(ctx: Context) -> int:
    from aggregator.refresh import utc_now
    from aggregator.service import Service

    catalog = ctx.catalog()
    store = ctx.store(auto_upgrade=True)
    service = Service(ctx.settings, store, catalog)
    try:
        due = store.due_sources(utc_now(), everything=ctx.args.all)
        if not due:
            print("no source is due (use --all to poll every active source)")
        else:
            # Sharing PostgreSQL, other workers may take some: no bar to fill then.
            progress = progress_for(len(due)) if service.lease is None else None
            summary = service.poll_due(everything=ctx.args.all, on_outcome=progress)
            print(f"polled {len(summary.outcomes)} sources: {summary.new_entries} new entries, "
                  f"{summary.updated_entries} updated, {summary.count('not_modified')} not "
                  f"modified, {summary.count('unchanged')} unchanged, "
                  f"{summary.count('deferred')} deferred, {summary.errors} errors")
            for outcome in summary.outcomes:
                if outcome.result == "error":
                    print(f"  {outcome.source_id}: {outcome.error_kind}: {outcome.error}")
        # The stories of what was just stored, before exiting (entries left by an earlier,
        # interrupted run too).
        clustered = service.cluster(on_progress=cluster_progress())
        if clustered.entries:
            print(clustered.describe())
    finally:
        service.close()
        store.close()
    return 0


def cmd_publish(ctx: Context) -> int:
    from aggregator.service import make_outputs

    out: Path = ctx.args.out
    store = ctx.store(auto_upgrade=False)
    try:
        outputs = make_outputs(ctx.settings, store, ctx.catalog())
        written: list[str] = []
        same = 0
        for relative, document in outputs.all_documents():
            target = out / relative
            if target.exists() and target.read_bytes() == document.body:
                same += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(target.name + ".tmp")
            temporary.write_bytes(document.body)
            os.replace(temporary, target)  # readers never see a half-written feed
            written.append(relative)
    finally:
        store.close()
    print(f"published to {out}: {len(written)} written, {same} unchanged")
    changed = outputs.live_feed_urls(written)
    if ctx.settings.websub_hub and changed:
        from aggregator.websub import ping_hub

        sent = ping_hub(ctx.settings.websub_hub, changed, user_agent=ctx.settings.user_agent)
        print(f"pinged {ctx.settings.websub_hub}: {sent} of {len(changed)} feeds accepted")
    return 0


def cmd_sources_list(ctx: Context) -> int:
    store = ctx.store(auto_upgrade=False)
    try:
        statuses = store.sources()
    finally:
        store.close()
    if ctx.args.json:
        for status in statuses:
            print(json.dumps(status.as_json(), ensure_ascii=False))
        return 0
    print(_health_table(statuses))
    return 0


def cmd_sources_add(ctx: Context) -> int:
    from aggregator.service import make_fetcher
    from aggregator.subscribe import NewSource, append_source, find_feed, slug_for

    args = ctx.args
    catalog = ctx.catalog()
    unknown = [c for c in args.category if c not in {cat.id for cat in catalog.categories}]
    if unknown:
        raise ConfigError(f"unknown category {unknown[0]!r}; known: "
                          + ", ".join(c.id for c in catalog.categories), key="--category")
    fetcher = make_fetcher(ctx.settings)
    try:
        feed_url, title = find_feed(fetcher, args.url, _chooser(args.pick))
    finally:
        fetcher.close()
    source = NewSource(
        id=args.id or slug_for(args.title or title, feed_url, {s.id for s in catalog.sources}),
        url=feed_url, title=args.title or title, categories=tuple(args.category),
        language=args.language, interval=args.interval)
    append_source(ctx.settings.config_dir, catalog, source)
    print(f"added source {source.id!r} ({source.url}) to "
          f"{ctx.settings.config_dir / 'sources.toml'}; the next poll fetches it")
    return 0


def _chooser(pick: int | None) -> Callable[[Sequence[DiscoveredFeed]], DiscoveredFeed]:
    from aggregator.subscribe import SubscribeError

    def choose(candidates: Sequence[DiscoveredFeed]) -> DiscoveredFeed:
        listing = "\n".join(f"  {n}. {c.url}  {c.title or ''}".rstrip()
                             for n, c in enumerate(candidates, 1))
        if pick is not None:
            if not 1 <= pick <= len(candidates):
                raise SubscribeError(f"--pick {pick} is not between 1 and {len(candidates)}:"
                                     f"\n{listing}")
            return candidates[pick - 1]
        if not sys.stdin.isatty():
            raise SubscribeError(f"the page links {len(candidates)} feeds; choose one with "
                                 f"--pick N:\n{listing}")
        print(f"The page links {len(candidates)} feeds:\n{listing}")
        while True:
            answer = input(f"Which one (1-{len(candidates)})? ").strip()
            if answer.isdigit() and 1 <= int(answer) <= len(candidates):
                return candidates[int(answer) - 1]

    return choose


# A note after each edit of the files: when they take effect.
_APPLIED = ("a running `aggregator run` applies it within AGGREGATOR_CONFIG_RELOAD_SECONDS; "
            "otherwise the next run or poll does")


def cmd_sources_edit(ctx: Context) -> int:
    """``sources pause|resume|remove ID``: the change is made in sources.toml."""
    from aggregator.configedit import remove_source, set_source_enabled

    folder = ctx.settings.config_dir
    source_id: str = ctx.args.id
    command = ctx.args.sources_command
    if command == "remove":
        remove_source(folder, source_id)
        done = "removed (its stored entries are kept)"
    else:
        set_source_enabled(folder, source_id, command == "resume")
        done = "resumed" if command == "resume" else "paused"
    print(f"source {source_id!r} {done} in {folder / 'sources.toml'}; {_APPLIED}")
    return 0


def cmd_sources_import_opml(ctx: Context) -> int:
    from aggregator.configedit import add_sources
    from aggregator.opmlsources import Configured, plan_import, read_outlines

    args = ctx.args
    folder = ctx.settings.config_dir
    files = []
    for path in args.files:
        outlines, note = read_outlines(path)
        if note:
            print(f"  note: {path}: {note}")
        files.append((path, outlines))
    plan = plan_import(files, Configured.read(folder), category=args.category,
                       folders_as_categories=args.folders_as_categories,
                       on_progress=step_progress("importing", "outlines"))
    for category in plan.categories:
        print(f"  new category {category.id!r} ({category.title})")
    for source in plan.sources:
        print(f"  + {source.id}: {source.title or '(no title)'} <{source.url}> "
              f"in {', '.join(source.categories)}")
    for skipped in plan.duplicates:
        print(f"  = duplicate: {skipped.title or '(no title)'} <{skipped.url}>: {skipped.reason}")
    for skipped in plan.bad:
        print(f"  ! bad URL: {skipped.title or '(no title)'} <{skipped.url}>: {skipped.reason}")
    if args.dry_run:
        print(f"dry run, nothing written: would have {plan.describe()}")
        return 0
    if plan.sources:
        add_sources(folder, plan.sources, categories=plan.categories)
    print(f"{plan.describe()} (from {len(files)} OPML files into {folder}); {_APPLIED}")
    return 0


def cmd_sources_export_opml(ctx: Context) -> int:
    from aggregator.opmlsources import export_opml

    document = export_opml(ctx.catalog())
    out: Path | None = ctx.args.out
    if out is None:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
        return 0
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_bytes(document)
    os.replace(temporary, out)
    print(f"wrote {out}")
    return 0


def cmd_cluster(ctx: Context) -> int:
    from aggregator.refresh import utc_now
    from aggregator.service import make_stage

    store = ctx.store(auto_upgrade=False)
    try:
        if ctx.args.redo:
            pending = store.reset_clustering(utc_now())
            print(f"forgot every clustering decision: {pending} entries to cluster again")
        # The catalog names the categories whose topic match the stage runs.
        summary = make_stage(ctx.settings, store, catalog=ctx.catalog()).run(
            on_progress=cluster_progress())
    finally:
        store.close()
    if summary.skipped:
        print("another worker sharing the database is clustering; it takes what is pending")
        return 0
    print(summary.describe() if summary.entries else "nothing to cluster")
    return 0


def cmd_prune(ctx: Context) -> int:
    from aggregator.refresh import utc_now
    from aggregator.retention import prune

    days = ctx.args.days if ctx.args.days is not None else ctx.settings.retention_days
    if days <= 0:
        print("retention is off (AGGREGATOR_RETENTION_DAYS is 0): nothing pruned; "
              "--days N prunes once")
        return 0
    store = ctx.store(auto_upgrade=False)
    try:
        summary = prune(store, days=days, now=utc_now(), dry_run=ctx.args.dry_run)
    finally:
        store.close()
    print(summary.describe())
    return 0


def cmd_eval_dedup(ctx: Context) -> int:
    from aggregator.clustering import Models
    from aggregator.clustering.evaluation import evaluate_file

    path: Path = ctx.args.file
    if not path.is_file():
        raise ConfigError("no such file", file=str(path))
    try:
        result = evaluate_file(path, Models())
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"not a labelled dedup file: {exc}", file=str(path)) from exc
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _health_table(statuses: Sequence[SourceStatus]) -> str:
    columns = ("ID", "STATE", "HTTP", "ERRORS", "LAST SUCCESS", "NEXT CHECK", "BYTES", "MS",
               "NEW", "UPD")
    rows = [columns]
    for s in statuses:
        rows.append((s.id, s.state, str(s.last_status or "-"), str(s.error_count),
                     _when(s.last_success_at), _when(s.next_check_at),
                     str(s.last_bytes if s.last_bytes is not None else "-"),
                     str(s.last_duration_ms if s.last_duration_ms is not None else "-"),
                     str(s.last_new_entries if s.last_new_entries is not None else "-"),
                     str(s.last_updated_entries if s.last_updated_entries is not None else "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                          strict=True)).rstrip())
        if index == 0:
            continue
        status = statuses[index - 1]
        if status.url != (status.configured_url or status.url):
            lines.append(f"    url: {status.url} (configured: {status.configured_url})")
        if status.last_error:
            lines.append(f"    last error ({status.last_error_kind}): {status.last_error}")
    return "\n".join(lines)


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


def _correction_line(override: OverrideView) -> str:
    line = (f"#{override.id} {override.kind}: {override.describe()}, by {override.created_by} "
            f"at {_when(override.created_at)}")
    if override.note:
        line += f" ({override.note})"
    if override.undone_at is not None:
        line += f"; undone by {override.undone_by} at {_when(override.undone_at)}"
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
    from aggregator.refresh import utc_now

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


def cmd_rules_test(ctx: Context) -> int:
    from aggregator.catalog import parse_duration
    from aggregator.dryrun import changed_rules, describe, rules_dry_run
    from aggregator.refresh import utc_now

    args = ctx.args
    if args.file is not None:
        # The edited copy is checked as the real file would be, against the real sources.
        catalog = load_catalog(ctx.settings.config_dir, categories_path=args.file)
    else:
        catalog = ctx.catalog()
    try:
        category = catalog.category(args.category)
    except KeyError:
        raise ConfigError(f"unknown category {args.category!r}; known: "
                          + ", ".join(c.id for c in catalog.categories),
                          file=str(args.file) if args.file else None, key="CATEGORY") from None
    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--since") from exc
    changed = changed_rules(category, include=args.include, exclude=args.exclude,
                            add_include=args.add_include or (),
                            add_exclude=args.add_exclude or (), min_score=args.min_score)
    store = ctx.store(auto_upgrade=False)
    try:
        result = rules_dry_run(store, catalog, changed, since=timedelta(seconds=window),
                               now=utc_now())
    finally:
        store.close()
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print(describe(result))
    return 0


def cmd_run(ctx: Context) -> int:
    from aggregator.service import Service

    catalog = ctx.catalog()
    store = ctx.store(auto_upgrade=True)
    service = Service(ctx.settings, store, catalog)
    try:
        service.serve()
    finally:
        service.close()
        store.close()
    return 0


def cmd_demo(ctx: Context) -> int:
    from aggregator.demo import run_demo

    return run_demo(ctx.settings, port=ctx.args.port, once=ctx.args.once)


# -- argument parsing -----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the subcommand must not be reset by the subparser.
    common.add_argument("--config", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                        help="editorial folder with sources.toml and categories.toml "
                             "(default: $AGGREGATOR_CONFIG or ./config)")
    common.add_argument("--database", metavar="URL", default=argparse.SUPPRESS,
                        help="database URL (default: $AGGREGATOR_DATABASE_URL or "
                             "sqlite:///var/aggregator.db)")
    common.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        default=argparse.SUPPRESS,
                        help="log verbosity (default: $AGGREGATOR_LOG_LEVEL or INFO)")

    parser = argparse.ArgumentParser(
        prog="aggregator", parents=[common],
        description="Poll feeds, cluster stories across sources and languages, republish.")
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, handler: object) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text,
                                  description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add("run", "run the scheduler and the HTTP server until stopped (SIGINT/SIGTERM)", cmd_run)
    poll = add("poll", "poll due sources once, cluster what they brought, then exit", cmd_poll)
    poll.add_argument("--all", action="store_true", help="poll every active source, due or not")
    clustering = add("cluster", "cluster the entries stored but not yet clustered into stories",
                     cmd_cluster)
    clustering.add_argument("--redo", action="store_true",
                            help="forget every clustering decision and make them all again "
                                 "(after editors' corrections); stored features are reused")
    publish = add("publish", "write every output feed as static files", cmd_publish)
    publish.add_argument("--out", type=Path, required=True, metavar="DIR",
                         help="folder to write feeds/ and feeds.opml into")
    add("check", "validate the configuration files; non-zero exit on any problem", cmd_check)
    pruning = add("prune", "remove entries published longer ago than the retention, and the "
                  "stories they leave empty, leaving tombstones so feeds do not bring them back",
                  cmd_prune)
    pruning.add_argument("--dry-run", action="store_true",
                         help="only count what would be removed")
    pruning.add_argument("--days", type=int, metavar="N",
                         help="retention in days (default: $AGGREGATOR_RETENTION_DAYS)")

    sources = add("sources", "inspect and edit sources", cmd_sources_list)
    source_commands = sources.add_subparsers(dest="sources_command", required=True,
                                             metavar="SUBCOMMAND")
    listing = source_commands.add_parser("list", parents=[common],
                                         help="sources with their health")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=cmd_sources_list)
    adding = source_commands.add_parser(
        "add", parents=[common],
        help="add a feed, or find the feeds a web page links to, and append it to sources.toml")
    adding.add_argument("url", help="the feed's URL or a page that links to it")
    adding.add_argument("--category", action="append", required=True, metavar="ID",
                        help="category to file it under (repeat for several)")
    adding.add_argument("--id", help="source id (default: made from the feed's title)")
    adding.add_argument("--title", help="title (default: the feed's own)")
    adding.add_argument("--language", help="language hint such as en or fr")
    adding.add_argument("--interval", help="how often to check, e.g. 30m or 6h")
    adding.add_argument("--pick", type=int, metavar="N",
                        help="when the page links several feeds, take the N-th")
    adding.set_defaults(handler=cmd_sources_add)
    for verb, what in (("pause", "stop polling a source (enabled = false); nothing is deleted"),
                       ("resume", "poll a paused source again"),
                       ("remove", "remove a source from sources.toml; its stored entries stay")):
        editing = source_commands.add_parser(verb, parents=[common], help=what)
        editing.add_argument("id", metavar="ID", help="the source's id")
        editing.set_defaults(handler=cmd_sources_edit)
    importing = source_commands.add_parser(
        "import-opml", parents=[common],
        help="add the feeds of OPML subscription lists to sources.toml (no network access; "
             "already configured URLs are skipped, so it can be run again)")
    importing.add_argument("files", nargs="+", type=Path, metavar="FILE", help="OPML file")
    importing.add_argument("--category", metavar="ID",
                           help="existing category for the feeds (with --folders-as-categories: "
                                "for the feeds outside any folder)")
    importing.add_argument("--folders-as-categories", action="store_true",
                           help="file each feed under the category named like its folder, "
                                "creating missing ones (without rules: they take every entry)")
    importing.add_argument("--dry-run", action="store_true",
                           help="report what would be added; write nothing")
    importing.set_defaults(handler=cmd_sources_import_opml)
    exporting = source_commands.add_parser(
        "export-opml", parents=[common],
        help="every configured source as OPML 2.0, one folder per category")
    exporting.add_argument("--out", type=Path, metavar="FILE",
                           help="write to FILE (default: standard output)")
    exporting.set_defaults(handler=cmd_sources_export_opml)

    stories = add("stories", "list stories and why their entries were merged", cmd_stories)
    stories.add_argument("--json", action="store_true", help="one JSON object per story per line")
    stories.set_defaults(show=None)
    story_commands = stories.add_subparsers(dest="stories_command", metavar="SUBCOMMAND")
    show = story_commands.add_parser("show", parents=[common],
                                     help="explain one story: why each entry is in it")
    show.add_argument("show", type=int, metavar="ID")
    show.add_argument("--json", dest="show_json", action="store_true",
                      help="the story, its entries' evidence and its corrections as JSON")
    stories.set_defaults(show_json=False)
    correcting = argparse.ArgumentParser(add_help=False, parents=[common])
    correcting.add_argument("--by", help="who makes the change (default: $USER, else cli)")
    correcting.add_argument("--note", help="why, kept with the correction")
    for name, help_text, arguments in (
            ("merge", "merge two stories into one (the older keeps its id)",
             (("id", "ID"), ("other", "OTHER"))),
            ("split", "take an entry out of its story into a new one",
             (("entry_id", "ENTRY_ID"),)),
            ("pin", "show a story first in a category, whatever its rules say",
             (("id", "ID"),)),
            ("hide", "keep a story out of one category (--category) or of all",
             (("id", "ID"),)),
            ("undo", "withdraw a correction; its effect ends at once",
             (("override_id", "OVERRIDE_ID"),))):
        command = story_commands.add_parser(name, parents=[correcting], help=help_text,
                                            description=help_text)
        for dest, metavar in arguments:
            command.add_argument(dest, type=int, metavar=metavar)
        if name in {"pin", "hide"}:
            command.add_argument("--category", required=name == "pin", metavar="ID",
                                 help="the category it applies to")
        command.set_defaults(handler=cmd_stories_correct)
    corrections = story_commands.add_parser(
        "corrections", parents=[common], help="editors' corrections, who made them and when")
    corrections.add_argument("--all", action="store_true", help="undone ones too")
    corrections.add_argument("--json", action="store_true", help="one JSON object per line")
    corrections.set_defaults(handler=cmd_stories_corrections)

    rules = add("rules", "try category rules on stored entries", cmd_rules_test)
    rule_commands = rules.add_subparsers(dest="rules_command", required=True,
                                         metavar="SUBCOMMAND")
    rules_test = rule_commands.add_parser(
        "test", parents=[common],
        help="dry run: which stored entries changed rules would have added to or removed from "
             "a category (nothing is saved)")
    rules_test.add_argument("category", metavar="CATEGORY", help="category id")
    rules_test.add_argument("--since", default="7d",
                            help="entries published this long ago or later (default 7d)")
    rules_test.add_argument("--include", action="append", metavar="RULE",
                            help="replace the category's include rules (repeat for several)")
    rules_test.add_argument("--exclude", action="append", metavar="RULE",
                            help="replace the category's exclude rules (repeat for several)")
    rules_test.add_argument("--add-include", action="append", metavar="RULE",
                            help="add an include rule to the category's (repeatable)")
    rules_test.add_argument("--add-exclude", action="append", metavar="RULE",
                            help="add an exclude rule to the category's (repeatable)")
    rules_test.add_argument("--min-score", type=float, metavar="SCORE",
                            help="try another min_score (0 to 1)")
    rules_test.add_argument("--file", type=Path, metavar="PATH",
                            help="an edited categories.toml to test before saving it over "
                                 "the real one")
    rules_test.add_argument("--json", action="store_true", help="one JSON object")
    rules_test.set_defaults(handler=cmd_rules_test)

    database = add("db", "database maintenance", cmd_db_upgrade)
    db_commands = database.add_subparsers(dest="db_command", required=True,
                                          metavar="SUBCOMMAND")
    db_commands.add_parser("upgrade", parents=[common],
                           help="apply schema migrations").set_defaults(handler=cmd_db_upgrade)

    evaluation = add("eval", "measure the machine's decisions on labelled data", cmd_eval_dedup)
    eval_commands = evaluation.add_subparsers(dest="eval_command", required=True,
                                              metavar="SUBCOMMAND")
    dedup_eval = eval_commands.add_parser(
        "dedup", parents=[common],
        help="story clustering on a labelled JSONL file (articles with `cluster`, or scored "
             "pairs); prints precision, recall and F1 as JSON")
    dedup_eval.add_argument("file", type=Path, help="labelled JSONL file")
    dedup_eval.set_defaults(handler=cmd_eval_dedup)

    demo = add("demo", "run the service offline against bundled sample feeds", cmd_demo)
    demo.add_argument("--port", type=int, default=8080,
                      help="port for the aggregator's web server (0 picks a free one)")
    demo.add_argument("--once", action="store_true",
                      help="poll and print the stories, then exit instead of serving")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env().with_overrides(
            config_dir=getattr(args, "config", None),
            database_url=getattr(args, "database", None),
            log_level=getattr(args, "log_level", None))
        configure_logging(settings.log_level, settings.log_format)
        handler = args.handler
        return int(handler(Context(settings=settings, args=args)))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except AggregatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
