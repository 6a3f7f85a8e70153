"""The e5 graph with int8 weights (the quantization's one home): built in a short-lived child
process, so the quantizer's memory never lands in the process that keeps the session, and kept
in a folder under a name that says what it was built from (the model file, this recipe, the
libraries) and the digest of its bytes: a later load reads the file, and a file missing or
corrupt is built again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "e5-int8-"
SUFFIX = ".onnx"
# What the graph is made from besides the model file: these modules' own text, so that a
# change to the graph or to the quantization makes another key.
RECIPE_MODULES = ("aggregator.clustering.dedup.e5graph", __name__)
LIBRARIES = ("onnxruntime", "onnx")
KEY_CHARS = DIGEST_CHARS = 16
BUILDING = ".building-"
# A build takes seconds; a building folder this old was left by a process that died in it.
ABANDONED_SECONDS = 3600


@contextmanager
def graph(model_path: Path, folder: Path | None) -> Iterator[Path]:
    """The int8 graph of ``model_path``, valid while the context lasts: the one kept in
    ``folder`` (built there first when missing or corrupt), or, without a folder or with one
    it cannot write, one built into a temporary folder, removed after."""
    key = recipe_key(model_path)
    if folder is not None:
        try:
            found = find(folder, key) if folder.is_dir() else None
            kept = found if found is not None else _build(model_path, folder, key)
        except (OSError, subprocess.CalledProcessError) as exc:
            # A folder it may not write (a read-only home, say) costs a build per load, not
            # the clustering.
            log.warning(
                "cannot keep the int8 graph in %s (%s): building it for this run", folder, exc
            )
        else:
            yield kept
            return
    with tempfile.TemporaryDirectory(prefix="aggregator-e5-int8-") as temporary:
        yield _build(model_path, Path(temporary), key)


def recipe_key(model_path: Path) -> str:
    digest = hashlib.sha256(file_digest(model_path).encode())
    for module in RECIPE_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ImportError(f"{module} has no source file")
        digest.update(Path(spec.origin).read_bytes())
    for library in LIBRARIES:
        digest.update(f"{library}={version(library)}".encode())
    return digest.hexdigest()[:KEY_CHARS]


def file_digest(path: Path) -> str:
    with path.open("rb") as data:
        return hashlib.file_digest(data, "sha256").hexdigest()


def find(folder: Path, key: str) -> Path | None:
    """The graph kept for ``key`` whose bytes still hash to the digest in its name; any other
    file under that key (corrupt, or cut short by a crash) is removed."""
    found = None
    for path in sorted(folder.glob(f"{PREFIX}{key}-*{SUFFIX}")):
        named = path.name.removeprefix(f"{PREFIX}{key}-").removesuffix(SUFFIX)
        if found is None and file_digest(path)[:DIGEST_CHARS] == named:
            found = path
        else:
            path.unlink(missing_ok=True)
    return found


def sweep(folder: Path, now: float | None = None) -> None:
    """Remove the building folders of builds that died (each holds the 85 MB float32 graph)."""
    now = time.time() if now is None else now
    for path in folder.glob(f"{BUILDING}*"):
        if _age(path, now) > ABANDONED_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def _build(model_path: Path, folder: Path, key: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sweep(folder)
    log.info("building the clustering model's int8 graph in %s (a few seconds)", folder)
    subprocess.run(
        [sys.executable, "-m", __name__, str(model_path), str(folder), key],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    found = find(folder, key)
    if found is None:
        raise RuntimeError(f"the int8 graph was not built in {folder}")
    now = time.time()
    for path in folder.glob(f"{PREFIX}*{SUFFIX}"):
        # Another model's or recipe's graph: this version never reads it again. One made
        # lately may belong to another version sharing the folder (an upgrade under way, two
        # checkouts' tests), about to open it: it goes once it is old.
        if not path.name.startswith(f"{PREFIX}{key}-") and _age(path, now) > ABANDONED_SECONDS:
            path.unlink(missing_ok=True)
    return found


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def build(model_path: Path, folder: Path, key: str) -> Path:
    """The child's work: the float32 graph, quantized, moved into ``folder`` under its name in
    one rename (two processes building at once each leave a whole file)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

    from aggregator.clustering.dedup import e5file, e5graph  # noqa: PLC0415

    with tempfile.TemporaryDirectory(dir=folder, prefix=BUILDING) as temporary:
        source = Path(temporary) / "e5.onnx"
        e5graph.write(e5file.read(model_path), source)
        target = Path(temporary) / "e5-int8.onnx"
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            # The feed-forward output projections stay float32: int8 hurts them most.
            nodes_to_exclude=e5graph.matmul_names(source, e5graph.FFN_OUT + "_matmul"),
            # The float type of the contrib nodes' outputs, which shape inference leaves open.
            extra_options={"DefaultTensorType": 1},
        )
        final = folder / f"{PREFIX}{key}-{file_digest(target)[:DIGEST_CHARS]}{SUFFIX}"
        target.replace(final)
    return final


if __name__ == "__main__":
    # The quantizer advises pre-processing on the root logger at every build: advice for an
    # offline tool, noise in a service's log.
    logging.getLogger().setLevel(logging.ERROR)
    build(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
