"""Everything the matcher needs about one entry, computed once: languages, embedding,
MinHash signature and cross-language evidence, plus their storable form.

``FeatureExtractor`` holds the models (built by the caller, once per process); the features
are plain data that the store can persist and reload without recomputing the embedding.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.clustering.dedup import embed, evidence, lead, shingles
from aggregator.clustering.dedup.embed import TextEmbedder, Vector
from aggregator.clustering.dedup.language import LanguageDetector, LanguageGuess
from aggregator.clustering.dedup.shingles import MinHasher, Signature
from aggregator.types import NormalizedEntry

if TYPE_CHECKING:
    import numpy as np
else:
    from aggregator.clustering.dedup.lazynumpy import np

# Embedding is batched for throughput; this bounds the memory of one batch.
EMBED_BATCH = 32
# Vectors of the texts embedded last, by text: a wire story reaches its second and later feeds
# in the next polls, hours apart, and its text then costs no second model run. At ~20,000
# entries a day this is several hours of texts, in about 6 MB.
RECENT_TEXTS = 4096
# How normalize ends a title it cut from the start of an untitled item's text.
DERIVED_TITLE_END = "…"


@dataclass(frozen=True)
class EntryInput:
    """The text of one entry as the dedup stage reads it."""

    entry_id: str
    title: str
    body: str
    declared_lang: str | None = None
    published: datetime | None = None
    links: tuple[str, ...] = ()
    # The article page the full-text stage extracted, when it did: the lead reads it.
    full_text: str | None = None


@dataclass(frozen=True)
class EntryFeatures:
    """Computed once per entry; ``embedding`` is the raw L2-normalized model output."""

    entry_id: str
    language: LanguageGuess
    published: datetime | None
    embedding: Vector = field(repr=False)
    minhash: Signature = field(repr=False)
    evidence: evidence.Evidence

    @property
    def lang(self) -> str | None:
        return self.language.lang

    def to_record(self) -> dict[str, object]:
        """Columns for the store: bytes for the vectors, JSON text for the rest."""
        return {
            "entry_id": self.entry_id,
            "lang": self.language.lang,
            "title_lang": self.language.title_lang,
            "body_lang": self.language.body_lang,
            "lang_confidence": self.language.confidence,
            "published": self.published,
            "embedding": embed.to_bytes(self.embedding),
            "minhash": shingles.to_bytes(self.minhash),
            "evidence": json.dumps(
                {
                    "numbers": sorted(self.evidence.numbers),
                    "names": sorted(self.evidence.names),
                    "links": sorted(self.evidence.links),
                    "words": self.evidence.words,
                },
                ensure_ascii=False,
            ),
        }

    @classmethod
    def from_record(cls, record: dict[str, object]) -> EntryFeatures:
        tokens = json.loads(str(record["evidence"]))
        published = record.get("published")
        confidence = record.get("lang_confidence")
        return cls(
            entry_id=str(record["entry_id"]),
            language=LanguageGuess(
                title_lang=_opt_str(record.get("title_lang")),
                body_lang=_opt_str(record.get("body_lang")),
                lang=_opt_str(record.get("lang")),
                confidence=float(confidence) if isinstance(confidence, int | float) else 0.0,
            ),
            published=published if isinstance(published, datetime) else None,
            embedding=embed.from_bytes(_as_bytes(record["embedding"])),
            minhash=shingles.from_bytes(_as_bytes(record["minhash"])),
            evidence=evidence.Evidence(
                numbers=frozenset(tokens["numbers"]),
                names=frozenset(tokens["names"]),
                links=frozenset(tokens["links"]),
                words=tokens.get("words"),
            ),
        )


def _opt_str(value: object) -> str | None:
    return str(value) if value else None


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


def input_from_normalized(entry_id: str, entry: NormalizedEntry) -> EntryInput:
    """The dedup view of a normalized entry: ``text`` without its leading title line."""
    return input_from_text(
        entry_id, entry.title, entry.text, entry.language, entry.published_at, entry.url
    )


def input_from_text(
    entry_id: str,
    title: str,
    text: str,
    language: str | None,
    published: datetime | None,
    url: str | None,
    full_text: str | None = None,
) -> EntryInput:
    """The dedup view of an entry's stored columns (``text`` starts with the title)."""
    body = text
    if body.startswith(title):
        body = body[len(title) :].lstrip("\n")
    elif title.endswith(DERIVED_TITLE_END) and text.startswith(title[:-1].rstrip()):
        # An untitled item gets the start of its text as title (normalize); embedding both
        # would say the same words twice, so the text alone stands for it.
        title = ""
    return EntryInput(
        entry_id=entry_id,
        title=title,
        body=body,
        declared_lang=language,
        published=published,
        links=(url,) if url else (),
        full_text=full_text,
    )


class FeatureExtractor:
    """Language detection, embedding, MinHash and evidence for entries, in batches."""

    def __init__(
        self,
        detector: LanguageDetector,
        embedder: TextEmbedder,
        minhasher: MinHasher | None = None,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.minhasher = minhasher or MinHasher()
        self.recent = RecentVectors(RECENT_TEXTS)

    def extract(self, item: EntryInput) -> EntryFeatures:
        return self.extract_many([item])[0]

    def extract_many(self, items: Sequence[EntryInput]) -> list[EntryFeatures]:
        # Copies (one wire story in several feeds, a feed's republished item) embed the same
        # text: the model runs once per distinct text, in this call or a recent one.
        texts = [lead.lead_text(i.title, i.body, i.full_text) for i in items]
        vectors: dict[str, Vector] = {}
        for text in dict.fromkeys(texts):
            known = self.recent.get(text)
            if known is not None:
                vectors[text] = known
        distinct = [text for text in dict.fromkeys(texts) if text not in vectors]
        for start in range(0, len(distinct), EMBED_BATCH):
            batch = distinct[start : start + EMBED_BATCH]
            for text, vector in zip(batch, self.embedder.embed(batch), strict=True):
                vectors[text] = vector
                self.recent.put(text, vector)
        return [self.features(item, vectors[text]) for item, text in zip(items, texts, strict=True)]

    def features(self, item: EntryInput, vector: Vector) -> EntryFeatures:
        """The features of ``item`` around an embedding computed elsewhere."""
        guess = self.detector.detect(item.title, item.body, item.declared_lang)
        return EntryFeatures(
            entry_id=item.entry_id,
            language=guess,
            published=item.published,
            embedding=vector,
            minhash=self.minhasher.of_text(f"{item.title}\n{item.body}"),
            evidence=evidence.extract(item.title, item.body, item.links),
        )


class RecentVectors:
    """The vectors of the last ``size`` distinct texts embedded, oldest forgotten first. Kept
    whole (float32): a text gets the same vector whether it was embedded now or reused, so
    decisions do not depend on which feed was polled first."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"size must be 0 or more, got {size}")
        self.size = size
        self._rows: OrderedDict[bytes, Vector] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, text: str) -> Vector | None:
        key = self._key(text)
        row = self._rows.get(key)
        if row is None:
            return None
        self._rows.move_to_end(key)
        return row

    def put(self, text: str, vector: Vector) -> None:
        if not self.size:
            return
        key = self._key(text)
        self._rows[key] = np.array(vector, dtype=np.float32)
        self._rows.move_to_end(key)
        while len(self._rows) > self.size:
            self._rows.popitem(last=False)


def iter_records(features: Iterable[EntryFeatures]) -> list[dict[str, object]]:
    return [feature.to_record() for feature in features]
