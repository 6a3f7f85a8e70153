"""The commands that run the pipeline or maintain the store: check, db upgrade, poll, cluster,
publish, prune, rules test, eval dedup, run, demo."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.catalog import Catalog, load_catalog
from aggregator.cli import idle
from aggregator.cli.context import Context
from aggregator.cli.exitcodes import ExitCode
from aggregator.cli.progress import cluster_progress, progress_for
from aggregator.errors import ConfigError, UsageError
from aggregator.safety.terminal import terminal_json, terminal_text
from aggregator.settings import Settings
from aggregator.types import FullTextOutcome, PollResult

if TYPE_CHECKING:
    from aggregator.clustering import StageSummary
    from aggregator.polling.poller import PollSummary

log = logging.getLogger("aggregator.cli")


def _print_json(data: dict[str, Any]) -> None:
    print(terminal_json(data))


def _checked(ctx: Context) -> tuple[Catalog, int]:
    """The catalog and the number of webhook subscribers, both files validated."""
    from aggregator.delivery.subscribers import load_subscribers

    catalog = ctx.catalog()
    subscribers = load_subscribers(
        ctx.settings.config_dir,
        categories=[c.id for c in catalog.categories],
        allow_private=ctx.settings.allow_private_addresses,
    )
    return catalog, len(subscribers)


def cmd_check(ctx: Context) -> int:
    folder = str(ctx.settings.config_dir)
    if not ctx.args.json:
        catalog, hooks = _checked(ctx)
        print(
            f"{folder}: OK, {len(catalog.sources)} sources, "
            f"{len(catalog.categories)} categories"
            + (f", {hooks} webhook subscriber{'s' * (hooks != 1)}" if hooks else "")
        )
        for warning in catalog.unset_secrets(os.environ):
            print(f"warning: {warning}", file=sys.stderr)
        return ExitCode.OK
    try:
        catalog, _hooks = _checked(ctx)
    except ConfigError as exc:
        _print_json(
            {
                "ok": False,
                "config_dir": folder,
                "error": exc.reason,
                "file": exc.file,
                "id": exc.item,
                "key": exc.key,
            }
        )
        return ExitCode.CONFIG
    for warning in catalog.unset_secrets(os.environ):
        print(f"warning: {warning}", file=sys.stderr)
    _print_json(
        {
            "ok": True,
            "config_dir": folder,
            "sources": len(catalog.sources),
            "categories": len(catalog.categories),
        }
    )
    return ExitCode.OK


def cmd_db_upgrade(ctx: Context) -> int:
    from aggregator.store import current_revision, open_store
    from aggregator.store import upgrade as upgrade_schema

    store = open_store(ctx.settings.database_url)
    try:
        before = current_revision(store.engine)
        upgrade_schema(store.engine)
        after = current_revision(store.engine)
    finally:
        store.close()
    print(f"database schema: {before or 'empty'} -> {after}")
    return 0


def cmd_poll(ctx: Context) -> int:
    as_json: bool = ctx.args.json
    if not ctx.args.all and idle.nothing_to_do_unparsed(ctx.settings):
        idle.report_idle(as_json=as_json)
        return ExitCode.OK
    catalog = ctx.catalog()
    if not ctx.args.all and idle.nothing_to_do(ctx.settings, catalog):
        idle.report_idle(as_json=as_json)
        return ExitCode.OK
    from aggregator.runtime.service import Service

    store = ctx.store(auto_upgrade=True)
    service = Service(ctx.settings, store, catalog)
    summary: PollSummary | None = None
    try:
        summary = service.poll_due(
            everything=ctx.args.all, progress=None if as_json else progress_for
        )
        if not summary.outcomes:
            if not as_json:
                print(idle.NOTHING_DUE)
        elif not as_json:
            _print_poll(summary)
        # Article pages first, so the stories of what was just stored are made with the
        # full text where it was extracted (entries left by an interrupted run too).
        full_text = service.fetch_full_text()
        if full_text.checked and not as_json:
            print(full_text.describe())
        clustered = service.cluster(on_progress=None if as_json else cluster_progress())
        if as_json:
            _print_json(
                {
                    **_poll_json(summary, clustered),
                    "full_text": {
                        "unchanged": full_text.unchanged,
                        **{o.value: full_text.outcomes.get(o.value, 0) for o in FullTextOutcome},
                    },
                }
            )
        elif clustered.entries:
            print(clustered.describe())
    finally:
        service.close()
        store.close()
    return poll_exit_code(summary)


def poll_exit_code(summary: PollSummary | None) -> ExitCode:
    """4 when every source tried failed, 1 when some did; deferred sources were not tried."""
    if summary is None:
        return ExitCode.OK
    tried = summary.errors + sum(summary.count(r) for r in ("updated", "not_modified", "unchanged"))
    if summary.errors and summary.errors == tried:
        return ExitCode.ALL_FAILED
    return ExitCode.PROBLEMS if summary.errors else ExitCode.OK


def _print_poll(summary: PollSummary) -> None:
    print(
        f"polled {len(summary.outcomes)} sources: {summary.new_entries} new entries, "
        f"{summary.updated_entries} updated, {summary.count('not_modified')} not "
        f"modified, {summary.count('unchanged')} unchanged, "
        f"{summary.count('deferred')} deferred, {summary.errors} errors"
    )
    for outcome in summary.outcomes:
        if outcome.result == PollResult.ERROR:
            print(terminal_text(f"  {outcome.source_id}: {outcome.error_kind}: {outcome.error}"))


def _poll_json(summary: PollSummary | None, clustered: StageSummary) -> dict[str, Any]:
    outcomes = summary.outcomes if summary is not None else ()
    return {
        "sources": len(outcomes),
        "new_entries": sum(o.new_entries for o in outcomes),
        "updated_entries": sum(o.updated_entries for o in outcomes),
        "results": {result: sum(o.result == result for o in outcomes) for result in PollResult},
        "errors": [
            {
                "source_id": o.source_id,
                "error_kind": o.error_kind,
                "error": o.error,
                "status": o.status,
            }
            for o in outcomes
            if o.result == PollResult.ERROR
        ],
        "clustered": {
            "entries": clustered.entries,
            **{
                decision: clustered.count(decision) for decision in ("new", "join", "merge", "kept")
            },
            # How the entries were read (model, short_lead past the horizon, none).
            "paths": clustered.paths,
            "horizon_hours": clustered.horizon_hours,
        },
    }


def cmd_publish(ctx: Context) -> int:
    from aggregator.runtime.service import make_outputs

    out: Path = ctx.args.out
    settings = _publish_settings(ctx)
    store = ctx.store(auto_upgrade=False)
    try:
        outputs = make_outputs(settings, store, ctx.catalog())
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
    report: dict[str, Any] = {"out": str(out), "written": written, "unchanged": same}
    if not ctx.args.json:
        print(f"published to {out}: {len(written)} written, {same} unchanged")
    changed = outputs.live_feed_urls(written)
    if ctx.settings.websub_hub and changed:
        from aggregator.publishing.websub import ping_hub

        sent = ping_hub(ctx.settings.websub_hub, changed, user_agent=ctx.settings.user_agent)
        report["websub"] = {
            "hub": ctx.settings.websub_hub,
            "accepted": sent,
            "pinged": len(changed),
        }
        if not ctx.args.json:
            print(f"pinged {ctx.settings.websub_hub}: {sent} of {len(changed)} feeds accepted")
    if ctx.args.json:
        _print_json(report)
    return ExitCode.OK


def _publish_settings(ctx: Context) -> Settings:
    """The settings with the static site's public URL: static files are served from somewhere
    else than the local server, so links to http://HOST:PORT would be wrong everywhere."""
    given: str | None = ctx.args.base_url
    if given is not None:
        try:
            base_url = Settings.from_env({"AGGREGATOR_BASE_URL": given}).base_url
        except ConfigError as exc:
            raise ConfigError(
                f"--base-url {given!r}: must be an absolute http(s) URL", key="--base-url"
            ) from exc
        if base_url:
            return ctx.settings.with_overrides(base_url=base_url)
    if not ctx.settings.base_url:
        raise ConfigError(
            "publish needs the public URL the files will be served from, for "
            "the links in every feed: set AGGREGATOR_BASE_URL or pass "
            "--base-url https://…",
            key="AGGREGATOR_BASE_URL",
        )
    return ctx.settings


