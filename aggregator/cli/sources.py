"""``aggregator sources``: health, add, pause/resume/remove, OPML import and export. Edits go to
``sources.toml`` through ``configedit`` (comments kept, validated before writing), each with its
row in the audit log as an editor's edit in the admin pages has."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.cli.context import Context, when_text
from aggregator.cli.progress import step_progress
from aggregator.clock import utc_now
from aggregator.errors import ConfigError, StoreError
from aggregator.safety.terminal import terminal_json, terminal_text
from aggregator.types import SourceState, SourceStatus

if TYPE_CHECKING:
    from aggregator.catalog import Catalog
    from aggregator.polling.discover import DiscoveredFeed
    from aggregator.store.accounts import AuditNote


log = logging.getLogger("aggregator.cli")


# The state of a configured source the store has no row for yet: never polled.


def cmd_sources_list(ctx: Context) -> int:
    try:
        catalog: Catalog | None = ctx.catalog()
    except ConfigError as exc:
        # The health of stored sources is still worth showing while the files are broken.
        log.warning(
            "action=sources-list outcome=partial reason=%r: configured sources not shown", str(exc)
        )
        catalog = None
    try:
        store = ctx.store(auto_upgrade=False)
    except StoreError as exc:
        if catalog is None:
            raise
        # Nothing polled yet: the configured sources are all there is to show.
        log.warning("action=sources-list outcome=partial reason=%r", str(exc))
        statuses: list[SourceStatus] = []
    else:
        try:
            statuses = store.sources()
        finally:
            store.close()
    if catalog is not None:
        statuses = _with_unpolled(statuses, catalog)
    if ctx.args.json:
        for status in statuses:
            print(terminal_json(status.as_json()))
        return 0
    print(_health_table(statuses))
    return 0


@contextmanager
def _audited(ctx: Context, note: AuditNote | None) -> Iterator[None]:
    """The edit made in the block, with its audit row in one transaction (neither is kept
    without the other). Before the first poll there is no database to hold the log: the files
    are edited all the same and the command says the edit went unrecorded."""
    if note is None:
        yield
        return
    try:
        store = ctx.store(auto_upgrade=False)
    except StoreError as exc:
        print(terminal_text(f"note: not recorded in the audit log: {exc}"), file=sys.stderr)
        yield
        return
    try:
        with store.audited(note, utc_now()):
            yield
    finally:
        store.close()


def cmd_sources_add(ctx: Context) -> int:
    from aggregator.editorial.sourcenotes import added_note
    from aggregator.editorial.subscribe import NewSource, append_source, find_feed, slug_for
    from aggregator.runtime.service import make_fetcher

    args = ctx.args
    catalog = ctx.catalog()
    unknown = [c for c in args.category if c not in {cat.id for cat in catalog.categories}]
    if unknown:
        raise ConfigError(
            f"unknown category {unknown[0]!r}; known: "
            + ", ".join(c.id for c in catalog.categories),
            key="--category",
        )
    fetcher = make_fetcher(ctx.settings)
    try:
        feed_url, title = find_feed(fetcher, args.url, _chooser(args.pick))
    finally:
        fetcher.close()
    source = NewSource(
        id=args.id or slug_for(args.title or title, feed_url, {s.id for s in catalog.sources}),
        url=feed_url,
        title=args.title or title,
        categories=tuple(args.category),
        language=args.language,
        interval=args.interval,
    )
    with _audited(ctx, added_note(ctx.editor, source)):
        append_source(ctx.settings.config_dir, catalog, source)
    print(
        terminal_text(
            f"added source {source.id!r} ({source.url}) to "
            f"{ctx.settings.config_dir / 'sources.toml'}; the next poll fetches it"
        )
    )
    return 0


def _chooser(pick: int | None) -> Callable[[Sequence[DiscoveredFeed]], DiscoveredFeed]:
    from aggregator.editorial.subscribe import SubscribeError

    def choose(candidates: Sequence[DiscoveredFeed]) -> DiscoveredFeed:
        listing = terminal_text(
            "\n".join(
                f"  {n}. {c.url}  {c.title or ''}".rstrip() for n, c in enumerate(candidates, 1)
            )
        )
        if pick is not None:
            if not 1 <= pick <= len(candidates):
                raise SubscribeError(
                    f"--pick {pick} is not between 1 and {len(candidates)}:\n{listing}"
                )
            return candidates[pick - 1]
        if not sys.stdin.isatty():
            raise SubscribeError(
                f"the page links {len(candidates)} feeds; choose one with --pick N:\n{listing}"
            )
        print(f"The page links {len(candidates)} feeds:\n{listing}")
        while True:
            answer = input(f"Which one (1-{len(candidates)})? ").strip()
            if answer.isdigit() and 1 <= int(answer) <= len(candidates):
                return candidates[int(answer) - 1]

    return choose


# A note after each edit of the files: when they take effect.


_APPLIED = (
    "a running `aggregator run` applies it within AGGREGATOR_CONFIG_RELOAD_SECONDS; "
    "otherwise the next run or poll does"
)


def cmd_sources_edit(ctx: Context) -> int:
    """``sources pause|resume|remove ID``: the change is made in sources.toml."""
    from aggregator.editorial.configedit import remove_source, set_source_enabled
    from aggregator.editorial.sourcenotes import enabled_note, removed_note

    folder = ctx.settings.config_dir
    source_id: str = ctx.args.id
    command = ctx.args.sources_command
    # An unknown id has no row to write: the config editor refuses it, naming the file.
    source = {s.id: s for s in ctx.catalog().sources}.get(source_id)
    if command == "remove":
        with _audited(ctx, removed_note(ctx.editor, source) if source else None):
            remove_source(folder, source_id)
        done = "removed (its stored entries are kept)"
    else:
        enabled = command == "resume"
        with _audited(ctx, enabled_note(ctx.editor, source, enabled) if source else None):
            set_source_enabled(folder, source_id, enabled)
        done = "resumed" if enabled else "paused"
    print(f"source {source_id!r} {done} in {folder / 'sources.toml'}; {_APPLIED}")
    return 0


def cmd_sources_import_opml(ctx: Context) -> int:
    from aggregator.editorial.configedit import add_sources
    from aggregator.editorial.opml import Configured, plan_import, read_outlines
    from aggregator.editorial.sourcenotes import imported_note

    args = ctx.args
    folder = ctx.settings.config_dir
    files = []
    for path in args.files:
        outlines, note = read_outlines(path)
        if note:
            print(f"  note: {path}: {note}")
        files.append((path, outlines))
    plan = plan_import(
        files,
        Configured.read(folder),
        category=args.category,
        folders_as_categories=args.folders_as_categories,
        on_progress=step_progress("importing", "outlines"),
    )
    for category in plan.categories:
        print(terminal_text(f"  new category {category.id!r} ({category.title})"))
    for source in plan.sources:
        print(
            terminal_text(
                f"  + {source.id}: {source.title or '(no title)'} <{source.url}> "
                f"in {', '.join(source.categories)}"
            )
        )
    for skipped in plan.duplicates:
        print(
            terminal_text(
                f"  = duplicate: {skipped.title or '(no title)'} <{skipped.url}>: {skipped.reason}"
            )
        )
    for skipped in plan.bad:
        print(
            terminal_text(
                f"  ! bad URL: {skipped.title or '(no title)'} <{skipped.url}>: {skipped.reason}"
            )
        )
    if args.dry_run:
        print(f"dry run, nothing written: would have {plan.describe()}")
        return 0
    if plan.sources:
        with _audited(ctx, imported_note(ctx.editor, plan.sources, plan.categories)):
            add_sources(folder, plan.sources, categories=plan.categories)
    print(f"{plan.describe()} (from {len(files)} OPML files into {folder}); {_APPLIED}")
    return 0


def cmd_sources_export_opml(ctx: Context) -> int:
    from aggregator.editorial.opml import export_opml

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


def _with_unpolled(statuses: list[SourceStatus], catalog: Catalog) -> list[SourceStatus]:
    """Add the configured sources the store does not know yet, as state ``new``."""
    from aggregator.store.sourcerows import unpolled_status

    known = {s.id for s in statuses}
    unpolled = [unpolled_status(c) for c in catalog.sources if c.id not in known]
    return sorted([*statuses, *unpolled], key=lambda s: s.id)


def _health_table(statuses: Sequence[SourceStatus]) -> str:
    columns = (
        "ID",
        "STATE",
        "HTTP",
        "ERRORS",
        "LAST SUCCESS",
        "NEXT CHECK",
        "BYTES",
        "MS",
        "NEW",
        "UPD",
    )
    rows = [columns]
    for s in statuses:
        rows.append(
            (
                s.id,
                s.state,
                str(s.last_status or "-"),
                str(s.error_count),
                when_text(s.last_success_at),
                when_text(s.next_check_at),
                str(s.last_bytes if s.last_bytes is not None else "-"),
                str(s.last_duration_ms if s.last_duration_ms is not None else "-"),
                str(s.last_new_entries if s.last_new_entries is not None else "-"),
                str(s.last_updated_entries if s.last_updated_entries is not None else "-"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if index == 0:
            continue
        status = statuses[index - 1]
        if status.url != (status.configured_url or status.url):
            lines.append(f"    url: {status.url} (configured: {status.configured_url})")
        if status.last_error:
            lines.append(f"    last error ({status.last_error_kind}): {status.last_error}")
        if status.full_text_summary:
            lines.append(f"    {status.full_text_summary}")
        if status.warning:
            lines.append(f"    warning: {status.warning}")
        elif status.state == SourceState.NEW:
            lines.append("    never polled: the next `aggregator poll` or `run` checks it")
    return terminal_text("\n".join(lines))
