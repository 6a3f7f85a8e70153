"""Real-feed check: what the 336 real-world feeds of ``../shared/data/feeds/`` lose on the way
from feedparser to the store (issue 15, acceptance 1).

    python bench/realfeeds_check.py [--root DIR] [--json OUT] [--verbose]

Each document goes through ``parse_feed`` + ``normalize_feed`` and then the store's own poll
write (``Store.save_poll`` on a throwaway SQLite database, the code a real poll runs after the
fetch), twice, as two polls an hour apart. Per file it reports:

- ``in``: entries the parser read; ``stored``: distinct entries stored after the first poll;
- ``merged``: entries of the file that share a stored entry or a story with another entry of
  the same file (exact URL / content signals of the store; the clustering model is not run)
  and are not republications (same guid, same link with its fragment, or the same content);
- ``repoll_new``: entries the second poll of the same bytes stored again (must be 0);
- ``poll_dates``: entries normalize leaves undated although the document carries a date
  a human can read (``placeholder`` ones, 0001-01-01 and the like, are counted apart, and
  ``undated`` ones have none); ``stored_poll_dates``: entries stored with the poll's time as
  their date (a first poll: the store dates undated entries as backlog);
- ``differs``: fields where what is stored differs from what feedparser reads (title text,
  link, a summary the stored text lacks);
- ``empty``: entries with nothing to identify or show, which normalize drops.

With ``--http`` the files are also served from a loopback ``FeedServer`` and polled by the
real command line (``aggregator poll --all``, then clustering: ``exact`` by default,
``--semantic`` for the model) into a second database; per file it adds the entries stored and
the stories they form there (``http_stored``, ``http_stories``) and the entries dated with
the poll's time (``http_poll_dates``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import sqlalchemy as sa

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.errors import ParseError
from aggregator.polling.normalize import normalize_feed, numbered_entries
from aggregator.polling.parse import parse_feed
from aggregator.safety.sanitize import html_to_text, plain_title
from aggregator.store import GrowthLimits, open_store, upgrade
from aggregator.store.tables import ENTRIES, STORIES
from aggregator.types import FetchResult, NormalizedEntry, ParsedFeed

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "feeds"
# The real-world folders of the corpus README (the others are hand-made test documents).
REAL_WORLD = (
    "fastfeedparser-realworld",
    "miniflux-testdata",
    "node-feedparser-feeds",
    "rss-parser-inputs",
    "feed-rs-fixtures",
)
NOT_DOCUMENTS = frozenset({".md", ".tsv"})
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
REPOLL_AFTER = timedelta(hours=1)
# Years a human reads as "no date": 0001-01-01, 1970 epoch zero, 9999 far future.
_PLACEHOLDER_YEAR = re.compile(r"\b(0001|0000|1900|1970|9999)\b")
_DIGIT = re.compile(r"\d")


@dataclass
class FileReport:
    path: str
    error: str | None = None
    entries_in: int = 0
    stored: int = 0
    merged: int = 0
    republished: int = 0
    repoll_new: int = 0
    empty: int = 0
    stored_poll_dates: int = 0
    http_stored: int | None = None
    http_stories: int | None = None
    http_poll_dates: int | None = None
    poll_dates: int = 0
    placeholder_dates: int = 0
    undated: int = 0
    date_sources: dict[str, int] = field(default_factory=dict)
    differs: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


def documents(root: Path) -> list[Path]:
    return [
        path
        for folder in REAL_WORLD
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and path.suffix not in NOT_DOCUMENTS
    ]


def load(path: Path) -> bytes:
    body = path.read_bytes()
    if body.startswith(b"\x1f\x8b"):
        with gzip.open(path) as stream:
            body = stream.read()
    return body


def raw_dates(body: bytes) -> list[str | None]:
    """Per entry, the first date string feedparser saw (parsed or not), for the date audit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    found: list[str | None] = []
    for raw in result.get("entries", []):
        text = None
        for key in ("published", "updated", "created", "dc_date", "date"):
            value = dict.get(raw, key)
            if isinstance(value, str) and value.strip():
                text = value.strip()
                break
        found.append(text)
    return found


def every_entry(feed: ParsedFeed, url: str) -> list[NormalizedEntry]:
    """Every entry with the key normalize gives it, none dropped, in feed order."""
    return numbered_entries(feed, feed_url=url, source_language=None, now=NOW)


