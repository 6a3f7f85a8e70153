"""Unit tests for aggregator.editorial.classify: rule matching semantics, reasons, scores and
order."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from aggregator.catalog import Catalog, CategoryConfig, Rule, SourceConfig, parse_rule
from aggregator.editorial.classify import (
    ALL_ENTRIES_REASON,
    FIELDS,
    NO_INCLUDE_MATCHED_REASON,
    NO_SOURCE_INCLUDE_MATCHED_REASON,
    TOPIC_DECIDES_REASON,
    TOPIC_REASON_PREFIX,
    CategoryDecision,
    _fields,
    classify,
    compile_rule,
    compile_rules,
    explain,
    fold,
    fold_accents,
    keyword_pattern,
    topic_reason,
)
from aggregator.polling.pipeline import prepare_feed
from aggregator.store.history import StoredEntry
from aggregator.types import CategoryMatch, NormalizedEntry

NOW = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)


def entry(
    title: str = "",
    body: str = "",
    *,
    url: str | None = None,
    author: str | None = None,
    tags: tuple[str, ...] = (),
) -> NormalizedEntry:
    text = "\n".join(part for part in (title, body) if part)
    return NormalizedEntry(
        identity_key="guid:test",
        guid="test",
        url=url,
        link=url,
        title=title,
        summary_html="",
        content_html="",
        text=text,
        language=None,
        published_at=NOW,
        updated_at=NOW,
        author=author,
        tags=tags,
        enclosures=(),
        content_hash="hash",
    )


def category(
    category_id: str = "ai-policy",
    *,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> CategoryConfig:
    return CategoryConfig(
        id=category_id,
        title=category_id,
        include=tuple(parse_rule(text) for text in include),
        exclude=tuple(parse_rule(text) for text in exclude),
    )


def matches(e: NormalizedEntry, *configs: CategoryConfig) -> list[CategoryMatch]:
    return classify(
        e, source_categories=[c.id for c in configs], categories={c.id: c for c in configs}
    )


def accepted(e: NormalizedEntry, config: CategoryConfig) -> bool:
    return bool(matches(e, config))


# ── case and accents ─────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("rule", "title"),
    [
        ("intelligence artificielle", "L'Intelligence Artificielle au Parlement"),
        ("Intelligence Artificielle", "un débat sur l'intelligence artificielle"),
        ("künstliche Intelligenz", "KUNSTLICHE INTELLIGENZ im Bundestag"),
        ("Kunstliche Intelligenz", "Gesetz über künstliche Intelligenz"),
        ("régulation de l'IA", "La regulation de l’IA divise Bruxelles"),
        ("Straße", "STRASSE gesperrt"),
        ("AI", "ＡＩ規制の議論"),
    ],
)
def test_keywords_ignore_case_accents_and_typography(rule: str, title: str) -> None:
    assert accepted(entry(title), category(include=(rule,)))


def test_fold_is_case_and_accent_insensitive() -> None:
    assert fold("Intelligence Artificielle") == fold("intelligence artificielle")
    assert fold("Régulation") == "regulation"
    assert fold("l’IA") == "l'ia"


@pytest.mark.parametrize(
    "text",
    [
        "Künstliche Intelligenz",
        "İstanbul’s “quotes” — dashes",
        "한국어 텍스트",
        "Straße ÉTÉ",
        "ﬁ ligature ½",
        "Ǆ ḳ́ a\u0345b \u0f71\u0f72",
        "がん検診の新制度",
        "Ελληνικά Ὀδυσσεύς",
        "plain ascii",
        "‘typographic’ only – here",
    ],
)
def test_folding_is_idempotent_so_fields_fold_each_text_once(text: str) -> None:
    # _fields casefolds the accent-folded text and folds accents once more, instead of fold's
    # two passes: the same only because folding accents twice changes nothing.
    plain = fold_accents(text)
    assert fold_accents(plain) == plain
    assert fold(plain) == fold_accents(plain.casefold()) == fold(text)


def test_fold_keeps_japanese_voicing_marks() -> None:
    # か and が are different syllables, not an accent: "かん" must not find "がん" (cancer).
    assert fold("がん") != fold("かん")
    assert not accepted(entry("がん検診の新制度"), category(include=("かん",)))


# ── whole words ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "title",
    [
        "Organisers said they would maintain the route",
        "Rain and wind in Aix-en-Provence",
        "OpenAIs rival raises money",
        "Email chain about the campaign",
    ],
)
def test_short_keyword_does_not_match_inside_words(title: str) -> None:
    assert not accepted(entry(title), category(include=("AI",)))


@pytest.mark.parametrize(
    "title",
    ["New AI rules", "AI: what changes", "(AI) in Europe", "AI-powered hiring tools", "EU's AI."],
)
def test_short_keyword_matches_as_a_word(title: str) -> None:
    assert accepted(entry(title), category(include=("AI",)))


def test_hyphenated_keyword() -> None:
    rule = category(include=("KI-Verordnung",))
    assert accepted(entry("EU verschiebt Hochrisiko-Regeln der KI-Verordnung"), rule)
    assert accepted(entry("Die KI Verordnung kommt später"), rule)
    # Whole words: an inflected compound needs a regex rule such as /\bKI-Verordnung/.
    assert not accepted(entry("Die KI-Verordnungen der Länder"), rule)
    assert not accepted(entry("Die Verordnung über KI"), rule)


def test_phrase_matches_across_spaces_hyphens_and_url_slugs() -> None:
    rule = category(include=("AI Act",))
    assert accepted(entry("The AI  Act, explained"), rule)
    assert accepted(entry("Der AI-Act kommt"), rule)
    e = entry("Brussels blinks", url="https://wire.example/2026/11/12/eu-ai-act-delay")
    assert matches(e, rule)[0].reason == "include 'AI Act' matched in url"
    assert not accepted(entry("The AI will act on its own"), rule)


def test_keyword_of_separators_only_is_literal() -> None:
    assert accepted(entry("score 3 - 1"), category(include=("-",)))
    assert not accepted(entry("score 3:1"), category(include=("-",)))


# ── scripts without spaces ───────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("rule", "title"),
    [
        ("인공지능", "정부, 인공지능을 위한 새 법안 발표"),  # Korean particle attached
        ("AI 기본법", "국회, AI기본법 시행령 의결"),  # space left out
        ("인공지능 기본법", "인공지능기본법 통과"),
        ("人工知能", "政府が人工知能法案を閣議決定"),  # Japanese, no spaces
        ("AI法案", "政府のAI法案が成立"),  # Latin edge against kana
        ("AI", "政府のAI規制"),
        ("人工智能法", "全国人大审议人工智能法草案"),  # Chinese
        ("ปัญญาประดิษฐ์", "รัฐบาลออกกฎหมายปัญญาประดิษฐ์ฉบับใหม่"),  # Thai
    ],
)
def test_unspaced_scripts_match_as_substrings(rule: str, title: str) -> None:
    assert accepted(entry(title), category(include=(rule,)))


def test_latin_edge_still_needs_a_boundary_against_latin_letters() -> None:
    assert not accepted(entry("BRAIN法の研究"), category(include=("AI法",)))
    assert "(?<!" in keyword_pattern("AI法")
    assert keyword_pattern("人工知能") == "人工知能"


# ── regex rules ──────────────────────────────────────────────────────────────────────────────


def test_regex_is_case_insensitive() -> None:
    rule = category(include=(r"/\bAI (law|bill)s?\b/",))
    assert accepted(entry("Senate passes ai bills"), rule)
    assert accepted(entry("New AI LAWS in force"), rule)
    assert not accepted(entry("AI billing startup"), rule)


def test_regex_can_be_case_sensitive_with_scoped_flag() -> None:
    rule = category(include=(r"/(?-i:\bAI\b)/",))
    assert accepted(entry("EU AI rules"), rule)
    assert not accepted(entry("J'ai testé le nouveau casque"), rule)


def test_regex_ignores_accents_on_both_sides() -> None:
    for pattern in (r"/\bkünstlich\w* Intelligenz/", r"/\bkunstlich\w* intelligenz/"):
        rule = category(include=(pattern,))
        assert accepted(entry("Regeln für künstlicher Intelligenz"), rule)
        assert accepted(entry("KUNSTLICHE INTELLIGENZ"), rule)


def test_regex_prefix_rule_matches_compounds() -> None:
    rule = category(include=(r"/\bdatenschutz/",))
    assert accepted(entry("Neue Datenschutzbehörde gegründet"), rule)
    assert not accepted(entry("Schutz der Daten"), rule)


def test_regex_does_not_run_from_one_field_into_the_next() -> None:
    rule = category(include=(r"/smith.*example/",))
    e = entry("Report", author="Jane Smith", url="https://wire.example/report")
    assert not accepted(e, rule)


# ── exclude, no include, reasons, scores ─────────────────────────────────────────────────────


def test_exclude_wins_over_include() -> None:
    config = category(include=("AI", "AI Act"), exclude=("AI-generated art",))
    e = entry("AI Act: what it means for AI-generated art")
    assert matches(e, config) == []
    [decision] = explain(e, source_categories=[config.id], categories={config.id: config})
    assert not decision.accepted
    assert decision.reason == "exclude 'AI-generated art' matched in title"


def test_exclude_applies_to_category_without_include() -> None:
    config = category("tech-policy", exclude=("sponsored content",))
    assert matches(entry("Sponsored Content: our partner's VPN"), config) == []
    assert accepted(entry("Court rules on encryption"), config)


def test_no_include_rule_takes_every_entry() -> None:
    config = category("tech-policy")
    assert matches(entry("Anything at all"), config) == [
        CategoryMatch(category_id="tech-policy", score=1.0, reason=ALL_ENTRIES_REASON)
    ]
    assert ALL_ENTRIES_REASON == "all entries of source"


def test_no_include_matched_is_explained() -> None:
    config = category(include=("AI Act",))
    e = entry("City marathon breaks record")
    assert classify(e, source_categories=["ai-policy"], categories={"ai-policy": config}) == []
    [decision] = explain(e, source_categories=["ai-policy"], categories={"ai-policy": config})
    assert (decision.accepted, decision.score, decision.reason) == (
        False,
        0.0,
        NO_INCLUDE_MATCHED_REASON,
    )


def test_reason_names_rule_and_field() -> None:
    config = category(include=("AI Act", r"/\bKI\b/", "policy"))
    e = entry("Delay for the AI Act", "KI-Regeln kommen später", tags=("Policy",))
    [match] = matches(e, config)
    assert match.reason == (
        "include 'AI Act' matched in title; include /\\bKI\\b/ matched in text; "
        "include 'policy' matched in tags"
    )


def test_reason_puts_title_hits_first() -> None:
    config = category(include=("regulation", "AI"))
    [match] = matches(entry("AI in Europe", "New regulation agreed"), config)
    assert match.reason == ("include 'AI' matched in title; include 'regulation' matched in text")


def test_reason_for_author() -> None:
    config = category(include=("Meridian Wire",))
    [match] = matches(entry("Story", author="Meridian Wire staff"), config)
    assert match.reason == "include 'Meridian Wire' matched in author"


@pytest.mark.parametrize(
    ("title", "body", "score"),
    [
        ("AI Act delayed", "", 1.0),  # one rule in the title
        ("Delay agreed", "The AI Act ...", 0.5),  # one rule in the body only
        ("Delay agreed", "The AI Act and the KI-Verordnung", 1.0),  # two body rules
    ],
)
def test_score(title: str, body: str, score: float) -> None:
    config = category(include=("AI Act", "KI-Verordnung"))
    [match] = matches(entry(title, body), config)
    assert match.score == score


# ── categories, order and caching ────────────────────────────────────────────────────────────


def test_only_the_sources_categories_in_their_order() -> None:
    ai = category("ai-policy", include=("AI",))
    climate = category("climate", include=("climate",))
    tech = category("tech-policy")
    catalog = {c.id: c for c in (ai, climate, tech)}
    e = entry("AI and climate")
    result = classify(
        e, source_categories=["tech-policy", "climate", "ai-policy"], categories=catalog
    )
    assert [m.category_id for m in result] == ["tech-policy", "climate", "ai-policy"]
    result = classify(e, source_categories=["climate"], categories=catalog)
    assert [m.category_id for m in result] == ["climate"]


def test_unknown_and_duplicate_source_categories_are_skipped() -> None:
    ai = category("ai-policy", include=("AI",))
    result = classify(
        entry("AI"),
        source_categories=["gone", "ai-policy", "ai-policy"],
        categories={"ai-policy": ai},
    )
    assert [m.category_id for m in result] == ["ai-policy"]


def test_rules_are_compiled_once_per_config() -> None:
    first = category(include=("AI",))
    assert compile_rules(first) is compile_rules(category(include=("AI",)))
    assert compile_rules(first) is not compile_rules(category(include=("KI",)))


def test_same_category_id_in_two_catalogs_does_not_leak() -> None:
    old = category("ai-policy", include=("AI",))
    new = category("ai-policy", include=("KI",))
    e = entry("KI-Regeln")
    assert matches(e, old) == []
    assert accepted(e, new)
    assert matches(e, old) == []


def test_rule_built_by_hand_works_like_parsed_one() -> None:
    config = CategoryConfig(id="x", title="X", include=(Rule(pattern="AI", is_regex=False),))
    assert accepted(entry("AI"), config)


# ── a source's own rules ─────────────────────────────────────────────────────────────────────


def with_source(
    config: CategoryConfig,
    source_id: str = "wire",
    *,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> CategoryConfig:
    """``config`` as a catalog builds it when source ``source_id`` has rules of its own."""
    source = SourceConfig(
        id=source_id,
        url=f"https://{source_id}.example/feed",
        categories=(config.id,),
        include=tuple(parse_rule(text) for text in include),
        exclude=tuple(parse_rule(text) for text in exclude),
    )
    return Catalog(sources=(source,), categories=(config,)).category(config.id)


def decide(
    e: NormalizedEntry, config: CategoryConfig, source_id: str | None = "wire"
) -> CategoryDecision:
    [decision] = explain(
        e, source_categories=[config.id], categories={config.id: config}, source_id=source_id
    )
    return decision


def test_source_exclude_wins_over_the_category_include_ignoring_case_and_accents() -> None:
    config = with_source(category(include=("AI Act",)), exclude=("Rückblick",))
    decision = decide(entry("AI Act: RUCKBLICK auf das Jahr"), config)
    assert (decision.accepted, decision.excluded) == (False, True)
    assert decision.reason == "source exclude 'Rückblick' matched in title"
    # Only that source's entries: another source, or none named, is not concerned.
    assert decide(entry("AI Act: RUCKBLICK auf das Jahr"), config, "other").accepted
    assert decide(entry("AI Act: RUCKBLICK auf das Jahr"), config, None).accepted


def test_source_include_gates_every_category_of_the_source() -> None:
    config = with_source(category(include=("AI Act",)), include=("Europe",))
    rejected = decide(entry("AI Act talks in Washington"), config)
    assert (rejected.accepted, rejected.excluded) == (False, False)
    assert rejected.reason == NO_SOURCE_INCLUDE_MATCHED_REASON
    taken = decide(entry("AI Act talks", "Delegates from EUROPE met."), config)
    assert taken.accepted
    assert taken.reason == (
        "include 'AI Act' matched in title; source include 'Europe' matched in text"
    )
    assert taken.score == 1.0  # the category's rules make the score


def test_source_include_alone_decides_a_category_without_include_rules() -> None:
    config = with_source(category("everything"), include=("données personnelles",))
    # Without the source named its rules do not apply: a category without rules takes all.
    assert matches(entry("Météo", "Il pleut"), config) == [
        CategoryMatch("everything", 1.0, ALL_ENTRIES_REASON)
    ]
    found = classify(
        entry("Fuite", "Des DONNEES PERSONNELLES exposées"),
        source_categories=["everything"],
        categories={"everything": config},
        source_id="wire",
    )
    assert found == [
        CategoryMatch("everything", 0.5, "source include 'données personnelles' matched in text")
    ]
    assert decide(entry("Météo", "Il pleut"), config).reason == NO_SOURCE_INCLUDE_MATCHED_REASON


def test_a_source_rule_of_a_regex_is_case_insensitive() -> None:
    config = with_source(category("everything"), exclude=("/sponsor(ed|isé)/",))
    assert decide(entry("Contenu SPONSORISÉ"), config).excluded
    assert decide(entry("Sponsored post"), config).excluded
    assert decide(entry("News"), config).accepted


# ── min_score ────────────────────────────────────────────────────────────────────────────────


def test_min_score_leaves_out_weak_matches_and_says_why() -> None:
    strict = dataclasses.replace(category(include=("AI Act",)), min_score=0.75)
    weak = decide(entry("Weekly news", "The AI Act came up once."), strict, None)
    assert (weak.accepted, weak.excluded, weak.score) == (False, False, 0.5)
    assert weak.reason == ("score 0.50 below min_score 0.75: include 'AI Act' matched in text")
    assert decide(entry("The AI Act explained"), strict, None).accepted
    # Exactly the minimum is enough.
    even = dataclasses.replace(strict, min_score=0.5)
    assert decide(entry("Weekly news", "The AI Act came up once."), even, None).accepted


def test_min_score_never_refuses_a_category_without_rules() -> None:
    config = dataclasses.replace(category("everything"), min_score=1.0)
    assert matches(entry("Anything"), config) == [
        CategoryMatch("everything", 1.0, ALL_ENTRIES_REASON)
    ]


# ── topic categories at fetch time ───────────────────────────────────────────────────────────


def test_a_topic_category_without_include_rules_waits_for_the_topic_match() -> None:
    config = dataclasses.replace(category("health"), description="Medicine", topic=True)
    decision = decide(entry("Hospital opens"), config, None)
    assert (decision.accepted, decision.excluded) == (False, False)
    assert decision.reason == TOPIC_DECIDES_REASON
    # With include rules, keywords still take what they match at once.
    keyed = dataclasses.replace(config, include=(parse_rule("hospital"),))
    assert decide(entry("Hospital opens"), keyed, None).accepted


def test_topic_reasons_name_what_was_compared() -> None:
    reason = topic_reason(0.8312, 0.8, description=True, examples=False)
    assert reason == "topic similarity 0.83 >= 0.80 to the category description"
    assert reason.startswith(TOPIC_REASON_PREFIX)
    assert topic_reason(0.2, 0.14, description=True, examples=True).endswith(
        "to the category description and examples"
    )
    assert not ALL_ENTRIES_REASON.startswith(TOPIC_REASON_PREFIX)


def test_a_stored_entry_is_classified_like_a_normalized_one() -> None:
    stored = StoredEntry(
        entry_id=1,
        source_id="wire",
        title="Weekly",
        text="Weekly\nbody",
        tags=("KI-Verordnung",),
        author=None,
        url=None,
        published_at=NOW,
    )
    config = category(include=("KI-Verordnung",))
    assert classify(stored, source_categories=["ai-policy"], categories={"ai-policy": config}) == [
        CategoryMatch("ai-policy", 0.5, "include 'KI-Verordnung' matched in tags")
    ]


def test_summary_content_tags_author_and_url_are_all_searched() -> None:
    # Through the fetch path's own parse and normalize: the summary and the content both end
    # up in the searched text, even when neither repeats the other.
    feed = b"""<?xml version="1.0"?><rss version="2.0"
      xmlns:content="http://purl.org/rss/1.0/modules/content/"
      xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>
      <item><title>Weekly digest</title><link>https://n.example/2026/eu-ai-act-delay</link>
      <guid>x1</guid><description>The summary speaks of DATENSCHUTZ.</description>
      <content:encoded><![CDATA[<p>The content names the <b>AI Act</b>.</p>]]></content:encoded>
      <category>Chatkontrolle</category><dc:creator>Erika Mustermann</dc:creator>
      </item></channel></rss>"""
    rules = {
        "summary": ("Datenschutz", "text"),
        "content": ("AI Act", "text"),
        "tags": ("chatkontrolle", "tags"),
        "author": ("Mustermann", "author"),
        "url": ("/eu-ai-act-delay/", "url"),
    }
    configs = {name: category(name, include=(rule,)) for name, (rule, _) in rules.items()}
    prepared = prepare_feed(
        feed,
        url="https://n.example/feed",
        headers={},
        source_language="en",
        source_categories=list(configs),
        categories=configs,
        now=NOW,
    )
    [(_, found)] = prepared.entries
    assert {m.category_id: m.reason for m in found} == {
        name: f"include {parse_rule(rule).label} matched in {where}"
        for name, (rule, where) in rules.items()
    }


KEYWORDS = (
    "AI",
    "AI Act",
    "open-source",
    "-",
    "Künstliche Intelligenz",
    "人工知能",
    "l’IA",
    "e-mail",
    "STRASSE",
    "x_y z",
    "AI 기본법",
    "c++",
    "a.b",
)
FIELD_TEXTS = (
    "the ai act passed",
    "ai-act",
    "said aid",
    "open source and open_source",
    "Künstliche-Intelligenz",
    "人工知能法案",
    "l'ia",
    "email e mail e-mail",
    "straße",
    "x y  z",
    "ai기본법",
    "c++ and c",
    "a.b a-b",
    "",
    "-",
    "ai\nact",
)


def test_keyword_literal_only_skips_fields_without_a_match() -> None:
    entries = [
        NormalizedEntry(
            identity_key="k",
            guid=None,
            url=f"https://x.example/{i}",
            link=None,
            title=title,
            summary_html="",
            content_html="",
            text=f"{title}\n{text}",
            language=None,
            published_at=datetime(2025, 1, 1, tzinfo=UTC),
            updated_at=datetime(2025, 1, 1, tzinfo=UTC),
            author=text,
            tags=(text,),
            enclosures=(),
            content_hash="h",
        )
        for i, (title, text) in enumerate(zip(FIELD_TEXTS, reversed(FIELD_TEXTS), strict=True))
    ]
    matched = 0
    for keyword in KEYWORDS:
        rule = compile_rule(Rule(keyword, False))
        assert rule.literal
        for entry in entries:
            fields = _fields(entry)
            # Every field, searched with the regex alone.
            expected = next(
                (
                    name
                    for name, value in zip(FIELDS, fields.folded, strict=True)
                    if value and rule.regex.search(value)
                ),
                None,
            )
            assert rule.search(fields) == expected, (keyword, entry.title)
            matched += expected is not None
    assert matched > 20
