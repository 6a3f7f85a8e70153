"""The cap on what the model reads, in its own tokens: the cut with a stand-in tokenizer,
then the real model reading a long lead as its cut start (those load the model: slow)."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.clustering import Models
from aggregator.clustering.dedup.embed import MIN_TOKENS, Embedder, cut_to_tokens

# A stand-in tokenizer: six fixed tokens (prefix and specials), then one per word.
FIXED = 6


def words(text: str) -> int:
    return FIXED + len(text.split())


def characters(text: str) -> int:
    return FIXED + len(text.replace(" ", ""))


SENTENCE = " ".join(f"word{i}" for i in range(40))


def test_a_text_within_the_cap_is_read_whole() -> None:
    assert cut_to_tokens(SENTENCE, FIXED + 40, words) == SENTENCE
    assert cut_to_tokens("", 10, words) == ""


@pytest.mark.parametrize("limit", [FIXED + 1, FIXED + 7, FIXED + 20, FIXED + 39])
def test_the_longest_start_within_the_cap_ending_on_a_whole_word(limit: int) -> None:
    cut = cut_to_tokens(SENTENCE, limit, words)
    assert SENTENCE.startswith(cut)
    assert cut.split() == SENTENCE.split()[: limit - FIXED]


def test_a_text_without_spaces_is_cut_between_characters() -> None:
    text = "政府宣布了一项新的基础设施投资计划以促进经济增长" * 3
    cut = cut_to_tokens(text, FIXED + 17, characters)
    assert cut == text[:17]


def test_a_cap_below_the_fixed_tokens_reads_nothing() -> None:
    assert cut_to_tokens(SENTENCE, FIXED - 1, words) == ""


def test_a_cap_too_small_for_any_text_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        Embedder(max_tokens=MIN_TOKENS - 1)


# The real tokenizer and model (marked slow: they load the model).
LONG_ZH = "政府宣布了一项新的基础设施投资计划，以促进经济增长。" * 12
LONG_EN = (
    "The city council approved the new budget for schools and roads on Tuesday, after a "
    "long debate in which the opposition asked for more money for the old bridge and the "
    "mayor promised a review of the plans next year, before the elections in the spring."
)


@pytest.fixture(scope="module")
def capped(models: Models) -> Embedder:
    """A 48-token embedder around the session's model (loaded once)."""
    shared = models.extractor.embedder
    assert isinstance(shared, Embedder)
    capped = Embedder(max_tokens=48)
    capped._model = shared._loaded()
    return capped


@pytest.mark.slow
@pytest.mark.parametrize("text", [LONG_ZH, LONG_EN])
def test_the_model_reads_the_longest_start_within_the_cap(capped: Embedder, text: str) -> None:
    cut = capped.cut(text)
    assert text.startswith(cut)
    assert 40 <= capped.tokens(cut) <= 48
    # One more word (one more character where there are no spaces) goes over the cap.
    rest = text[len(cut) :]
    more = cut + (rest[: rest.find(" ", 1)] if " " in rest[1:] else rest[:1])
    assert capped.tokens(more) > 48


@pytest.mark.slow
def test_a_long_text_embeds_as_its_cut_start(capped: Embedder) -> None:
    whole, cut = capped.embed([LONG_ZH, capped.cut(LONG_ZH)])
    assert np.array_equal(whole, cut)


@pytest.mark.slow
def test_a_short_text_is_read_whole(capped: Embedder) -> None:
    short = "Rail workers announce a 48-hour national strike over pay"
    assert capped.cut(short) == short
