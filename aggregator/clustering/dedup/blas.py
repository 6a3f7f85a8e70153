"""numpy's BLAS held to one thread in a process that clusters (the one home of that setting).

The stage's matrix products are small (a few thousand story centroids by 384, a 384 by 384
moment fifty times per entry), and OpenBLAS's second thread spins for a while after each of
them: CPU that the model's own threads need (docs/benchmarks.md, "Clustering stage speed, fifth
round"). An operator's own ``OPENBLAS_NUM_THREADS`` is kept.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

# The setter's name in the OpenBLAS builds numpy ships (scipy-openblas, 64-bit integers) and in
# a system OpenBLAS.
SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
# Whether this process's BLAS was set already (a one-element list: set once, read often).
_SET: list[bool] = []


def single_thread(environ: Mapping[str, str] = os.environ) -> bool:
    """Set numpy's OpenBLAS to one thread, once per process, unless the operator chose a count;
    True when it is set (False: another BLAS, or the operator's choice)."""
    if _SET or "OPENBLAS_NUM_THREADS" in environ:
        return bool(_SET)
    import numpy  # noqa: F401, PLC0415  (its BLAS must be loaded to be found)

    for library in _loaded_openblas():
        for name in SETTERS:
            setter = getattr(ctypes.CDLL(str(library)), name, None)
            if setter is not None:
                setter(1)
                _SET.append(True)
                log.debug("action=blas-threads threads=1 library=%s", library.name)
                return True
    return False


def _loaded_openblas() -> list[Path]:
    """The OpenBLAS libraries mapped into this process (Linux; none found elsewhere)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = {line.split(maxsplit=5)[-1] for line in maps.splitlines() if "openblas" in line}
    return sorted(Path(p) for p in paths if p.startswith("/"))
