"""The full-text stage end to end on real article pages (issue 17, acceptance 1).

    .venv/bin/python bench/fulltext_stage.py /tmp/trafilatura/tests

The annotated pages of trafilatura's evaluation set (see bench/fulltext_extract.py) are served
from a loopback ``FeedServer`` under one host name, with a feed listing every page as an item
with a one-line teaser. A real poll stores the items in a throwaway SQLite store; then the real
``FullTextStage`` fetches every page through a real ``Fetcher`` (address guard on, the host
trusted as if public; host gate of 4 requests at once, no delay), extracts, sanitizes and
stores. Reported: outcomes, wall and CPU time, and, on the stored text, how many annotated
article passages it holds and how many furniture passages leaked in. A second run with
nothing changed shows the cost of finding nothing due; a third, after every entry changed in
the feed, the cost of conditional requests answered 304.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from email.utils import formatdate
from html import escape
from pathlib import Path

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.clock import utc_now
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.polling.fetch import Fetcher
from aggregator.polling.fulltext import FullTextStage
from aggregator.polling.hosts import HostGate
from aggregator.polling.poller import Refresher
from aggregator.safety.netguard import NetGuard, system_resolver
from aggregator.store import open_store, upgrade
from aggregator.store.entries import GrowthLimits

HOST = "pages.test"


def feed(port: int, pages: list[tuple[str, str]], teaser: str) -> bytes:
    # Dated: the store dates an undated item of a first poll as backlog, older than the stage
    # looks.
    published = formatdate(usegmt=True)
    items = "".join(
        f"<item><title>{escape(name)}</title><link>http://{HOST}:{port}{escape(path)}</link>"
        f'<guid isPermaLink="false">{escape(path)}</guid><pubDate>{published}</pubDate>'
        f"<description>{escape(teaser)}</description></item>"
        for path, name in pages
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Pages</title><link>http://{HOST}/</link><description>Pages</description>"
        f"{items}</channel></rss>"
    ).encode()


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", type=Path, help="trafilatura's tests/ folder")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    annotations = json.loads((args.tests / "evaldata.json").read_text(encoding="utf-8"))
    server = FeedServer()
    server.start()
    pages: list[tuple[str, str]] = []
    wanted: dict[str, tuple[list[str], list[str]]] = {}
    for number, item in enumerate(annotations.values()):
        for folder in ("eval", "cache"):
            path = args.tests / folder / item["file"]
            if path.is_file():
                url_path = f"/p/{number}"
                server.set(url_path, Resource(body=path.read_bytes(), content_type="text/html"))
                pages.append((url_path, item["file"]))
                wanted[url_path] = (item["with"], item["without"])
                break
    server.set(
        "/feed.xml",
        Resource(body=feed(server.port, pages, "Read on."), content_type="application/rss+xml"),
    )

    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == HOST else system_resolver(host, port)

    with tempfile.TemporaryDirectory() as folder:
        # The feed lists every page at once: no per-poll cap on new entries.
        store = open_store(f"sqlite:///{folder}/bench.db", GrowthLimits(new_per_poll=0))
        upgrade(store.engine)
        source = SourceConfig(
            id="pages", url=server.url("/feed.xml"), categories=("all",), full_text=True
        )
        catalog = Catalog(sources=(source,), categories=(CategoryConfig(id="all", title="All"),))
        now = utc_now()
        store.sync_sources(catalog, now)
        fetcher = Fetcher(
            user_agent="aggregator-bench",
            gate=HostGate(max_per_host=4, min_delay=0.0),
            guard=NetGuard(resolver=resolve, allowed_hosts=frozenset({HOST})),
        )
        refresher = Refresher(store=store, fetcher=fetcher, catalog=catalog, workers=2)
        refresher.poll(store.due_sources(now, everything=True))
        stage = FullTextStage(
            store, fetcher, catalog, batch_size=len(pages) + 10, workers=args.workers
        )
        rows = []
        for label in ("first run", "nothing due", "entries changed, pages not"):
            if label.startswith("entries changed"):
                server.set(
                    "/feed.xml",
                    Resource(
                        body=feed(server.port, pages, "Read more."),
                        content_type="application/rss+xml",
                    ),
                )
                store.sync_sources(catalog, utc_now())
                refresher.poll(store.due_sources(utc_now(), everything=True))
            server.reset_log()
            wall, cpu = time.perf_counter(), time.process_time()
            summary = stage.run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            statuses: dict[int, int] = {}
            for request in server.requests:
                statuses[request.status] = statuses.get(request.status, 0) + 1
            rows.append((label, summary, wall, cpu, statuses))
        found = leaked = total_with = total_without = 0
        errors: dict[str, int] = {}
        for entry_view in (
            e for s in store.category_stories("all", len(pages) + 10) for e in s.entries
        ):
            assert entry_view.url is not None
            path = entry_view.url.split(str(server.port), 1)[1]
            record = store.full_text(entry_view.entry_id)
            text = norm(record.text) if record is not None else ""
            if record is not None and record.error_kind:
                errors[record.error_kind] = errors.get(record.error_kind, 0) + 1
            with_, without = wanted[path]
            found += sum(norm(w) in text for w in with_)
            leaked += sum(norm(w) in text for w in without)
            total_with += len(with_)
            total_without += len(without)
        refresher.close()
        fetcher.close()
        store.close()
    server.stop()
    print(f"{len(pages)} pages, {args.workers} stage threads")
    print(
        "| run | pages checked | extracted | empty | failed | unchanged | HTTP answers "
        "| wall s | CPU s | ms CPU/page |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, summary, wall, cpu, statuses in rows:
        answers = ", ".join(f"{count}×{status}" for status, count in sorted(statuses.items()))
        per_page = 1000 * cpu / summary.checked if summary.checked else 0.0
        print(
            f"| {label} | {summary.checked} | {summary.outcomes.get('extracted', 0)} | "
            f"{summary.outcomes.get('empty', 0)} | {summary.outcomes.get('failed', 0)} | "
            f"{summary.unchanged} | {answers or '-'} | {wall:.1f} | {cpu:.1f} | "
            f"{per_page:.0f} |"
        )
    print(f"failures by kind: {errors or 'none'}")
    print(
        f"stored text holds {found} of {total_with} article passages "
        f"({100 * found / total_with:.1f}%) and {leaked} of {total_without} furniture "
        f"passages ({100 * leaked / total_without:.1f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
