"""How well the topic match separates on- from off-topic entries, and where its threshold goes.

    .venv/bin/python bench/topic_eval.py ../shared/data/wmt14-xling-clusters-dev.jsonl \
        [--cache DIR]

The WMT14 dev stories (476 articles in six languages) carry no topic labels, so five
categories were written for this evaluation and each of the 190 stories was labelled by hand
from its English version: on topic, off topic, or borderline (left out of that category's
figures). A label covers every language version of the story. The articles go through the
stage's own code: language detection and embedding (``FeatureExtractor``), the per-language
centering learned from the entries (``LanguageCentering``) and ``TopicMatcher``. Figures are
printed per category (AUC) and pooled over the five (precision, recall, F1 per threshold), for
the description alone, with ``topic_examples``, with the descriptions written in French, and
with a centering that has seen only a few entries. Results: docs/topic-match.md.
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aggregator.catalog import CategoryConfig
from aggregator.clustering.dedup.embed import Embedder, LanguageCentering
from aggregator.clustering.dedup.features import EntryFeatures, FeatureExtractor, input_from_text
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.clustering.topic import TopicMatcher

THRESHOLDS = (0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.20)
SEEN = (0, 30, 100, 200)


@dataclass(frozen=True)
class Labelled:
    title: str
    description: str
    french: str
    examples: tuple[str, ...]
    on_topic: frozenset[str]
    borderline: frozenset[str]


LABELS = {
    "surveillance": Labelled(
        "Surveillance and privacy",
        "Intelligence agencies spying on people, the NSA and Edward Snowden's revelations, "
        "wiretapping, data protection and personal data.",
        "Espionnage par les services de renseignement, la NSA et les révélations d'Edward "
        "Snowden, écoutes, protection des données personnelles.",
        (
            "NSA spying revelations",
            "Überwachung durch Geheimdienste",
            "protection des données personnelles",
        ),
        frozenset(
            {
                "1101-ft",
                "1128-abcnews",
                "1164-lesechos",
                "1280-kp",
                "1559-lesechos",
                "1638-interfax",
                "18714-kreis-anzeiger.de",
                "1902-ft",
                "19602-wiesbadener-kurier.de",
                "19641-usinger-anzeiger.de",
                "20472-general-anzeiger-bonn.de",
                "2893-azonline.de",
                "50-idnes.cz",
                "61-jagran",
                "824-euronews-ru",
                "949-dailymail.co.uk",
            }
        ),
        frozenset(),
    ),
    "sports": Labelled(
        "Sport",
        "Football, hockey, tennis, basketball and other competitions, clubs, players, coaches "
        "and results.",
        "Football, hockey, tennis, basket et autres compétitions, clubs, joueurs, entraîneurs "
        "et résultats.",
        (
            "football match result",
            "Fußball Bundesliga Spiel",
            "le club a remporté le match",
            "hockey game",
        ),
        frozenset(
            {
                "1436-sport-express.ru",
                "1496-sovsport.ru",
                "1599-sovsport.ru",
                "16779-pnp.de",
                "18187-volksblatt.li",
                "229-jagran",
                "364-sport-express.ru",
                "3656-dailymail.co.uk",
                "4548-salzburg",
                "536-ihned.cz",
                "553-denik.cz",
                "5587-schwarzwaelder-bote.de",
                "567-sport-express.ru",
                "787-ihned.cz",
                "8030-suedkurier.de",
                "840-nicematin",
            }
        ),
        frozenset({"1581-communa.ru", "16556-suedkurier.de", "2782-argumenti.ru"}),
    ),
    "health": Labelled(
        "Health and medicine",
        "Diseases, hospitals, doctors, medical research, vaccines and public health.",
        "Maladies, hôpitaux, médecins, recherche médicale, vaccins et santé publique.",
        ("hospital patients and doctors", "new vaccine study", "maladie et santé publique"),
        frozenset(
            {
                "1328-radio-canada.ca",
                "150-mk",
                "1551-lemondefr",
                "1919-upi",
                "243-novinky.cz",
                "2470-news.com.au",
            }
        ),
        frozenset(
            {
                "1223-lenta.ru",
                "15060-kreis-anzeiger.de",
                "1711-lesechos",
                "685-navbharattimes.indiatimes",
            }
        ),
    ),
    "conflict": Labelled(
        "War and armed conflict",
        "Military attacks, air strikes, armies, rebels and weapons.",
        "Attaques militaires, frappes aériennes, armées, rebelles et armes.",
        ("air strike kills fighters", "army offensive against rebels", "Luftangriff in Syrien"),
        frozenset(
            {
                "1414-lemondefr",
                "1524-lesechos",
                "16-lefigaro",
                "1808-cyberpresse",
                "19-bbc-french-africa",
                "250-reuters-fr",
                "2604-foxnews",
                "925-nr2.ru",
            }
        ),
        frozenset(
            {"1100-jagran", "1572-ft", "1686-nr2.ru", "235-lesechos", "3470-abcnews", "775-trud.ru"}
        ),
    ),
    "economy": Labelled(
        "Economy and business",
        "Companies, markets, investment, jobs, prices, energy and trade.",
        "Entreprises, marchés, investissements, emploi, prix, énergie et commerce.",
        (
            "company profits and sales",
            "unemployment rate falls",
            "investors and financial markets",
            "Wirtschaftswachstum und Preise",
        ),
        frozenset(
            {
                "1095-rbc.ru",
                "11323-all-in.de",
                "1292-kommersant",
                "145-ihned.cz",
                "1531-bbc-russian",
                "2429-theglobeandmail",
                "3125-telegraph",
                "329-pnp.ru",
                "3312-upi",
                "3318-boersen-zeitung.de",
                "388-ihned.cz",
                "617-tumentoday.ru",
                "635-ihned.cz",
                "648-nr2.ru",
            }
        ),
        frozenset(
            {
                "1084-canoe",
                "1251-nicematin",
                "1732-cyberpresse",
                "1825-bbc-russian",
                "47-jagran",
                "534-bhaskar",
                "5482-usinger-anzeiger.de",
            }
        ),
    ),
}


def _description(name: str, label: Labelled) -> CategoryConfig:
    return CategoryConfig(id=name, title=label.title, description=label.description, topic=True)


def _with_examples(name: str, label: Labelled) -> CategoryConfig:
    return CategoryConfig(
        id=name,
        title=label.title,
        description=label.description,
        topic=True,
        topic_examples=label.examples,
    )


def _french(name: str, label: Labelled) -> CategoryConfig:
    return CategoryConfig(id=name, title=label.title, description=label.french, topic=True)


VARIANTS: dict[str, Callable[[str, Labelled], CategoryConfig]] = {
    "description": _description,
    "description+examples": _with_examples,
    "french description": _french,
}


def load_features(
    path: Path, extractor: FeatureExtractor, cache: Path | None
) -> tuple[list[str], list[EntryFeatures]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    target = cache / f"{path.stem}.topic-features.pkl" if cache else None
    if target and target.exists():
        records = pickle.loads(target.read_bytes())
        features = [EntryFeatures.from_record(r) for r in records]
    else:
        items = [
            input_from_text(
                r["id"], r["title"], f"{r['title']}\n{r['text']}", r["lang"], None, None
            )
            for r in rows
        ]
        features = extractor.extract_many(items)
        if target:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(pickle.dumps([f.to_record() for f in features]))
    return [r["cluster"] for r in rows], features


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    pos, neg = np.asarray(positives), np.asarray(negatives)
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def scores(
    matcher: TopicMatcher,
    category: CategoryConfig,
    centering: LanguageCentering,
    features: Sequence[EntryFeatures],
) -> np.ndarray:
    target = matcher.target(category, centering)
    assert target is not None
    rows = np.stack([centering.center(f.lang, f.embedding) for f in features])
    return rows @ target.vector


def evaluate(
    matcher: TopicMatcher,
    variant: str,
    centering: LanguageCentering,
    clusters: Sequence[str],
    features: Sequence[EntryFeatures],
) -> dict[str, object]:
    pooled_pos: list[float] = []
    pooled_neg: list[float] = []
    per_category = {}
    for name, label in LABELS.items():
        found = scores(matcher, VARIANTS[variant](name, label), centering, features)
        pos = [float(s) for s, c in zip(found, clusters, strict=True) if c in label.on_topic]
        neg = [
            float(s)
            for s, c in zip(found, clusters, strict=True)
            if c not in label.on_topic and c not in label.borderline
        ]
        per_category[name] = {
            "auc": round(auc(pos, neg), 3),
            "on_topic": len(pos),
            "off_topic": len(neg),
        }
        pooled_pos += pos
        pooled_neg += neg
    table = []
    for threshold in THRESHOLDS:
        tp = sum(s >= threshold for s in pooled_pos)
        fp = sum(s >= threshold for s in pooled_neg)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / len(pooled_pos)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table.append(
            {
                "threshold": threshold,
                "precision": round(precision, 3),
                "recall": round(recall, 3),
                "f1": round(f1, 3),
            }
        )
    return {"variant": variant, "categories": per_category, "thresholds": table}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="wmt14-xling-clusters-dev.jsonl")
    parser.add_argument("--cache", type=Path, help="keep the articles' features here")
    args = parser.parse_args(argv)
    embedder = Embedder()
    extractor = FeatureExtractor(LanguageDetector(), embedder)
    clusters, features = load_features(args.file, extractor, args.cache)
    matcher = TopicMatcher()
    for make in VARIANTS.values():
        matcher.prepare([make(n, label) for n, label in LABELS.items()], extractor)
    reference = LanguageCentering.with_reference(embedder).reference
    # A store that has seen every article, as the stage's centering would have.
    learned = LanguageCentering(reference)
    for f in features:
        learned.update(f.lang, f.embedding)
    results = [evaluate(matcher, variant, learned, clusters, features) for variant in VARIANTS]
    # A young store: the centering has seen only the first few entries (in file order).
    young = []
    for seen in SEEN:
        centering = LanguageCentering(reference)
        for f in features[:seen]:
            centering.update(f.lang, f.embedding)
        result = evaluate(matcher, "description", centering, clusters, features)
        young.append({"seen": seen, "thresholds": result["thresholds"]})
    print(
        json.dumps(
            {"articles": len(features), "learned_centering": results, "young_centering": young},
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
