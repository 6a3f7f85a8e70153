"""``stories show`` wording of an entry's membership, from evidence rows as the store gives them."""

from __future__ import annotations

from aggregator.clustering.explain import explain


def test_a_founder_says_what_it_was_nearest_to() -> None:
    lines = explain(
        {
            "signal": "new",
            "decision": "new",
            "decided_at": "2026-11-20T12:00:00",
            "evidence": {
                "nearest": {"entry_id": 7, "score": 0.31, "signal": "embedding"},
                "parts": {"score": 0.31, "cosine": 0.27},
            },
            "languages": {"lang": "en", "title": "fr", "body": "en"},
            "declared_language": "fr",
        }
    )
    assert lines == [
        "founded the story",
        "nearest other story: entry #7 at 0.310 (embedding), below the bar",
        "clustering decision: new at 2026-11-20T12:00:00",
        "score parts: score 0.31, cosine 0.27",
        "language: en (title fr, body en; declared fr)",
    ]


def test_a_bridge_and_an_exact_copy_and_a_kept_entry() -> None:
    bridge = explain(
        {
            "signal": "embedding",
            "score": 0.8,
            "matched_entry_id": 3,
            "decision": "merge",
            "decided_at": "t",
            "evidence": {"merged_stories": [9, 12], "parts": {"score": 0.8}},
        }
    )
    assert bridge[:2] == [
        "joined: embedding score 0.800 against entry #3",
        "bridged: merged story #9, #12 into this one",
    ]
    copy = explain(
        {
            "signal": "url",
            "matched_entry_id": 2,
            "decision": "kept",
            "evidence": {"reason": "older_than_horizon"},
        }
    )
    assert copy == [
        "joined: same canonical URL as entry #2",
        "not compared by the model (older than horizon)",
    ]
    assert explain({"signal": "new", "decision": None, "evidence": None}) == ["founded the story"]
