"""What one poll worker's answer costs the process that saves: its bytes on the pipe, the CPU of
receiving it, and what the saving process still computes from the body.

    .venv-bench/bin/python bench/answer_pipe.py [--feeds 300] [--rounds 5]

A child process makes each answer as a poll worker does (``workers.fetch_and_prepare`` on the
poll benchmark's first ``--feeds`` synthetic feeds, served from memory) and sends them all down a
``multiprocessing`` pipe, ``--rounds`` times; the parent times ``recv`` (CPU of this process)
and then the body hash the saving process needs (SHA-256 of ``content`` when the answer carries
the body, nothing when it carries the digest). Whatever the installed ``aggregator`` sends is
what is measured, so one script prices two versions of it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import pickle
import resource
import statistics
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchcategories import CATEGORIES
from synthfeeds import make_feed

from aggregator.catalog import SourceConfig
from aggregator.polling import workers
from aggregator.store.sourcerows import unpolled_status
from aggregator.types import FetchResult, SourceState, SourceStatus


class _MemoryFetcher:
    """Answers every URL with the synthetic feed it names, as the feed host would."""

    def __init__(self, bodies: dict[str, tuple[bytes, str]]) -> None:
        self.bodies = bodies

    def fetch(self, url: str, **_: Any) -> FetchResult:
        body, content_type = self.bodies[url]
        return FetchResult(
            url=url,
            status=200,
            content=body,
            headers={"content-type": content_type, "etag": '"e1"'},
            etag='"e1"',
            elapsed=0.01,
        )


def _source(index: int, url: str) -> SourceStatus:
    config = SourceConfig(
        id=f"feed-{index:05d}", url=url, categories=("world", "tech"), interval_seconds=3600
    )
    return replace(unpolled_status(config), state=SourceState.ACTIVE)


def _child(conn: Connection, feeds: int, rounds: int) -> None:
    bodies: dict[str, tuple[bytes, str]] = {}
    groups = []
    for index in range(feeds):
        feed = make_feed(index)
        url = f"http://127.0.0.1:1{feed.path}"
        bodies[url] = (feed.body, feed.content_type)
        groups.append((_source(index, url),))
    fetcher: Any = _MemoryFetcher(bodies)
    categories = {c.id: c for c in CATEGORIES}
    answers = [workers.fetch_and_prepare(fetcher, group, categories) for group in groups]
    conn.send(sum(len(b) for b, _ in bodies.values()))
    for _ in range(rounds):
        conn.recv()  # the parent is ready: nothing else runs while it times
        for job_id, answer in enumerate(answers):
            conn.send((job_id, answer))
    conn.close()


def _digest(answer: workers.Fetched) -> str | None:
    result = answer.result
    if isinstance(result, FetchResult) and result.content is not None:
        return hashlib.sha256(result.content).hexdigest()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    context = multiprocessing.get_context("forkserver")
    parent, child = context.Pipe(duplex=True)
    process = context.Process(target=_child, args=(child, args.feeds, args.rounds))
    process.start()
    child.close()
    body_bytes = parent.recv()
    recv_ms: list[float] = []
    hash_ms: list[float] = []
    pickled = 0
    for _ in range(args.rounds):
        parent.send(True)
        received = []
        started = time.process_time()
        for _ in range(args.feeds):
            received.append(parent.recv()[1])
        recv_ms.append((time.process_time() - started) * 1000 / args.feeds)
        started = time.process_time()
        for answer in received:
            _digest(answer)
        hash_ms.append((time.process_time() - started) * 1000 / args.feeds)
        pickled = sum(len(pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL)) for a in received)
    process.join()
    result = {
        "feeds": args.feeds,
        "rounds": args.rounds,
        "body_kb_per_feed": round(body_bytes / args.feeds / 1000, 1),
        "answer_kb_per_feed": round(pickled / args.feeds / 1000, 1),
        "recv_ms_per_feed_median": round(statistics.median(recv_ms), 4),
        "recv_ms_per_feed_min": round(min(recv_ms), 4),
        "hash_ms_per_feed_median": round(statistics.median(hash_ms), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "aggregator": str(Path(workers.__file__).resolve().parents[2]),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