def _same_item(a: NormalizedEntry, b: NormalizedEntry) -> bool:
    """The feed republished one item (issue 14's rule), judged here on its own rather than by
    the code under test: the same guid; else nothing that tells them apart (enclosures,
    links with their fragments unless the same text with a body, the feed's own dates when
    they have no link) and the same content for two guids, the same link or content
    otherwise."""
    if a.guid and a.guid == b.guid:
        return True
    enclosures_a = {e.url for e in a.enclosures}
    enclosures_b = {e.url for e in b.enclosures}
    if enclosures_a and enclosures_b and not enclosures_a & enclosures_b:
        return False
    same_content = a.content_hash == b.content_hash
    if a.link and b.link and a.link != b.link:
        return same_content and a.text.strip() != a.title.strip()
    date_a, date_b = _feed_date(a), _feed_date(b)
    if not (a.link and b.link) and date_a and date_b and date_a != date_b:
        return False
    if a.guid and b.guid:
        return same_content
    return same_content or (bool(a.link) and a.link == b.link)


def _feed_date(entry: NormalizedEntry) -> datetime | None:
    undated = entry.published_at == NOW or getattr(entry, "date_source", "feed") not in (
        "feed",
        "feed-localized",
    )
    return None if undated else entry.published_at


def _groups_merged(members: list[NormalizedEntry]) -> int:
    """Entries of one group beyond the first that are not a republication of another one."""
    if len(members) < 2:
        return 0
    return sum(
        1
        for i, entry in enumerate(members[1:], 1)
        if not any(_same_item(entry, other) for other in members[:i])
    )


def check_file(path: Path, root: Path, store: Any, source_id: str) -> FileReport:
    report = FileReport(path=path.relative_to(root).as_posix())
    body = load(path)
    url = f"https://realfeeds.example/{report.path}"
    try:
        feed: ParsedFeed = parse_feed(body, url=url, headers={})
    except ParseError as exc:
        report.error = str(exc)
        return report
    report.entries_in = len(feed.entries)
    normalized = normalize_feed(feed, feed_url=url, source_language=None, now=NOW)
    # normalize_feed drops entries sharing a key; redo it entry by entry to see who merged.
    by_key: dict[str, list[NormalizedEntry]] = defaultdict(list)
    all_entries = every_entry(feed, url)
    for entry in all_entries:
        if not (entry.guid or entry.url or entry.text or entry.enclosures):
            report.empty += 1  # nothing to identify or show: normalize drops it
            continue
        by_key[entry.identity_key].append(entry)
    report.republished = sum(len(m) - 1 for m in by_key.values()) - sum(
        _groups_merged(m) for m in by_key.values()
    )

    sources = Counter(getattr(e, "date_source", "?") for e in normalized)
    report.date_sources = dict(sources)
    texts = raw_dates(body) if len(all_entries) == len(feed.entries) else []
    for index, (parsed, entry) in enumerate(zip(feed.entries, all_entries, strict=True)):
        poll_dated = entry.published_at == NOW or getattr(entry, "date_source", "") == "first-seen"
        if not poll_dated:
            _compare(report, parsed, entry)
            continue
        raw = texts[index] if index < len(texts) else None
        if raw is None:
            report.undated += 1
        elif _PLACEHOLDER_YEAR.search(raw) or not _DIGIT.search(raw):
            report.placeholder_dates += 1
        else:
            report.poll_dates += 1
            if len(report.examples) < 3:
                report.examples.append(f"date {raw!r}")
        _compare(report, parsed, entry)

    save = _saver(store, source_id, url)
    save(normalized, NOW)
    with store.engine.connect() as connection:
        report.stored_poll_dates = connection.execute(
            sa.select(sa.func.count())
            .select_from(ENTRIES)
            .where(ENTRIES.c.source_id == source_id, ENTRIES.c.published_at == NOW)
        ).scalar_one()
    report.repoll_new = save(
        normalize_feed(feed, feed_url=url, source_language=None, now=NOW + REPOLL_AFTER),
        NOW + REPOLL_AFTER,
    )
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(ENTRIES.c.identity_key, ENTRIES.c.story_id).where(
                ENTRIES.c.source_id == source_id
            )
        ).all()
    report.stored = len(rows)
    story_of = {row.identity_key: row.story_id for row in rows}
    stories: dict[int, list[NormalizedEntry]] = defaultdict(list)
    for key, members in by_key.items():
        story = story_of.get(key[:500]) if len(key) <= 500 else None
        if story is None:
            report.merged += _groups_merged(members)
            continue
        stories[story].extend(members)
    report.merged += sum(_groups_merged(members) for members in stories.values())
    return report


