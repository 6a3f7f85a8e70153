"""Classification: which of its source's categories an entry belongs to, and why.

Owns the meaning of the editors' ``include``/``exclude`` rules, a source's own rules and a
category's ``min_score`` (the file format itself belongs to ``catalog``; the topic match runs
later, in the clustering stage). Pure logic: an entry and the category configs in,
``CategoryMatch`` values out, with a reason naming the rule and the field it matched in.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from aggregator.catalog import CategoryConfig, Rule
from aggregator.safety.regex import compile_rule_regex
from aggregator.types import CategoryMatch

ALL_ENTRIES_REASON = "all entries of source"
NO_INCLUDE_MATCHED_REASON = "no include rule matched"
NO_SOURCE_INCLUDE_MATCHED_REASON = "no include rule of the source matched"
# A category whose only include "rule" is the topic match takes nothing at fetch time: the
# clustering stage decides once the entry is embedded.
TOPIC_DECIDES_REASON = "no include rule: the topic match decides"
# How the topic match's reasons start (``topic_reason``): the dry run tells them apart so.
TOPIC_REASON_PREFIX = "topic similarity"

# Score of one include rule by where it matched: a hit in the title says more about the topic
# than a passing mention in the body or a word in the URL. Scores add up, capped at 1.0.
TITLE_WEIGHT = 1.0
OTHER_FIELD_WEIGHT = 0.5
MAX_SCORE = 1.0

# Fields in the order they are searched; the first one that matches is the one the reason names.
# ``text`` already contains the title, so a title hit is always reported as "title".
FIELDS = ("title", "text", "tags", "author", "url")

# Compiled rules per distinct CategoryConfig; the key is the frozen config itself, so a changed
# category compiles afresh and nothing leaks between catalogs.
RULE_CACHE_SIZE = 512

# Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar), plus
# Hangul, whose particles attach to the noun ("인공지능을"): a keyword edge in these scripts
# matches inside a longer run of letters instead of needing a word boundary.
_UNSPACED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)

# Japanese voicing marks change the word (か/が), unlike Latin accents, so they are kept.
_KEPT_COMBINING_CLASSES = frozenset({8})

# Typographic apostrophes and hyphens are folded to ASCII so "l’IA" matches a rule "l'IA".
_PUNCTUATION_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)

# Inside a keyword, a space or hyphen matches any run of spaces, hyphens and underscores, so
# "AI Act" also finds "AI-Act" and the URL slug "ai-act"; next to a character of an unspaced
# script it may also be absent, as writers are inconsistent there ("AI 기본법" finds "AI기본법").
_KEYWORD_SEPARATOR = r"[\s\-_]+"
_UNSPACED_SEPARATOR = r"[\s\-_]*"
_KEYWORD_SPLIT_RE = re.compile(r"[\s\-_]+")
_UNSPACED_CLASS = "".join(f"{chr(low)}-{chr(high)}" for low, high in _UNSPACED_RANGES)
# A word boundary for spaced scripts only: "AI" must not continue a Latin word ("said"), but may
# sit right against Japanese or Chinese text ("政府のAI法案"), which has no spaces to offer.
_NOT_AFTER_WORD = f"(?<![^\\W{_UNSPACED_CLASS}])"
_NOT_BEFORE_WORD = f"(?![^\\W{_UNSPACED_CLASS}])"
_WORD_CHAR_RE = re.compile(r"\w")


class Classifiable(Protocol):
    """What classification reads of an entry: a ``NormalizedEntry``, or a stored entry."""

    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def author(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...


class Searcher(Protocol):
    """A compiled rule: Python's ``re`` for keywords (escaped text, linear by construction),
    the linear-time engine of ``safety.regex`` for editors' regexes."""

    def search(self, text: str, /) -> object: ...


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    regex: Searcher
    # Text every match contains (a keyword's longest word): a field without it is skipped
    # without running the regex, whose leading lookbehind keeps ``re`` from scanning for a
    # literal prefix itself. Empty for regex rules.
    literal: str = ""

    def search(self, fields: _Fields) -> str | None:
        """Return the name of the first field this rule matches, or None."""
        texts = fields.plain if self.rule.is_regex else fields.folded
        literal = self.literal
        for name, value in zip(FIELDS, texts, strict=True):
            if value and (not literal or literal in value) and self.regex.search(value):
                return name
        return None