def cmd_cluster(ctx: Context) -> int:
    from aggregator.clock import utc_now
    from aggregator.runtime.service import make_stage

    store = ctx.store(auto_upgrade=False)
    try:
        if ctx.args.redo:
            pending = store.reset_clustering(utc_now())
            print(f"forgot every clustering decision: {pending} entries to cluster again")
        # The catalog names the categories whose topic match the stage runs.
        summary = make_stage(ctx.settings, store, catalog=ctx.catalog()).run(
            on_progress=cluster_progress()
        )
    finally:
        store.close()
    if summary.skipped:
        print("another worker sharing the database is clustering; it takes what is pending")
        return 0
    print(summary.describe() if summary.entries else "nothing to cluster")
    return 0


def cmd_prune(ctx: Context) -> int:
    from aggregator.clock import utc_now
    from aggregator.runtime.retention import prune

    days = ctx.args.days if ctx.args.days is not None else ctx.settings.retention_days
    if days <= 0:
        if ctx.args.json:
            _print_json(
                {
                    "retention_days": 0,
                    "dry_run": ctx.args.dry_run,
                    "entries": 0,
                    "stories": 0,
                    "corrections": 0,
                    "tombstones": 0,
                }
            )
        else:
            print(
                "retention is off (AGGREGATOR_RETENTION_DAYS is 0): nothing pruned; "
                "--days N prunes once"
            )
        return ExitCode.OK
    store = ctx.store(auto_upgrade=False)
    try:
        summary = prune(store, days=days, now=utc_now(), dry_run=ctx.args.dry_run)
    finally:
        store.close()
    if ctx.args.json:
        _print_json(
            {
                "retention_days": days,
                "dry_run": summary.dry_run,
                "entries": summary.entries,
                "stories": summary.stories,
                "corrections": summary.corrections,
                "tombstones": summary.tombstones,
            }
        )
    else:
        print(summary.describe())
    return ExitCode.OK


