"""The ``aggregator`` command line: run, poll, cluster, publish, check, sources, stories, db,
eval, demo.

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
from datetime import datetime
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
    from aggregator.discover import DiscoveredFeed

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


def cluster_progress() -> Callable[[int, int], None] | None:
    """``clustering [#####.....] 120/400 entries`` redrawn in place on a terminal."""
    if not sys.stdout.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = ProgressBar.WIDTH
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        print(f"\rclustering [{'#' * filled}{'.' * (width - filled)}] {done}/{total} entries",
              end=end, flush=True)

    return show


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
            summary = service.poll(due, on_outcome=progress_for(len(due)))
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


def cmd_cluster(ctx: Context) -> int:
    from aggregator.refresh import utc_now
    from aggregator.service import make_stage

    store = ctx.store(auto_upgrade=False)
    try:
        if ctx.args.redo:
            pending = store.reset_clustering(utc_now())
            print(f"forgot every clustering decision: {pending} entries to cluster again")
        summary = make_stage(ctx.settings, store).run(on_progress=cluster_progress())
    finally:
        store.close()
    print(summary.describe() if summary.entries else "nothing to cluster")
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
            return _show_story(store, ctx.args.show)
        for story in store.iter_stories():
            record = {
                "id": story.story_id,
                "uid": story.uid,
                "title": story.representative.title,
                "entries": [
                    {"id": e.entry_id, "url": e.url, "source": e.source_id,
                     "language": e.language, "title": e.title,
                     "published": e.published_at.isoformat(),
                     "evidence": _evidence(e.membership)}
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


def _show_story(store: Store, story_id: int) -> int:
    from aggregator.clustering.explain import explain

    rows = store.story_evidence(story_id)
    if not rows:
        print(f"no story {story_id}", file=sys.stderr)
        return 1
    print(f"story #{story_id}: {len(rows)} entries")
    for row in rows:
        print(f"  entry #{row['entry_id']} [{row['source']}] {row['title']}")
        print(f"      {row['url']}")
        for line in explain(row):
            print(f"      {line}")
        for cat in row["categories"]:
            print(f"      in {cat['category']}: {cat['reason']}")
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

    sources = add("sources", "inspect sources", cmd_sources_list)
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

    stories = add("stories", "list stories and why their entries were merged", cmd_stories)
    stories.add_argument("--json", action="store_true", help="one JSON object per story per line")
    stories.set_defaults(show=None)
    story_commands = stories.add_subparsers(dest="stories_command", metavar="SUBCOMMAND")
    show = story_commands.add_parser("show", parents=[common],
                                     help="explain one story: why each entry is in it")
    show.add_argument("show", type=int, metavar="ID")

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
        configure_logging(settings.log_level)
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
