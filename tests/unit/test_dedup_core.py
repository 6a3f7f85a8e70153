"""Dedup building blocks without models: evidence tokens, MinHash, matcher, clusterer logic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from aggregator.clustering.dedup import evidence, shingles
from aggregator.clustering.dedup.cluster import JOIN, MERGE, NEW, Clusterer, Overrides
from aggregator.clustering.dedup.embed import (
    DIM,
    LanguageCentering,
    embedding_text,
    from_bytes,
    to_bytes,
)
from aggregator.clustering.dedup.evaluate import Dataset, halves
from aggregator.clustering.dedup.features import EntryFeatures, EntryInput
from aggregator.clustering.dedup.language import LanguageGuess
from aggregator.clustering.dedup.match import Matcher

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def axis(*indices: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[list(indices)] = 1.0
    return vector / np.linalg.norm(vector)


def features(
    entry_id: str,
    vector: np.ndarray,
    *,
    lang: str = "en",
    text: str | None = None,
    published: datetime = NOW,
) -> EntryFeatures:
    return EntryFeatures(
        entry_id=entry_id,
        language=LanguageGuess(lang, lang, lang, 0.9),
        published=published,
        embedding=vector.astype(np.float32),
        minhash=shingles.MinHasher().of_text(text or f"unique text for {entry_id} only"),
        evidence=evidence.extract("", text or f"unique text for {entry_id} only"),
    )


def plain_clusterer(overrides: Overrides | None = None) -> Clusterer:
    # No reference and no history: cosines are compared raw, which these tests control.
    return Clusterer(Matcher(centering=LanguageCentering()), overrides=overrides)


def test_numbers_are_compared_without_separators() -> None:
    assert evidence.numbers("1,000 people in 2013 paid 1.08 trillion") == {"1000", "2013", "1.08"}
    assert evidence.numbers("1 000 personnes en 2013") == {"1000", "2013"}


def test_names_are_folded_across_scripts() -> None:
    russian = evidence.names("Вчера президент Владимир Путин встретился с Михаилом Менем.")
    english = evidence.names("Yesterday president Vladimir Putin met Mikhail Men.")
    assert {"vladi", "putin", "mikha"} <= russian & english


def test_minhash_finds_near_copies_and_not_others() -> None:
    hasher = shingles.MinHasher()
    wire = "The central bank raised its main interest rate by a quarter point on Thursday, " * 3
    copy = hasher.of_text(wire + " Reporting by our correspondent.")
    other = hasher.of_text("A storm closed schools across the northern region for two days.")
    assert shingles.jaccard(hasher.of_text(wire), copy) > 0.7
    assert shingles.jaccard(hasher.of_text(wire), other) < 0.1
    assert set(shingles.band_keys(hasher.of_text(wire))) & set(shingles.band_keys(copy))
    assert shingles.from_bytes(shingles.to_bytes(copy)).tolist() == copy.tolist()


def test_embedding_storage_is_compact_and_close() -> None:
    vector = axis(1, 2, 3)
    data = to_bytes(vector)
    assert len(data) == 2 * DIM
    assert float(np.dot(from_bytes(data), vector)) > 0.999


def test_embedding_text_keeps_title_and_lead() -> None:
    text = embedding_text("Title here", "Title here\nThe body " + "x" * 500)
    assert text.startswith("Title here. The body")
    assert len(text) == 300


def test_features_round_trip_through_a_record() -> None:
    original = features("e1", axis(4), text="Putin met Mikhail Men in 2013 about 1,000 homes.")
    restored = EntryFeatures.from_record(original.to_record())
    assert restored.entry_id == "e1"
    assert restored.lang == "en"
    assert restored.evidence == original.evidence
    assert restored.minhash.tolist() == original.minhash.tolist()
    assert float(np.dot(restored.embedding, original.embedding)) > 0.999


def test_words_are_counted_once_and_unspaced_scripts_by_characters() -> None:
    assert evidence.words("First item") == 2
    assert evidence.words("The First Item.\nThis is the first item.") == 5
    assert evidence.words("") == 0
    assert evidence.words("日本で大きな地震が発生しました") == 7
    assert evidence.extract("Robert Duvall dies", "").words == 3


def test_a_text_too_short_to_name_an_event_joins_only_as_a_copy() -> None:
    matcher = Matcher(centering=LanguageCentering())
    long = features("a", axis(1), text="Kim Jong Un visited Vladivostok in 2019 with guards.")
    thin = features("b", axis(1), text="First item")
    judged = matcher.compare(long, thin)
    assert not judged.same_story
    assert judged.score < matcher.calibration.threshold
    assert judged.evidence_dict()["thin_text"] == 1.0
    assert "thin_text" not in matcher.compare(long, long).evidence_dict()
    # The same short text twice is a copy (MinHash), whatever its length.
    assert matcher.compare(thin, features("c", axis(2), text="First item")).same_story
    # Features stored before words were counted are judged as before.
    unknown = replace(thin, evidence=replace(thin.evidence, words=None))
    assert matcher.compare(long, unknown).same_story


def test_matcher_records_evidence() -> None:
    match = Matcher(centering=LanguageCentering()).compare(
        features("a", axis(1), text="Kim Jong Un visited Vladivostok in 2019 with 1,500 guards."),
        features("b", axis(1), lang="fr", text="Kim Jong Un a visité Vladivostok en 2019."),
    )
    found = match.evidence_dict()
    assert match.same_story
    assert found["cosine"] > 0.99
    assert found["cross_language"] == 1.0
    assert found["shared_names"] >= 2
    assert found["numbers_overlap"] == 1.0


def test_join_new_and_bridging_merge() -> None:
    clusterer = plain_clusterer()
    first = clusterer.add(features("a", axis(1)), NOW)
    second = clusterer.add(features("b", axis(2)), NOW)
    assert (first.decision, second.decision) == (NEW, NEW)
    assert first.story_id != second.story_id

    joined = clusterer.add(features("a2", axis(1)), NOW)
    assert joined.decision == JOIN
    assert joined.story_id == first.story_id
    assert joined.matched_entry_id == "a"
    assert joined.evidence["cosine"] > 0.99

    bridge = clusterer.add(features("c", axis(1, 2)), NOW)
    assert bridge.decision == MERGE
    assert bridge.merged_story_ids == (second.story_id,)
    assert bridge.story_id == first.story_id
    assert {clusterer.story_of[k] for k in ("a", "a2", "b", "c")} == {first.story_id}


def test_cannot_link_prevents_join_and_merge() -> None:
    overrides = Overrides(cannot_link=frozenset({frozenset({"a", "a2"})}))
    clusterer = plain_clusterer(overrides)
    clusterer.add(features("a", axis(1)), NOW)
    assert clusterer.add(features("a2", axis(1)), NOW).decision == NEW
    assert clusterer.story_of["a"] != clusterer.story_of["a2"]


def test_must_link_and_pin_are_obeyed() -> None:
    overrides = Overrides(must_link=frozenset({frozenset({"a", "z"})}), pinned={"p": 99})
    clusterer = plain_clusterer(overrides)
    clusterer.add(features("a", axis(1)), NOW)
    linked = clusterer.add(features("z", axis(7)), NOW)
    assert (linked.story_id, linked.best_signal) == (clusterer.story_of["a"], "editor_link")
    assert clusterer.add(features("p", axis(1)), NOW).story_id == 99


def test_stories_outside_the_window_are_not_candidates() -> None:
    clusterer = plain_clusterer()
    old = clusterer.add(features("old", axis(1), published=NOW - timedelta(days=30)), NOW)
    fresh = clusterer.add(features("new", axis(1), published=NOW), NOW)
    assert fresh.decision == NEW
    assert fresh.story_id != old.story_id
    assert old.story_id not in clusterer.stories  # evicted from the active index


def test_same_input_order_gives_same_decisions() -> None:
    def run() -> list[tuple[str, int, str, float]]:
        clusterer = plain_clusterer()
        items = [
            ("a", axis(1)),
            ("b", axis(2)),
            ("c", axis(1, 3)),
            ("d", axis(1, 2)),
            ("e", axis(5)),
        ]
        return [
            (d.entry_id, d.story_id, d.decision, d.score)
            for d in (clusterer.add(features(k, v), NOW) for k, v in items)
        ]

    assert run() == run()


def test_a_bridge_into_an_older_story_keeps_the_oldest_and_lists_what_it_absorbed() -> None:
    # Stories 5 and 3 are loaded (as from the store); the entry's best match is the newer
    # one, and it bridges both: the older id survives and the newer is reported merged.
    clusterer = plain_clusterer()
    clusterer.load(5, [features("five", axis(1, 2, 3))])
    clusterer.load(3, [features("three", axis(1, 2))])
    bridge = clusterer.add(features("c", axis(1, 2, 3)), NOW)
    assert bridge.decision == MERGE
    assert bridge.story_id == 3
    assert bridge.merged_story_ids == (5,)
    assert set(clusterer.stories) == {3}
    assert {clusterer.story_of[k] for k in ("five", "three", "c")} == {3}


def test_attach_places_an_exact_match_and_records_the_comparison() -> None:
    clusterer = plain_clusterer()
    first = clusterer.add(features("a", axis(1)), NOW)
    attached = clusterer.attach(
        features("copy", axis(1, 9)), first.story_id, NOW, signal="url", matched_entry_id="a"
    )
    assert (attached.story_id, attached.decision, attached.best_signal) == (
        first.story_id,
        JOIN,
        "url",
    )
    assert attached.matched_entry_id == "a"
    assert 0 < attached.evidence["cosine"] < 1
    assert clusterer.story_of["copy"] == first.story_id


def test_rename_moves_a_story_to_another_id() -> None:
    clusterer = plain_clusterer()
    story = clusterer.add(features("a", axis(1)), NOW).story_id
    clusterer.rename(story, 42)
    assert clusterer.story_of["a"] == 42
    assert set(clusterer.stories) == {42}
    assert clusterer.add(features("a2", axis(1)), NOW).story_id == 42


def test_keep_since_holds_stories_for_entries_that_arrive_out_of_time_order() -> None:
    def run(keep_since: datetime | None) -> tuple[int, int]:
        clusterer = plain_clusterer()
        clusterer.keep_since = keep_since
        old = clusterer.add(features("old", axis(1), published=NOW - timedelta(days=10)), NOW)
        clusterer.add(features("new", axis(2), published=NOW), NOW)
        late = clusterer.add(features("late", axis(1), published=NOW - timedelta(days=9)), NOW)
        return old.story_id, late.story_id

    first, late = run(None)
    assert first != late  # the old story was evicted when the newer entry came
    first, late = run(NOW - timedelta(days=12))
    assert first == late


def mix(first: int, second: int) -> np.ndarray:
    return (0.6 * axis(first) + 0.8 * axis(second)).astype(np.float32)


def test_average_link_keeps_a_neighbour_of_one_member_out() -> None:
    # A story of two reports (cosine 0.6); the newcomer matches the first at 0.56 but the
    # second only at 0.34: its best member clears the join level (0.50), the story's mean does
    # not.
    newcomer = (0.56 * axis(0) + np.sqrt(1 - 0.56**2) * axis(2)).astype(np.float32)
    results = {}
    for link in ("best", "average"):
        clusterer = Clusterer(Matcher(centering=LanguageCentering()), link=link)
        founded = clusterer.add(features("first", axis(0)), NOW)
        assert clusterer.add(features("second", mix(0, 1)), NOW).story_id == founded.story_id
        results[link] = clusterer.add(features("new", newcomer), NOW)
    assert results["best"].decision == JOIN, results["best"]
    assert results["average"].decision == NEW, results["average"]


def test_halves_never_split_a_connected_group_of_pairs() -> None:
    articles = {key: EntryInput(key, key, "") for key in "abcdefgh"}
    pairs = [("a", "b", 1.0), ("b", "c", 4.0), ("c", "d", 1.0), ("e", "f", 1.0), ("g", "h", 3.0)]
    data = Dataset("pairs", articles, dict.fromkeys(articles, "en"), pairs=pairs)
    half = halves(data)
    assert half["a"] == half["b"] == half["c"] == half["d"]
    assert half["e"] == half["f"]
    assert half["g"] == half["h"]
    assert set(half.values()) <= {0, 1}


def _population(count: int, seed: int = 3) -> list[np.ndarray]:
    # Unit vectors that all lean one way along axis 5 (a trait of the population) plus noise.
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        row = rng.normal(0, 0.05, DIM).astype(np.float32)
        row[5] += 1.0 if i % 2 else -1.0
        rows.append(row / np.linalg.norm(row))
    return rows


def test_the_direction_the_centered_population_varies_most_along_is_found_and_removed() -> None:
    centering = LanguageCentering(reference=np.zeros(DIM, dtype=np.float32))
    for row in _population(200):
        centering.update("en", row)
    top = centering.top_direction()
    assert top is not None
    assert abs(float(top[5])) > 0.99
    # Two entries that agree only along that direction look alike centered, not after it.
    a, b = axis(5, 7), axis(5, 9)
    assert float(centering.center("en", a) @ centering.center("en", b)) > 0.4
    share = centering.moment_count / (centering.moment_count + LanguageCentering.TOP_PRIOR)
    assert share > 0.9
    assert float(centering.story_space("en", a) @ centering.story_space("en", b)) < 0.1


def test_a_fresh_centering_removes_little_and_grows_with_what_it_has_seen() -> None:
    fresh = LanguageCentering(reference=np.zeros(DIM, dtype=np.float32))
    for row in _population(2):
        fresh.update("en", row)
    a, b = axis(5, 7), axis(5, 9)
    plain = float(fresh.center("en", a) @ fresh.center("en", b))
    early = float(fresh.story_space("en", a) @ fresh.story_space("en", b))
    # Two of TOP_PRIOR + 2: a tenth of the direction goes, so the cosine barely moves.
    assert 0.0 < plain - early < 0.1
    off = LanguageCentering(reference=np.zeros(DIM, dtype=np.float32), remove_top=False)
    for row in _population(200):
        off.update("en", row)
    assert off.moment is None
    assert np.allclose(off.story_space("en", a), off.center("en", a))


def test_the_top_direction_survives_the_stored_state_exactly() -> None:
    centering = LanguageCentering(reference=np.zeros(DIM, dtype=np.float32))
    for i, row in enumerate(_population(60)):
        centering.update("en" if i % 3 else "de", row)
    state = centering.to_state()
    assert state[LanguageCentering.MOMENT_KEY][0] == 60
    restored = LanguageCentering.from_state(state, np.zeros(DIM, dtype=np.float32))
    assert set(restored.counts) == {"en", "de", "*"}
    probe = axis(5, 11)
    assert np.array_equal(restored.story_space("de", probe), centering.story_space("de", probe))
    # Both go on learning the same way: the next entry moves them alike.
    for side in (centering, restored):
        side.update("en", axis(2, 5))
    assert np.array_equal(restored.story_space("en", probe), centering.story_space("en", probe))