def _compare(report: FileReport, parsed: Any, entry: NormalizedEntry) -> None:
    differs = report.differs
    title = plain_title(parsed.title, parsed.title_is_html)
    if title and " ".join(title.split()) != " ".join(entry.title.split()):
        differs["title"] = differs.get("title", 0) + 1
        if len(report.examples) < 6:
            report.examples.append(f"title {title[:60]!r} -> {entry.title[:60]!r}")
    if parsed.link and entry.link != parsed.link:
        differs["link"] = differs.get("link", 0) + 1
    if parsed.summary:
        # A teaser ending in "..." that opens the content is kept as the content's start.
        summary = " ".join(html_to_text(parsed.summary).split())[:80].rstrip(".… ")
        if summary and summary not in " ".join(entry.text.split()):
            differs["summary"] = differs.get("summary", 0) + 1


def _saver(store: Any, source_id: str, url: str) -> Any:
    def save(entries: list[NormalizedEntry], now: datetime) -> int:
        outcome = store.save_poll(
            source_id,
            FetchResult(url=url, status=200, content=b"", headers={}),
            body_hash=None,
            feed_title=None,
            feed_link=None,
            entries=[(e, []) for e in entries],
            next_check_at=now + REPOLL_AFTER,
            now=now,
        )
        return int(outcome.new_entries)

    return save


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--json", type=Path, help="write every file's report here")
    parser.add_argument("--verbose", action="store_true", help="one line per file with a loss")
    parser.add_argument(
        "--http",
        action="store_true",
        help="also poll the files from a loopback server with `aggregator poll`",
    )
    parser.add_argument(
        "--semantic",
        action="store_true",
        help="with --http, cluster with the model (AGGREGATOR_CLUSTERING)",
    )
    args = parser.parse_args()
    root: Path = args.root
    if not root.is_dir():
        print(f"corpus {root} is absent", file=sys.stderr)
        return 2
    paths = documents(root)
    reports = run(root, paths)
    if args.http:
        poll_over_http(reports, root, paths, semantic=args.semantic)
    totals = summarize(reports)
    for name, value in totals.items():
        print(f"{name:>28}: {value}")
    if args.verbose:
        for report in reports:
            if report.merged or report.repoll_new or report.poll_dates or report.differs:
                print(
                    f"{report.path}: in {report.entries_in} stored {report.stored} merged "
                    f"{report.merged} repoll_new {report.repoll_new} poll_dates "
                    f"{report.poll_dates} placeholder {report.placeholder_dates} "
                    f"differs {report.differs} {report.examples}"
                )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=1))
    return 0


def run(root: Path, paths: list[Path]) -> list[FileReport]:
    with tempfile.TemporaryDirectory() as folder:
        # No growth caps: each document is written in one go, so "entries in" and "stored"
        # compare identity keys alone (the caps only spread a huge first poll over several).
        store = open_store(
            f"sqlite:///{folder}/check.db", GrowthLimits(new_per_poll=0, per_source=0)
        )
        try:
            upgrade(store.engine)
            ids = {path: f"f{number}" for number, path in enumerate(paths)}
            store.sync_sources(
                Catalog(
                    sources=tuple(
                        SourceConfig(
                            id=ids[p],
                            url=f"https://realfeeds.example/{ids[p]}",
                            categories=("all",),
                        )
                        for p in paths
                    ),
                    categories=(CategoryConfig(id="all", title="All"),),
                ),
                NOW,
            )
            return [check_file(path, root, store, ids[path]) for path in paths]
        finally:
            store.close()


HTTP_TIMEOUT_SECONDS = 3600


