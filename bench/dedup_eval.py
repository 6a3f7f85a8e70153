"""Dedup evaluation on the labelled dev files: figures as JSON, and an honest tuning run.

    .venv/bin/python bench/dedup_eval.py ../shared/data/wmt14-xling-clusters-dev.jsonl \
        ../shared/data/semeval22-pairs-dev.jsonl [--tune] [--cache DIR]

``--tune`` grid-searches the matcher's calibration on one half of each file (split by a hash
of the story / pair) and reports both halves, so the held-out half shows generalisation.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from aggregator.clustering.dedup.cluster import JOIN_MARGIN
from aggregator.clustering.dedup.embed import Embedder
from aggregator.clustering.dedup.evaluate import (
    Dataset,
    evaluate_clusters,
    evaluate_pairs,
    features_for,
    load,
    split_half,
)
from aggregator.clustering.dedup.features import EntryFeatures, FeatureExtractor
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.clustering.dedup.match import Calibration

GRID = {
    "threshold": [0.34, 0.37, 0.40, 0.43, 0.46, 0.49, 0.52, 0.55, 0.58, 0.61],
    "cross_language_offset": [0.0, 0.04],
    "names_weight": [0.0, 0.1],
    "numbers_weight": [0.0, 0.05],
}
JOIN_MARGINS = [0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.18, 0.21, 0.24]


def _features(
    path: Path, data: Dataset, cache: Path | None
) -> tuple[dict[str, EntryFeatures], float]:
    target = cache / f"{path.stem}.features.pkl" if cache else None
    if target and target.exists():
        records, seconds = pickle.loads(target.read_bytes())
        return {r["entry_id"]: EntryFeatures.from_record(r) for r in records}, seconds
    extractor = FeatureExtractor(LanguageDetector(), Embedder())
    features, seconds = features_for(data, extractor)
    if target:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pickle.dumps(([f.to_record() for f in features.values()], seconds)))
    return features, seconds


def _evaluate(
    data: Dataset,
    features: dict[str, EntryFeatures],
    cal: Calibration,
    half: int | None,
    join_margin: float = JOIN_MARGIN,
) -> dict[str, object]:
    if data.kind == "clusters":
        keys = [k for k in data.articles if half is None or split_half(data.clusters[k]) == half]
        return evaluate_clusters(data, features, cal, keys, join_margin)
    pairs = [p for p in data.pairs if half is None or split_half(p[0]) == half]
    return evaluate_pairs(data, features, cal, pairs)


def _objective(data: Dataset, result: dict[str, object]) -> float:
    # The targets: cross-language pairs for the translation clusters, overall F1 for
    # the SemEval pairs.
    key = "cross_language" if data.kind == "clusters" else "overall"
    part = result[key]
    assert isinstance(part, dict)
    return float(part["f1"])


def tune(
    sets: list[tuple[Dataset, dict[str, EntryFeatures]]],
) -> tuple[Calibration, float, float]:
    """Pairwise calibration on the pair files' tuning half, then the clusterer's join margin
    on the cluster files' tuning half: each label kind tunes the decision it describes."""
    pairs = [(d, f) for d, f in sets if d.kind == "pairs"] or sets
    clusters = [(d, f) for d, f in sets if d.kind == "clusters"]
    best: tuple[float, Calibration] | None = None
    names = list(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        cal = replace(Calibration(), **dict(zip(names, values, strict=True)))
        score = min(_objective(d, _evaluate(d, f, cal, 0)) for d, f in pairs)
        if best is None or score > best[0] + 1e-9:
            best = (score, cal)
    assert best is not None
    margin, margin_score = JOIN_MARGIN, 0.0
    for candidate in JOIN_MARGINS:
        if not clusters:
            break
        score = min(_objective(d, _evaluate(d, f, best[1], 0, candidate)) for d, f in clusters)
        if score > margin_score + 1e-9:
            margin, margin_score = candidate, score
    return best[1], margin, best[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--cache", type=Path, default=None, help="keep computed features here")
    args = parser.parse_args(argv)

    sets: list[tuple[Path, Dataset, dict[str, EntryFeatures], float]] = []
    for path in args.files:
        data = load(path)
        features, seconds = _features(path, data, args.cache)
        sets.append((path, data, features, seconds))

    report: dict[str, object] = {
        "calibration": asdict(Calibration()),
        "join_margin": JOIN_MARGIN,
    }
    if args.tune:
        started = time.perf_counter()
        cal, margin, score = tune([(d, f) for _, d, f, _ in sets])
        report["tuned"] = {
            "calibration": asdict(cal),
            "join_margin": margin,
            "tune_half_objective": round(score, 4),
            "seconds": round(time.perf_counter() - started, 1),
            "halves": {
                p.name: {f"half{h}": _evaluate(d, f, cal, h, margin) for h in (0, 1)}
                for p, d, f, _ in sets
            },
        }
    for path, data, features, seconds in sets:
        result = _evaluate(data, features, Calibration(), None)
        result["feature_entries_per_s"] = round(len(features) / seconds, 1) if seconds else None
        report[path.name] = result
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
