"""An entry's membership in its story, in words: the signal, the clustering decision, the parts
of its score and the languages seen, and why each category took it, from a
``Store.story_evidence`` row or ``EntryDetail.evidence_row()``. Used by ``aggregator stories
show``; the editors' pages can say it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.store.stories import StoryDetail

EXACT_SIGNALS = {"url": "canonical URL", "content_hash": "text"}


def explain(row: Mapping[str, Any]) -> list[str]:
    """An entry's membership in words, with the parts of the score behind it."""
    signal, evidence = row["signal"], row.get("evidence") or {}
    if signal == "new":
        lines = ["founded the story"]
        nearest = evidence.get("nearest")
        if nearest:
            lines.append(
                f"nearest other story: entry #{nearest['entry_id']} at "
                f"{nearest['score']:.3f} ({nearest['signal']}), below the bar"
            )
    elif signal == "editor_pin":
        lines = ["placed here by an editor's correction (merge, split or pin)"]
    elif signal == "editor_link":
        lines = [f"joined: an editor linked it to entry #{row['matched_entry_id']}"]
    elif signal in EXACT_SIGNALS:
        lines = [f"joined: same {EXACT_SIGNALS[signal]} as entry #{row['matched_entry_id']}"]
    else:
        lines = [
            f"joined: {signal} score {row['score']:.3f} against entry #{row['matched_entry_id']}"
        ]
    if evidence.get("merged_stories"):
        merged = ", ".join(f"#{s}" for s in evidence["merged_stories"])
        lines.append(f"bridged: merged story {merged} into this one")
    thin = evidence.get("thin_text")
    if thin:
        lines.append(
            f"too little text to tell one event from another ({thin['words']} distinct words, "
            f"{thin['needed']} needed): it joins a story only as a copy (same URL, text or "
            "nearly the same text)"
        )
    if row.get("decision") == "kept":
        reason = evidence.get("reason", "").replace("_", " ")
        lines.append(f"not compared by the model ({reason})")
    elif evidence.get("path") == "short_lead":
        lines.append(
            f"cheap path: published more than {evidence['horizon_hours']:g} hours "
            f"before it was clustered, so the model read only the first "
            f"{evidence['lead_chars']} characters of title and lead and compared "
            "it with the stories of its own time window"
        )
    if row.get("decision") and row.get("decision") != "kept":
        lines.append(f"clustering decision: {row['decision']} at {row['decided_at']}")
    parts = evidence.get("parts")
    if parts:
        lines.append("score parts: " + ", ".join(f"{k} {v:g}" for k, v in parts.items()))
    languages = row.get("languages")
    if languages:
        lines.append(
            f"language: {languages['lang']} (title {languages['title'] or '?'}, "
            f"body {languages['body'] or '?'}; declared "
            f"{row.get('declared_language') or '?'})"
        )
    return lines


def explain_categories(row: Mapping[str, Any]) -> list[str]:
    """Why each category took the entry: the rule or reason recorded, with its score."""
    return [
        f"in {cat['category']}: {cat['reason']} (score {cat['score']:g})"
        for cat in row.get("categories") or ()
    ]


def story_json(detail: StoryDetail) -> dict[str, Any]:
    """A story with its entries, their evidence and categories, each entry's ``explanation``
    in words, and its corrections: the one JSON shape of ``stories show --json`` and
    ``GET /api/stories/{id}``."""
    data = detail.as_json()
    for entry, shown in zip(detail.entries, data["entries"], strict=True):
        shown["explanation"] = explain(entry.evidence_row())
    return data