def poll_over_http(
    reports: list[FileReport], root: Path, paths: list[Path], *, semantic: bool
) -> None:
    """Serve every file from a loopback server, poll them all with the real command line, and
    fill each report's ``http_*`` figures from that database."""
    ids = {path: f"f{number}" for number, path in enumerate(paths)}
    with tempfile.TemporaryDirectory() as folder, FeedServer() as server:
        config = Path(folder) / "config"
        config.mkdir()
        sources = []
        for path in paths:
            content_type = "application/feed+json" if path.suffix == ".json" else "text/xml"
            server.set(f"/{ids[path]}", Resource(body=load(path), content_type=content_type))
            sources.append(
                f'[[source]]\nid = "{ids[path]}"\nurl = "{server.url(ids[path])}"\n'
                'categories = ["all"]\n'
            )
        (config / "sources.toml").write_text("\n".join(sources), encoding="utf-8")
        (config / "categories.toml").write_text(
            '[[category]]\nid = "all"\ntitle = "All"\n', encoding="utf-8"
        )
        database = f"sqlite:///{folder}/http.db"
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("AGGREGATOR_")
        }
        # One loopback host serves every file: no politeness delay between its requests.
        env.update(
            AGGREGATOR_HOST_DELAY="0",
            AGGREGATOR_HOST_CONCURRENCY="8",
            AGGREGATOR_CLUSTERING="semantic" if semantic else "exact",
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "aggregator",
                "poll",
                "--all",
                "--config",
                str(config),
                "--database",
                database,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        if result.returncode not in (0, 1):
            raise RuntimeError(f"aggregator poll exited {result.returncode}: {result.stderr}")
        store = open_store(database)
        try:
            with store.engine.connect() as connection:
                merged = dict(
                    connection.execute(
                        sa.select(STORIES.c.id, STORIES.c.merged_into_id).where(
                            STORIES.c.merged_into_id.is_not(None)
                        )
                    ).all()
                )
                rows = connection.execute(
                    sa.select(
                        ENTRIES.c.source_id,
                        ENTRIES.c.story_id,
                        ENTRIES.c.published_at,
                        ENTRIES.c.first_seen_at,
                    )
                ).all()
        finally:
            store.close()
    by_source: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_source[row.source_id].append(row)
    for report, path in zip(reports, paths, strict=True):
        members = by_source.get(ids[path], [])
        report.http_stored = len(members)
        report.http_stories = len({_live(row.story_id, merged) for row in members})
        report.http_poll_dates = sum(1 for row in members if row.published_at == row.first_seen_at)


def _live(story_id: int, merged: dict[int, int]) -> int:
    for _ in range(20):  # merge chains are short; the bound guards against a cycle
        if story_id not in merged:
            break
        story_id = merged[story_id]
    return story_id


def summarize(reports: list[FileReport]) -> dict[str, Any]:
    sources: Counter[str] = Counter()
    differs: Counter[str] = Counter()
    for report in reports:
        sources.update(report.date_sources)
        differs.update(report.differs)
    return {
        "files": len(reports),
        "refused by the parser": sum(1 for r in reports if r.error),
        "entries in": sum(r.entries_in for r in reports),
        "entries stored": sum(r.stored for r in reports),
        "republications": sum(r.republished for r in reports),
        "merged within a feed": sum(r.merged for r in reports),
        "files with merges": sum(1 for r in reports if r.merged),
        "empty entries (dropped)": sum(r.empty for r in reports),
        "stored again on re-poll": sum(r.repoll_new for r in reports),
        "stored with the poll time": sum(r.stored_poll_dates for r in reports),
        "undated, date readable": sum(r.poll_dates for r in reports),
        "undated, placeholder date": sum(r.placeholder_dates for r in reports),
        "undated, no date": sum(r.undated for r in reports),
        "date sources": dict(sources),
        **_http_totals(reports),
        "fields that differ": dict(differs),
    }


def _http_totals(reports: list[FileReport]) -> dict[str, Any]:
    polled = [r for r in reports if r.http_stored is not None and not r.error]
    if not polled:
        return {}
    return {
        "http: entries stored": sum(r.http_stored or 0 for r in polled),
        "http: stories of one feed": sum(r.http_stories or 0 for r in polled),
        # Two entries of one feed in one story: the same text with a body under two links.
        "http: feeds where entries share a story": sum(
            1 for r in polled if (r.http_stories or 0) < (r.http_stored or 0)
        ),
        "http: dated with the poll time": sum(r.http_poll_dates or 0 for r in polled),
    }


if __name__ == "__main__":
    sys.exit(main())
