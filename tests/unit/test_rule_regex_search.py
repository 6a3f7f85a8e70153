"""``RuleRegex.search`` asks RE2's engine for a yes or no; it answers as the library's own
``search`` does, on patterns with anchors, groups, classes, empty matches, and any script."""

from __future__ import annotations

import itertools

from aggregator.safety.regex import compile_rule_regex

PATTERNS = (
    r"open\s+source",
    r"^ai\b",
    r"act$",
    r"\Abrexit",
    r"(?-i:AI)",
    r"(k|c)ünstlich",
    r"\w+ität",
    r"x*",
    r"",
    r"(a)(b)?(c)",
    r"[^\W\d]{3}\d",
    r"人工知能",
    r"\bKI\b",
    r"é.s$",
    r"(?m)^second",
    r"(?s)one.two",
)
TEXTS = (
    "",
    "Open  Source software",
    "AI Act passes",
    "the act",
    "brexit talks",
    "said ai",
    "Künstliche Intelligenz",
    "Universität",
    "abc",
    "ab",
    "人工知能法案が成立",
    "KI-Gesetz",
    "cafés",
    "first\nsecond",
    "one\ntwo",
    "ai",
    "x" * 500 + "open source",
    "\U0001f600 emoji ai",
)


def test_search_answers_as_the_library() -> None:
    for pattern, ignore_case in itertools.product(PATTERNS, (True, False)):
        rule = compile_rule_regex(pattern, ignore_case=ignore_case)
        for text in TEXTS:
            expected = rule.compiled.search(text) is not None
            assert rule.search(text) is expected, (pattern, ignore_case, text)
    assert compile_rule_regex(r"open\s+source").search("OPEN SOURCE")
    assert not compile_rule_regex(r"(?-i:AI)").search("ai")
