"""Dedup with the real detector and the real embedding model (bundled, offline).

The session's one model (the ``models`` fixture): loading it takes about a second.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aggregator.clustering import Models
from aggregator.clustering.dedup.cluster import Clusterer
from aggregator.clustering.dedup.embed import LanguageCentering
from aggregator.clustering.dedup.evaluate import evaluate_clusters, features_for, load
from aggregator.clustering.dedup.features import EntryFeatures, EntryInput, FeatureExtractor
from aggregator.clustering.dedup.match import Calibration, Matcher
from tests.support.shared import require_shared

NOW = datetime(2025, 6, 10, 12, tzinfo=UTC)

AI_ACT_EN = EntryInput(
    "en-ai-act",
    "European Parliament approves landmark law regulating artificial intelligence",
    "Lawmakers in Strasbourg voted 523 to 46 on Wednesday to adopt the Artificial "
    "Intelligence Act, the first comprehensive rules for AI. Thierry Breton, the EU "
    "commissioner, welcomed the vote. The rules ban social scoring and apply from 2026.",
    "en",
    NOW,
)
AI_ACT_FR = EntryInput(
    "fr-ai-act",
    "Le Parlement européen adopte une loi historique pour encadrer l'intelligence artificielle",
    "Les députés réunis à Strasbourg ont adopté mercredi par 523 voix contre 46 le règlement "
    "sur l'intelligence artificielle, premier cadre complet au monde. Le commissaire Thierry "
    "Breton a salué le vote. Le texte interdit la notation sociale et s'appliquera dès 2026.",
    "fr",
    NOW,
)
FERRY_EN = EntryInput(
    "en-ferry",
    "Ferry runs aground off Greek island, all 300 passengers rescued",
    "A passenger ferry ran aground near the island of Paros early on Wednesday. The coast "
    "guard said all 300 passengers and 40 crew were taken off safely by smaller boats and "
    "that the cause of the accident was being investigated.",
    "en",
    NOW,
)
TRAIN_EN = EntryInput(
    "en-rail",
    "Rail workers announce a 48-hour national strike over pay",
    "Unions representing train drivers said on Wednesday they will walk out for 48 hours "
    "next week after talks with the rail operator over wages broke down. Commuters were "
    "told to expect severe disruption on most lines.",
    "en",
    NOW,
)
KOREA_EN = EntryInput(
    "en-korea",
    "South Korea announces trillion-dollar plan to become an AI powerhouse",
    "South Korea's government unveiled an artificial intelligence investment plan worth "
    "more than 1,000 billion euros, about $1.08 trillion, to build research centres, train "
    "skilled workers and support its semiconductor industry in the global AI race.",
    "en",
    NOW,
)


@pytest.fixture(scope="module")
def extractor(models: Models) -> FeatureExtractor:
    return models.extractor


def clusterer_for(extractor: FeatureExtractor) -> Clusterer:
    centering = LanguageCentering.with_reference(extractor.embedder)
    return Clusterer(Matcher(Calibration(), centering))


def seed_entry() -> EntryInput:
    path = require_shared("seed/korea-ai-plan-article.txt")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    heading = next(line for line in lines if line.startswith("Implications pour"))
    body = "\n".join(line for line in lines if line and line != heading)
    return EntryInput("seed", heading, body, "fr", NOW)


def test_french_and_english_reports_of_one_event_form_one_story(
    extractor: FeatureExtractor,
) -> None:
    clusterer = clusterer_for(extractor)
    first, second = (clusterer.add(f, NOW) for f in extractor.extract_many([AI_ACT_EN, AI_ACT_FR]))
    assert first.decision == "new"
    assert second.decision == "join", second.evidence
    assert second.story_id == first.story_id
    assert second.matched_entry_id == "en-ai-act"
    assert second.evidence["cross_language"] == 1.0
    assert second.evidence["cosine"] > 0


def test_different_events_on_the_same_day_stay_apart(extractor: FeatureExtractor) -> None:
    clusterer = clusterer_for(extractor)
    decisions = [
        clusterer.add(f, NOW) for f in extractor.extract_many([FERRY_EN, TRAIN_EN, AI_ACT_EN])
    ]
    assert [d.decision for d in decisions] == ["new", "new", "new"]
    assert len({d.story_id for d in decisions}) == 3
    assert all("cosine" in d.evidence for d in decisions[1:])


def test_seed_article_is_english_under_a_french_heading(extractor: FeatureExtractor) -> None:
    entry = seed_entry()
    guess = extractor.detector.detect(entry.title, entry.body, entry.declared_lang)
    assert guess.title_lang == "fr"
    assert guess.body_lang == "en"
    assert guess.lang == "en"
    assert guess.mixed


def test_seed_article_joins_its_english_story(extractor: FeatureExtractor) -> None:
    clusterer = clusterer_for(extractor)
    found = extractor.extract_many([KOREA_EN, FERRY_EN, seed_entry()])
    korea, ferry, seed = (clusterer.add(f, NOW) for f in found)
    assert seed.decision == "join", seed.evidence
    assert seed.story_id == korea.story_id != ferry.story_id
    assert seed.matched_entry_id == "en-korea"


def test_features_survive_storage(extractor: FeatureExtractor) -> None:
    original = extractor.extract(AI_ACT_FR)
    restored = EntryFeatures.from_record(
        json.loads(json.dumps(original.to_record(), default=str))
        | {
            "embedding": original.to_record()["embedding"],
            "minhash": original.to_record()["minhash"],
            "published": original.published,
        }
    )
    matcher = Matcher(centering=LanguageCentering.with_reference(extractor.embedder))
    assert matcher.compare(original, restored).evidence_dict()["cosine"] > 0.99


def test_dev_sample_stays_above_its_floor(extractor: FeatureExtractor) -> None:
    # A small slice of the translated-copy clusters: the first stories of the dev file.
    data = load(require_shared("data/wmt14-xling-clusters-dev.jsonl"))
    stories = sorted(set(data.clusters.values()))[:12]
    keys = [k for k in data.articles if data.clusters[k] in stories]
    data.articles = {k: data.articles[k] for k in keys}
    features, _ = features_for(data, extractor)
    result = evaluate_clusters(data, features, Calibration(), keys)
    cross = result["cross_language"]
    assert isinstance(cross, dict)
    assert cross["f1"] >= 0.85, result
