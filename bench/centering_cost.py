"""CPU cost per entry of the language centering the clusterer runs for every entry: the
running means alone, and with the top direction of the centered population removed.

    .venv/bin/python bench/centering_cost.py [--entries 2000]

Random unit vectors stand in for embeddings (the cost does not depend on their values).
CPU time (``time.process_time``), so other work on the machine distorts it little.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from aggregator.clustering.dedup.embed import DIM, LanguageCentering


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(args.entries + 100, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    langs = ["en", "de", "fr", "es"]
    for remove_top in (False, True):
        centering = LanguageCentering(reference=rows[:20].mean(axis=0), remove_top=remove_top)
        for i, row in enumerate(rows[:100]):
            centering.update(langs[i % 4], row)
        started = time.process_time()
        for i, row in enumerate(rows[100:]):
            # What Clusterer.add does per entry: learn, then place the entry in the space.
            centering.update(langs[i % 4], row)
            centering.story_space(langs[i % 4], row)
        learn = (time.process_time() - started) / args.entries * 1000
        started = time.process_time()
        for i, row in enumerate(rows[100:]):
            # What a rebuild does per loaded member: no learning, the direction is kept.
            centering.story_space(langs[i % 4], row)
        load = (time.process_time() - started) / args.entries * 1000
        print(
            f"remove_top={remove_top}: {learn:.3f} CPU ms per decided entry, "
            f"{load:.3f} per loaded member",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