@dataclass(frozen=True)
class CompiledSourceRules:
    include: tuple[CompiledRule, ...]
    exclude: tuple[CompiledRule, ...]


@dataclass(frozen=True)
class CompiledRules:
    """One category's rules, compiled once and reused for every entry."""

    category_id: str
    include: tuple[CompiledRule, ...]
    exclude: tuple[CompiledRule, ...]
    min_score: float = 0.0
    topic: bool = False
    # Source id → that source's own rules, for the sources of the category that have some.
    sources: Mapping[str, CompiledSourceRules] = field(default_factory=dict)


@dataclass(frozen=True)
class CategoryDecision:
    """The full answer for one category, including rejections, for editors' "why not?" views.

    ``reason`` names the deciding rules when ``accepted``; otherwise the excluding rule
    (``excluded`` is then true: nothing, not even the topic match, may take the entry), the
    missing include match, or the score below ``min_score``.
    """

    category_id: str
    accepted: bool
    score: float
    reason: str
    excluded: bool = False

    def as_match(self) -> CategoryMatch:
        return CategoryMatch(category_id=self.category_id, score=self.score, reason=self.reason)


@dataclass(frozen=True)
class _Fields:
    """An entry's searchable fields, folded once per entry and shared by every category.

    ``plain`` has accents and typographic punctuation folded but keeps case, so a regex can
    still say ``(?-i:AI)``; ``folded`` is also casefolded, for keywords.
    """

    plain: tuple[str, ...]
    folded: tuple[str, ...]


class _CombiningMarks(dict[int, str | None]):
    """A ``str.translate`` table that drops combining marks (except the kept classes) and
    keeps every other character, filled on first sight of each character."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        combining = unicodedata.combining(char)
        value = None if combining and combining not in _KEPT_COMBINING_CLASSES else char
        self[code] = value
        return value


_DROP_COMBINING = _CombiningMarks()


# Folding works on the runs of non-ASCII characters alone: an ASCII character is its own
# NFKD and NFC form and composes with no mark that folding keeps, so it bounds every change.
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _fold_run(match: re.Match[str]) -> str:
    run = match.group().translate(_PUNCTUATION_FOLD)
    if run.isascii():
        return run  # typographic quotes and dashes only
    decomposed = unicodedata.normalize("NFKD", run)
    return unicodedata.normalize("NFC", decomposed.translate(_DROP_COMBINING))


def fold_accents(text: str) -> str:
    """Remove accents and compatibility forms: "Künstliche Intelligenz" → "Kunstliche Intelligenz".

    NFKD splits "é" into "e" plus a combining mark, which is dropped; NFC then puts back
    together what must stay composed, such as Hangul syllables.
    """
    if text.isascii():
        return text  # nothing to fold; skipping the normalizations is most of the saving
    return _NON_ASCII_RUN.sub(_fold_run, text)


def fold(text: str) -> str:
    """Case- and accent-insensitive form used for keywords: "Intelligence Artificielle" and
    "intelligence artificielle" fold the same, "Straße" and "STRASSE" too."""
    # Casefolding can bring back a combining mark ("İ" → "i̇"), hence folding accents after it.
    return fold_accents(fold_accents(text).casefold())


def _is_unspaced(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _UNSPACED_RANGES)


def _needs_boundary(ch: str) -> bool:
    return bool(_WORD_CHAR_RE.match(ch)) and not _is_unspaced(ch)


def _keyword_parts(keyword: str) -> tuple[str, list[str]]:
    """The folded keyword and its words, as ``keyword_pattern`` writes them literally."""
    folded = fold(keyword).strip()
    return folded, [part for part in _KEYWORD_SPLIT_RE.split(folded) if part]


def keyword_pattern(keyword: str) -> str:
    """The regex a keyword becomes, to be searched in ``fold``-ed text.

    Whole words and phrases in scripts that separate words with spaces: "AI" does not match
    "said". Where the keyword starts or ends with a character of an unspaced script (Chinese,
    Japanese, Thai, Korean…) that edge matches anywhere, because there are no spaces to anchor
    on: "人工知能" matches in "人工知能法案が成立".
    """
    folded, parts = _keyword_parts(keyword)
    if not parts:
        # Only separators ("-"): nothing to anchor on, so it is taken literally.
        return re.escape(folded)
    body = re.escape(parts[0])
    for before, after in itertools.pairwise(parts):
        unspaced = _is_unspaced(before[-1]) or _is_unspaced(after[0])
        body += (_UNSPACED_SEPARATOR if unspaced else _KEYWORD_SEPARATOR) + re.escape(after)
    start = _NOT_AFTER_WORD if _needs_boundary(parts[0][0]) else ""
    end = _NOT_BEFORE_WORD if _needs_boundary(parts[-1][-1]) else ""
    return start + body + end


def compile_rule(rule: Rule) -> CompiledRule:
    """Compile one rule; regexes are case-insensitive and see accent-folded text.

    The regex's own accents are folded too, so "/künstlich/" and "/kunstlich/" are the same.
    Regexes run on the linear-time engine (``safety.regex``): no rule can hang a poll.
    """
    if not rule.is_regex:
        folded, parts = _keyword_parts(rule.pattern)
        return CompiledRule(
            rule=rule,
            regex=re.compile(keyword_pattern(rule.pattern)),
            literal=max(parts, key=len) if parts else folded,
        )
    try:
        regex = compile_rule_regex(fold_accents(rule.pattern))
    except ValueError:
        # Folding can in rare cases break a pattern (a mark right after a backslash); the
        # pattern as written was validated by the catalog, so fall back to it.
        regex = compile_rule_regex(rule.pattern)
    return CompiledRule(rule=rule, regex=regex)


@lru_cache(maxsize=RULE_CACHE_SIZE)
def compile_rules(category: CategoryConfig) -> CompiledRules:
    """Compile a category's rules; cached by the (frozen, hashable) config itself."""
    return CompiledRules(
        category_id=category.id,
        include=tuple(compile_rule(rule) for rule in category.include),
        exclude=tuple(compile_rule(rule) for rule in category.exclude),
        min_score=category.min_score,
        topic=category.topic,
        sources={
            rules.source_id: CompiledSourceRules(
                include=tuple(compile_rule(rule) for rule in rules.include),
                exclude=tuple(compile_rule(rule) for rule in rules.exclude),
            )
            for rules in category.source_rules
        },
    )