def cmd_eval_dedup(ctx: Context) -> int:
    from aggregator.clustering import Models
    from aggregator.clustering.evaluation import evaluate_file
    from aggregator.clustering.stage import user_model_cache

    path: Path = ctx.args.file
    if not path.is_file():
        raise ConfigError("no such file", file=str(path))
    try:
        # The evaluation's store is a temporary one: what the model builds outlives it.
        cache = ctx.settings.model_cache_dir or user_model_cache()
        result = evaluate_file(path, Models(engine=ctx.settings.embed_engine, cache=cache))
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"not a labelled dedup file: {exc}", file=str(path)) from exc
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def cmd_rules_test(ctx: Context) -> int:
    from aggregator.catalog import parse_duration
    from aggregator.clock import utc_now
    from aggregator.editorial.dryrun import changed_rules, describe, rules_dry_run

    args = ctx.args
    if args.file is not None:
        # The edited copy is checked as the real file would be, against the real sources.
        catalog = load_catalog(ctx.settings.config_dir, categories_path=args.file)
    else:
        catalog = ctx.catalog()
    try:
        category = catalog.category(args.category)
    except KeyError:
        raise ConfigError(
            f"unknown category {args.category!r}; known: "
            + ", ".join(c.id for c in catalog.categories),
            file=str(args.file) if args.file else None,
            key="CATEGORY",
        ) from None
    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--since") from exc
    changed = changed_rules(
        category,
        include=args.include,
        exclude=args.exclude,
        add_include=args.add_include or (),
        add_exclude=args.add_exclude or (),
        min_score=args.min_score,
    )
    store = ctx.store(auto_upgrade=False)
    try:
        result = rules_dry_run(
            store, catalog, changed, since=timedelta(seconds=window), now=utc_now()
        )
    finally:
        store.close()
    if args.json:
        print(terminal_json(result.as_json()))
    else:
        print(terminal_text(describe(result)))
    return 0


def cmd_run(ctx: Context) -> int:
    from aggregator.runtime.service import Service, listen

    settings = ctx.settings.with_overrides(
        host=getattr(ctx.args, "host", None), port=getattr(ctx.args, "port", None)
    )
    catalog = ctx.catalog()
    # Bound before anything else starts: a busy port is one line, not a half-started service.
    sock = listen(settings.host, settings.port)
    if settings.port == 0:  # the port the system picked, for the links we publish
        settings = settings.with_overrides(port=sock.getsockname()[1])
    try:
        store = ctx.store(auto_upgrade=True)
        service = Service(settings, store, catalog)
        try:
            service.serve(sock)
        finally:
            service.close()
            store.close()
    finally:
        sock.close()
    return ExitCode.OK


def cmd_demo(ctx: Context) -> int:
    from aggregator.demo import run_demo

    ignored = [f"--{name}" for name in ("config", "database") if hasattr(ctx.args, name)]
    if ignored:
        raise UsageError(
            f"demo runs on its own sample config and a throwaway database; it "
            f"does not take {' or '.join(ignored)} (use `aggregator run` for "
            f"yours)"
        )
    return run_demo(ctx.settings, port=ctx.args.port, once=ctx.args.once)
