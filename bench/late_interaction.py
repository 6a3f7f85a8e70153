"""Would e5's token states separate same-story pairs better than its pooled vector (issue 14)?

    .venv/bin/python bench/late_interaction.py --tokens 96      # the lead the store embeds
    .venv/bin/python bench/late_interaction.py --tokens 510     # the whole text (model's limit)

Late interaction ("MaxSim", as ColBERT and BERTScore score): every content token of one text is
matched with its most similar token of the other, on the model's last layer. Each SemEval
article of the dev file is run once through the e5 graph the store runs (onnxruntime, with the
last layer's states as a second output), then each labelled pair (same story: score ≤ 1.5;
different: ≥ 2.5) gets the pooled cosine and three token scores. The table gives each score's
ROC AUC on the tuning and held-out halves, by language relation, in the borderline band of the
pooled cosine, and of a logistic fit on the tuning half applied to the held-out one.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
from onnx import TensorProto, helper

from aggregator.clustering.dedup import e5file, e5graph
from aggregator.clustering.dedup.e5tokens import E5Tokenizer
from aggregator.clustering.dedup.embed import Embedder, model_file
from aggregator.clustering.dedup.evaluate import TUNING_HALF, Dataset, halves, load
from aggregator.clustering.dedup.lead import lead

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SEMEVAL = "semeval22-pairs-dev.jsonl"
# The last layer's output inside the graph (``e5graph._layers``: layer 11's second norm).
STATES = "l11.x2"
SCORES = ("pooled", "maxsim", "maxsim-centered", "top20-centered")
Floats = npt.NDArray[np.float32]


def token_states(data: Dataset, tokens: int) -> dict[str, tuple[Floats, Floats]]:
    """Each article's pooled vector and its content tokens' last-layer states."""
    model = e5file.read(model_file())
    tokenizer = E5Tokenizer(model)
    cutter = Embedder(max_tokens=tokens, engine="onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "e5.onnx"
        e5graph.write(model, path)
        proto = onnx.load(path)
        proto.graph.output.append(
            helper.make_tensor_value_info(STATES, TensorProto.FLOAT, [1, "tokens", model.hidden])
        )
        onnx.save_model(proto, path, save_as_external_data=True, location="states.weights")
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    positions = model.floats("emb.pos").reshape(-1, model.hidden)
    token_type = model.floats("emb.type").reshape(-1, model.hidden)[0]
    prefix = len(tokenizer.content(["query: "])[0])
    chars = 300 if tokens <= 96 else 6000
    states: dict[str, tuple[Floats, Floats]] = {}
    for key, article in data.articles.items():
        text = cutter.cut(lead(article.title, article.body, chars=chars).text)
        content = tokenizer.content(["query: " + text])[0][: model.max_positions - 2]
        ids = np.array([model.bos, *content, model.eos], dtype=np.int64)
        x = model.word_rows(ids) + positions[: len(ids)] + token_type
        pooled, hidden = session.run([e5graph.OUTPUT, STATES], {e5graph.INPUT: x[None]})
        states[key] = (
            np.asarray(pooled[0], dtype=np.float32),
            np.asarray(hidden[0][1 + prefix : -1], dtype=np.float32),
        )
    return states


def _unit(rows: Floats) -> Floats:
    norms = np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-9)
    unit: Floats = (rows / norms).astype(np.float32)
    return unit


def auc(positive: npt.NDArray[np.float64], negative: npt.NDArray[np.float64]) -> float:
    ranks = np.concatenate([positive, negative]).argsort().argsort() + 1
    wins = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(wins / (len(positive) * len(negative)))


def _logistic(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    for _ in range(3000):
        p = 1 / (1 + np.exp(-design @ w))
        w -= 0.5 * (design.T @ (p - y) / len(y) + 1e-3 * np.r_[w[:-1], 0])
    return w


def report(data: Dataset, states: dict[str, tuple[Floats, Floats]]) -> None:
    half = halves(data)
    pooled_mean = np.mean([p for p, _ in states.values()], axis=0)
    token_mean = np.concatenate([t for _, t in states.values()]).mean(axis=0)
    spaces = {
        key: (_unit(p - pooled_mean), _unit(t), _unit(t - token_mean))
        for key, (p, t) in states.items()
    }
    rows: list[list[float]] = []
    same, tuning, cross = [], [], []
    for a, b, score in data.pairs:
        if 1.5 < score < 2.5:
            continue
        pa, ta, ca = spaces[a]
        pb, tb, cb = spaces[b]
        plain, centered = ta @ tb.T, ca @ cb.T
        rows.append(
            [
                float(pa @ pb),
                0.5 * float(plain.max(1).mean() + plain.max(0).mean()),
                0.5 * float(centered.max(1).mean() + centered.max(0).mean()),
                float(np.sort(centered.ravel())[-20:].mean()),
            ]
        )
        same.append(score <= 1.5)
        tuning.append(half[a] == TUNING_HALF)
        cross.append(data.gold_lang[a] != data.gold_lang[b])
    x = np.array(rows)
    y, tune, xl = np.array(same), np.array(tuning), np.array(cross)
    low, high = np.quantile(x[y, 0], 0.1), np.quantile(x[~y, 0], 0.9)
    band = (x[:, 0] >= low) & (x[:, 0] <= high)
    print("| pairs | count (same story) | " + " | ".join(SCORES) + " |")
    print("|---" * (2 + len(SCORES)) + "|")
    parts = [
        ("tuning half", tune),
        ("held-out half", ~tune),
        ("whole", tune | ~tune),
        ("cross-language", xl),
        ("same language", ~xl),
        (f"band {low:.2f}–{high:.2f} of the pooled cosine", band),
    ]
    for name, mask in parts:
        aucs = " | ".join(f"{auc(x[mask & y, i], x[mask & ~y, i]):.3f}" for i in range(len(SCORES)))
        print(f"| {name} | {int(mask.sum())} ({int(y[mask].sum())}) | {aucs} |")
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    print("\n| fitted on the tuning half | held-out AUC | held-out AUC in the band |")
    print("|---|---|---|")
    for cols in ([0], [0, 1], [0, 2], [0, 3]):
        w = _logistic(z[tune][:, cols], y[tune].astype(np.float64))
        s = np.hstack([z[:, cols], np.ones((len(z), 1))]) @ w
        held, held_band = ~tune, ~tune & band
        print(
            f"| {' + '.join(SCORES[c] for c in cols)} | {auc(s[held & y], s[held & ~y]):.3f} "
            f"| {auc(s[held_band & y], s[held_band & ~y]):.3f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tokens",
        type=int,
        default=96,
        help="tokens the model reads (96: the store's lead; more: the whole text)",
    )
    parser.add_argument("--data", type=Path, default=DATA, help="the dev files' folder")
    parser.add_argument("--cache", type=Path, default=None, help="states pickle to reuse")
    args = parser.parse_args()
    data = load(args.data / SEMEVAL)
    cache = args.cache or Path(tempfile.gettempdir()) / f"late-interaction-{args.tokens}.pkl"
    if cache.exists():
        states = pickle.loads(cache.read_bytes())  # this script's own cache
    else:
        states = token_states(data, args.tokens)
        cache.write_bytes(pickle.dumps(states))
    report(data, states)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