def _fields(entry: Classifiable) -> _Fields:
    # One field per line keeps a regex's "." from running from one field into the next.
    raw = (entry.title, entry.text, "\n".join(entry.tags), entry.author or "", entry.url or "")
    plain = tuple(fold_accents(value) for value in raw)
    # fold(value) of a value folded already: its first fold_accents would change nothing.
    return _Fields(plain=plain, folded=tuple(fold_accents(value.casefold()) for value in plain))


def _hits(
    fields: _Fields, rules: Sequence[CompiledRule], label: str
) -> tuple[float, list[tuple[int, str]]]:
    """The score and the (field index, reason) of every rule of ``rules`` that matches."""
    hits: list[tuple[int, str]] = []
    score = 0.0
    for rule in rules:
        where = rule.search(fields)
        if where is None:
            continue
        hits.append((FIELDS.index(where), f"{label} {rule.rule.label} matched in {where}"))
        score += TITLE_WEIGHT if where == "title" else OTHER_FIELD_WEIGHT
    # Title hits first: they are what an editor reading the reason wants to see; the sort is
    # stable, so rules keep their file order within a field.
    hits.sort(key=lambda hit: hit[0])
    return min(score, MAX_SCORE), hits


def _decide(fields: _Fields, rules: CompiledRules, source_id: str | None) -> CategoryDecision:
    category_id = rules.category_id
    own = rules.sources.get(source_id) if source_id is not None else None
    excludes = ((("source exclude", own.exclude),) if own else ()) + (("exclude", rules.exclude),)
    for label, group in excludes:
        for rule in group:
            where = rule.search(fields)
            if where is not None:
                return CategoryDecision(
                    category_id,
                    False,
                    0.0,
                    f"{label} {rule.rule.label} matched in {where}",
                    excluded=True,
                )
    source_score, source_hits = _hits(fields, own.include, "source include") if own else (0, [])
    if own and own.include and not source_hits:
        return CategoryDecision(category_id, False, 0.0, NO_SOURCE_INCLUDE_MATCHED_REASON)
    if rules.include:
        score, hits = _hits(fields, rules.include, "include")
        if not hits:
            return CategoryDecision(category_id, False, 0.0, NO_INCLUDE_MATCHED_REASON)
        reason = "; ".join(text for _, text in hits + source_hits)
    elif rules.topic:
        return CategoryDecision(category_id, False, 0.0, TOPIC_DECIDES_REASON)
    elif source_hits:
        score, reason = source_score, "; ".join(text for _, text in source_hits)
    else:
        score, reason = 1.0, ALL_ENTRIES_REASON
    if score < rules.min_score:
        return CategoryDecision(
            category_id,
            False,
            score,
            f"score {score:.2f} below min_score {rules.min_score:.2f}: {reason}",
        )
    return CategoryDecision(category_id, True, score, reason)


