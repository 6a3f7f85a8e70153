"""Same-language near-duplicates: shingles, MinHash signatures and LSH banding (numpy only).

Wire copy syndicated by many outlets and retitled updates share most of their word
sequences; a MinHash signature estimates that overlap (Jaccard) in a fixed 64 numbers, and LSH
bands turn "similar signature" into "shares a bucket" so candidates are found without a scan.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from aggregator.clustering.dedup.lazynumpy import np


NUM_PERM = 64
# 16 bands of 4 rows: pairs with Jaccard ≈ 0.5 collide in at least one band with
# probability ≈ 0.65, pairs at 0.8 ≈ 1.0, pairs at 0.2 ≈ 0.03.
BANDS = 16
ROWS_PER_BAND = NUM_PERM // BANDS
WORD_SHINGLE = 3
# Scripts written without spaces (Chinese, Japanese, Thai) are shingled by characters.
CHAR_SHINGLE = 4
MAX_SHINGLE_CHARS = 3000
# Fixed so signatures computed in different processes and years stay comparable.
PERMUTATION_SEED = 20240604
_MERSENNE = (1 << 31) - 1

Signature: TypeAlias = "npt.NDArray[np.uint32]"


def _tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text[:MAX_SHINGLE_CHARS]).casefold()
    cleaned = "".join(ch if ch.isalnum() else " " for ch in folded)
    return cleaned.split()


def shingles(text: str) -> set[str]:
    """Word 3-grams, or character 4-grams when the text has few spaces (CJK, Thai)."""
    words = _tokens(text)
    if not words:
        return set()
    chars = sum(len(word) for word in words)
    if chars > 0 and len(words) * 12 < chars:
        # Fewer than one space per 12 letters: not a space-separated script.
        joined = "".join(words)
        return {joined[i : i + CHAR_SHINGLE] for i in range(max(1, len(joined) - CHAR_SHINGLE + 1))}
    if len(words) < WORD_SHINGLE:
        return {" ".join(words)}
    return {" ".join(words[i : i + WORD_SHINGLE]) for i in range(len(words) - WORD_SHINGLE + 1)}


class MinHasher:
    """Computes MinHash signatures with fixed permutations (built once per object)."""

    def __init__(self, num_perm: int = NUM_PERM, seed: int = PERMUTATION_SEED) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self._a = rng.integers(1, _MERSENNE, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, _MERSENNE, size=num_perm, dtype=np.uint64)

    def signature(self, items: Iterable[str]) -> Signature:
        """The signature of a shingle set; all-max (matches nothing) when it is empty."""
        hashes = np.fromiter(
            (zlib.crc32(item.encode("utf-8")) & _MERSENNE for item in items), dtype=np.uint64
        )
        if hashes.size == 0:
            return np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        # (a·x + b) mod p with x, a < 2^31: the product stays below 2^62, no overflow.
        permuted = (np.outer(self._a, hashes) + self._b[:, None]) % _MERSENNE
        signature: Signature = permuted.min(axis=1).astype(np.uint32)
        return signature

    def of_text(self, text: str) -> Signature:
        return self.signature(shingles(text))


def jaccard(first: Signature, second: Signature) -> float:
    """Estimated Jaccard similarity: the share of equal signature slots (0 for empty sets)."""
    empty = np.iinfo(np.uint32).max
    if first.size == 0 or first.size != second.size or (first == empty).all():
        return 0.0
    return float(np.count_nonzero(first == second)) / first.size


def band_keys(signature: Signature, bands: int = BANDS) -> list[bytes]:
    """One bucket key per band; two signatures sharing any key are LSH candidates."""
    if (signature == np.iinfo(np.uint32).max).all():
        return []
    rows = signature.size // bands
    return [
        band.to_bytes(1, "big") + signature[band * rows : (band + 1) * rows].tobytes()
        for band in range(bands)
    ]


def to_bytes(signature: Signature) -> bytes:
    """Compact storage form (4 bytes per slot)."""
    return signature.astype("<u4").tobytes()


def from_bytes(data: bytes) -> Signature:
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)
