"""Content codings of rendered documents: gzip (stdlib) and brotli, the only home of brotli.

Each document is compressed once, when it is rendered (never on a request's path), and the
results are kept with it; a request only picks the bytes. Output is deterministic (gzip's
header carries no time), so a coding's ETag is as stable as the document's.
"""

from __future__ import annotations

import gzip
from typing import Final

import brotli

GZIP: Final = "gzip"
BROTLI: Final = "br"
# Preferred first when a client accepts several with the same weight: brotli is smaller.
CODINGS: Final = (BROTLI, GZIP)
# Below this, headers outweigh the saving and compressing only adds work.
MIN_COMPRESS_BYTES: Final = 512
GZIP_LEVEL: Final = 9
# 11 is brotli's densest but takes ~75 ms on a 50 KB feed, ten documents a change; 9 takes a
# third of that and is within a few per cent of its size.
BROTLI_QUALITY: Final = 9
# A 64 KiB window (brotli's default is 4 MiB). At quality 9 with a larger window the encoder
# builds a 32 MiB hash table for every document, however small: the service's RSS rose by
# ≈ 20 MB while it compressed a feed. With this one its hash chains take ≈ 2 MB and a quarter
# of the CPU or less; a document under 64 KiB comes out within a few bytes of the same size,
# a larger one within a few tenths of a per cent.
BROTLI_WINDOW_BITS: Final = 16


def compress(body: bytes, coding: str) -> bytes:
    if coding == GZIP:
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    if coding == BROTLI:
        return bytes(brotli.compress(body, quality=BROTLI_QUALITY, lgwin=BROTLI_WINDOW_BITS))
    raise ValueError(f"unknown content coding {coding!r}; expected one of {CODINGS}")


def worth_compressing(body: bytes) -> bool:
    return len(body) >= MIN_COMPRESS_BYTES