def explain(
    entry: Classifiable,
    *,
    source_categories: Sequence[str],
    categories: Mapping[str, CategoryConfig],
    source_id: str | None = None,
) -> list[CategoryDecision]:
    """Every category of the source with the decision taken, accepted or not.

    Order follows ``source_categories`` (duplicates dropped); a category id the mapping does
    not know, such as one removed from the catalog since the source row was written, is skipped.
    ``source_id`` names the entry's source, whose own rules (``CategoryConfig.source_rules``)
    then apply too.
    """
    fields: _Fields | None = None
    decisions: list[CategoryDecision] = []
    seen: set[str] = set()
    for category_id in source_categories:
        category = categories.get(category_id)
        if category is None or category_id in seen:
            continue
        seen.add(category_id)
        if (
            not category.include
            and not category.exclude
            and not category.topic
            and (source_id is None or category.rules_of(source_id) is None)
        ):
            # Folding the text is most of classify's cost; a rule-less category needs none.
            decisions.append(CategoryDecision(category_id, True, 1.0, ALL_ENTRIES_REASON))
            continue
        if fields is None:
            fields = _fields(entry)
        decisions.append(_decide(fields, compile_rules(category), source_id))
    return decisions


def classify(
    entry: Classifiable,
    *,
    source_categories: Sequence[str],
    categories: Mapping[str, CategoryConfig],
    source_id: str | None = None,
) -> list[CategoryMatch]:
    """The categories, among those its source feeds, that ``entry`` belongs to.

    For each category: an exclude rule matching anywhere, the category's or the source's own
    (``source_id``), keeps the entry out, whatever else matches. A source with include rules
    lets through only entries that match one of them. Then a category with include rules takes
    the entry only if one of them matches; a category without include rules takes every entry
    of its sources (reason ``"all entries of source"``, score 1.0, or the score and reason of
    the source's include rules), unless it has ``topic = true``: then only the clustering
    stage's topic match may take it. Finally an entry scoring below the category's
    ``min_score`` is left out.

    Matching looks at the title, plain text, tags, author and URL, ignoring case and accents.
    Keywords match whole words or phrases (see ``keyword_pattern``); ``/regex/`` rules are
    searched case-insensitively in accent-folded text, with ``(?-i:…)`` available for a
    case-sensitive part such as ``/(?-i:\\bAI\\b)/`` (which then skips the French "j'ai").

    The reason lists each include rule that matched and the first field it matched in, title
    hits first, e.g. ``"include 'AI Act' matched in title; include /\\bKI\\b/ matched in text"``.
    The score adds 1.0 per include rule matched in the title and 0.5 per rule matched only
    elsewhere, capped at 1.0.
    """
    decisions = explain(
        entry, source_categories=source_categories, categories=categories, source_id=source_id
    )
    return [decision.as_match() for decision in decisions if decision.accepted]


def topic_reason(similarity: float, threshold: float, *, description: bool, examples: bool) -> str:
    """Why the topic match took an entry, e.g. "topic similarity 0.21 >= 0.14 to the category
    description"."""
    compared = " and ".join(
        name for name, used in (("description", description), ("examples", examples)) if used
    )
    return f"{TOPIC_REASON_PREFIX} {similarity:.2f} >= {threshold:.2f} to the category {compared}"
