"""Unit tests for aggregator.catalog: every problem is a ConfigError naming file, id and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aggregator.catalog import (
    CATEGORIES_FILE,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_TOPIC_THRESHOLD,
    SOURCES_FILE,
    Catalog,
    CatalogErrors,
    CategoryConfig,
    Rule,
    SourceConfig,
    SourceRules,
    attach_source_rules,
    load_catalog,
    parse_duration,
    parse_rule,
)
from aggregator.errors import ConfigError

GOOD_SOURCE = """
[[source]]
id = "wire"
url = "https://wire.example/feed.xml"
categories = ["ai-policy"]
"""

GOOD_CATEGORY = """
[[category]]
id = "ai-policy"
title = "AI policy"
"""


def write(directory: Path, sources: str = GOOD_SOURCE, categories: str = GOOD_CATEGORY) -> Path:
    (directory / SOURCES_FILE).write_text(sources, encoding="utf-8")
    (directory / CATEGORIES_FILE).write_text(categories, encoding="utf-8")
    return directory


def problem(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_catalog(directory)
    return info.value


def problems(directory: Path) -> list[ConfigError]:
    error = problem(directory)
    return error.errors if isinstance(error, CatalogErrors) else [error]


def assert_located(error: ConfigError, file: str, item: str | None, key: str | None) -> None:
    assert error.file is not None
    assert error.file.endswith(file)
    assert error.item == item
    assert error.key == key
    message = str(error)
    assert file in message
    if item is not None:
        assert repr(item) in message
    if key is not None:
        assert repr(key) in message


# ── valid files ──────────────────────────────────────────────────────────────────────────────


def test_minimal_catalog_and_defaults(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path))
    source = catalog.source("wire")
    assert source.url == "https://wire.example/feed.xml"
    assert source.categories == ("ai-policy",)
    assert source.interval_seconds == DEFAULT_INTERVAL_SECONDS
    assert source.enabled is True
    assert source.language is None
    assert source.title is None
    category = catalog.category("ai-policy")
    assert (category.description, category.languages, category.include, category.exclude) == (
        "",
        (),
        (),
        (),
    )
    assert catalog.directory == tmp_path


def test_full_catalog(tmp_path: Path) -> None:
    write(
        tmp_path,
        sources="""
[[source]]
id = "tribune"
title = "La Tribune"
url = "https://tribune.example/feed.atom"
site_url = "https://tribune.example/"
categories = ["ai-policy", "climate"]
language = "fr-CA"
interval = "6h"
enabled = false
""",
        categories="""
[[category]]
id = "ai-policy"
title = "AI policy"
description = "Laws and regulation"
languages = ["en", "fr"]
include = ["AI Act", '/\\bKI\\b/']
exclude = ["AI-generated art"]

[[category]]
id = "climate"
title = "Climate"
""",
    )
    catalog = load_catalog(tmp_path)
    source = catalog.source("tribune")
    assert (source.title, source.site_url, source.language) == (
        "La Tribune",
        "https://tribune.example/",
        "fr-CA",
    )
    assert source.interval_seconds == 6 * 3600
    assert source.enabled is False
    ai = catalog.category("ai-policy")
    assert ai.languages == ("en", "fr")
    assert ai.include == (Rule("AI Act", is_regex=False), Rule(r"\bKI\b", is_regex=True))
    assert ai.exclude == (Rule("AI-generated art", is_regex=False),)
    assert [c.id for c in catalog.categories] == ["ai-policy", "climate"]


def test_lookup_of_unknown_id_raises_key_error(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path))
    with pytest.raises(KeyError):
        catalog.source("nope")
    with pytest.raises(KeyError):
        catalog.category("nope")


# ── one problem each ─────────────────────────────────────────────────────────────────────────


def test_unknown_source_key(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE + 'intervall = "1h"\n')
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "intervall")


def test_unknown_category_key(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + 'includes = ["AI"]\n')
    assert_located(problem(tmp_path), CATEGORIES_FILE, "ai-policy", "includes")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE.replace("[[source]]", "[[sources]]"))
    errors = problems(tmp_path)
    assert any(
        e.key == "sources" and e.file is not None and e.file.endswith(SOURCES_FILE) for e in errors
    )


def test_duplicate_source_id(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE + GOOD_SOURCE)
    error = problem(tmp_path)
    assert_located(error, SOURCES_FILE, "wire", "id")
    assert "duplicate" in error.reason


def test_duplicate_category_id(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + GOOD_CATEGORY)
    error = problem(tmp_path)
    assert_located(error, CATEGORIES_FILE, "ai-policy", "id")
    assert "duplicate" in error.reason


def test_category_no_source_uses(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + '[[category]]\nid = "climate"\ntitle = "C"\n')
    error = problem(tmp_path)
    assert_located(error, CATEGORIES_FILE, "climate", "id")
    assert "no source" in error.reason


def test_unknown_category_referenced(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE.replace('["ai-policy"]', '["ai-policy", "sport"]'))
    error = problem(tmp_path)
    assert_located(error, SOURCES_FILE, "wire", "categories")
    assert "'sport'" in error.reason


def test_source_without_category(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE.replace('["ai-policy"]', "[]"), categories=GOOD_CATEGORY)
    errors = problems(tmp_path)
    assert any(e.item == "wire" and e.key == "categories" for e in errors)


@pytest.mark.parametrize("interval", ['"30 minutes"', '"1.5h"', '"0m"', '"30s"', '"8d"', "30"])
def test_bad_duration(tmp_path: Path, interval: str) -> None:
    write(tmp_path, sources=GOOD_SOURCE + f"interval = {interval}\n")
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "interval")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400), (" 2 h ", 7200)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_other_units() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration("1w")


@pytest.mark.parametrize("key", ["include", "exclude"])
def test_bad_regex(tmp_path: Path, key: str) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + f"{key} = ['/(unclosed/']\n")
    error = problem(tmp_path)
    assert_located(error, CATEGORIES_FILE, "ai-policy", key)
    assert "(unclosed" in error.reason


def test_blank_keyword(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + 'include = ["  "]\n')
    assert_located(problem(tmp_path), CATEGORIES_FILE, "ai-policy", "include")


def test_rules_must_be_strings(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + "include = [1, 2]\n")
    assert_located(problem(tmp_path), CATEGORIES_FILE, "ai-policy", "include")


def test_parse_rule() -> None:
    assert parse_rule("/\\bAI\\b/") == Rule(r"\bAI\b", is_regex=True)
    assert parse_rule("  AI Act ") == Rule("AI Act", is_regex=False)
    assert parse_rule("/") == Rule("/", is_regex=False)
    assert parse_rule("/AI/").label == "/AI/"
    assert parse_rule("AI Act").label == "'AI Act'"


@pytest.mark.parametrize("url", ["ftp://wire.example/feed", "wire.example/feed", "https://"])
def test_bad_url(tmp_path: Path, url: str) -> None:
    write(tmp_path, sources=GOOD_SOURCE.replace("https://wire.example/feed.xml", url))
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "url")


def test_bad_site_url(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE + 'site_url = "mailto:desk@wire.example"\n')
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "site_url")


@pytest.mark.parametrize("language", ["English", "e", "fr_FR", "en-"])
def test_bad_source_language(tmp_path: Path, language: str) -> None:
    write(tmp_path, sources=GOOD_SOURCE + f'language = "{language}"\n')
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "language")


def test_bad_category_language(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + 'languages = ["en", "Deutsch"]\n')
    error = problem(tmp_path)
    assert_located(error, CATEGORIES_FILE, "ai-policy", "languages")
    assert "'Deutsch'" in error.reason


def test_bad_slug(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE.replace('id = "wire"', 'id = "Meridian Wire"'))
    assert_located(problem(tmp_path), SOURCES_FILE, "Meridian Wire", "id")


def test_enabled_must_be_boolean(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE + 'enabled = "no"\n')
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "enabled")


def test_public_only_is_off_by_default_and_must_be_boolean(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE)
    assert load_catalog(tmp_path).source("wire").public_only is False
    write(tmp_path, sources=GOOD_SOURCE + "public_only = true\n")
    assert load_catalog(tmp_path).source("wire").public_only is True
    write(tmp_path, sources=GOOD_SOURCE + 'public_only = "yes"\n')
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "public_only")


def test_full_text_is_off_by_default_and_takes_an_optional_selector(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE)
    wire = load_catalog(tmp_path).source("wire")
    assert (wire.full_text, wire.full_text_selector) == (False, None)
    write(tmp_path, sources=GOOD_SOURCE + 'full_text = true\nfull_text_selector = "main .body"\n')
    wire = load_catalog(tmp_path).source("wire")
    assert (wire.full_text, wire.full_text_selector) == (True, "main .body")
    write(tmp_path, sources=GOOD_SOURCE + 'full_text = "yes"\n')
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "full_text")


@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        ("div[[", "is not a CSS selector"),
        ("p::before", "Pseudo-elements are not supported"),
        ("", "must be a non-empty string"),
    ],
)
def test_a_bad_selector_is_refused_with_the_reason(
    tmp_path: Path, selector: str, reason: str
) -> None:
    write(tmp_path, sources=GOOD_SOURCE + f'full_text = true\nfull_text_selector = "{selector}"\n')
    error = problem(tmp_path)
    assert_located(error, SOURCES_FILE, "wire", "full_text_selector")
    assert reason in str(error)


def test_a_selector_without_full_text_is_refused(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE + 'full_text_selector = "article"\n')
    error = problem(tmp_path)
    assert_located(error, SOURCES_FILE, "wire", "full_text_selector")
    assert "full_text = true" in str(error)


def test_missing_required_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        sources='[[source]]\nid = "wire"\ncategories = ["ai-policy"]\n',
        categories='[[category]]\nid = "ai-policy"\n',
    )
    located = {(Path(e.file or "").name, e.item, e.key) for e in problems(tmp_path)}
    assert (SOURCES_FILE, "wire", "url") in located
    assert (CATEGORIES_FILE, "ai-policy", "title") in located


def test_source_without_id_is_named_by_position(tmp_path: Path) -> None:
    write(
        tmp_path,
        sources=GOOD_SOURCE + '[[source]]\nurl = "https://x.example/"\n'
        'categories = ["ai-policy"]\n',
    )
    assert_located(problem(tmp_path), SOURCES_FILE, "source[1]", "id")


@pytest.mark.parametrize("missing", [SOURCES_FILE, CATEGORIES_FILE])
def test_missing_file(tmp_path: Path, missing: str) -> None:
    write(tmp_path)
    (tmp_path / missing).unlink()
    error = problem(tmp_path)
    assert_located(error, missing, None, None)
    assert "not found" in error.reason


def test_missing_directory(tmp_path: Path) -> None:
    assert "not found" in problem(tmp_path / "nowhere").reason


@pytest.mark.parametrize("broken", [SOURCES_FILE, CATEGORIES_FILE])
def test_invalid_toml(tmp_path: Path, broken: str) -> None:
    write(tmp_path)
    (tmp_path / broken).write_text('[[source]\nid = "wire\n', encoding="utf-8")
    error = problem(tmp_path)
    assert_located(error, broken, None, None)
    assert "TOML" in error.reason


def test_tables_must_be_arrays(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY.replace("[[category]]", "[category]"))
    errors = problems(tmp_path)
    assert any(e.key == "category" for e in errors)


# ── several problems at once ─────────────────────────────────────────────────────────────────


def test_several_problems_reported_together(tmp_path: Path) -> None:
    write(
        tmp_path,
        sources="""
[[source]]
id = "wire"
url = "ftp://wire.example/feed"
categories = ["ai-policy", "sport"]
interval = "soon"
language = "English"

[[source]]
id = "wire"
url = "https://wire.example/other"
categories = ["ai-policy"]
colour = "blue"
""",
        categories="""
[[category]]
id = "ai-policy"
title = "AI policy"
include = ['/[unclosed/']
languages = ["xx_YY"]

[[category]]
id = "climate"
title = "Climate"
""",
    )
    error = problem(tmp_path)
    assert isinstance(error, CatalogErrors)
    located = {(Path(e.file or "").name, e.item, e.key) for e in error.errors}
    assert located >= {
        (SOURCES_FILE, "wire", "url"),
        (SOURCES_FILE, "wire", "interval"),
        (SOURCES_FILE, "wire", "language"),
        (SOURCES_FILE, "wire", "id"),
        (SOURCES_FILE, "wire", "colour"),
        (SOURCES_FILE, "wire", "categories"),
        (CATEGORIES_FILE, "ai-policy", "include"),
        (CATEGORIES_FILE, "ai-policy", "languages"),
        (CATEGORIES_FILE, "climate", "id"),
    }
    message = str(error)
    assert f"{len(error.errors)} problems" in message
    for each in error.errors:
        assert str(each) in message


# ── defects found in review, fixed; kept as regression tests ────


def test_malformed_ipv6_url_is_a_config_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        sources=GOOD_SOURCE.replace("https://wire.example/feed.xml", "http://[wire.example/feed"),
    )
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "url")


def test_empty_regex_is_refused(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + 'exclude = ["//"]\n')
    assert_located(problem(tmp_path), CATEGORIES_FILE, "ai-policy", "exclude")


def test_regex_with_surrounding_spaces_is_a_regex() -> None:
    assert parse_rule(" /AI/ ") == Rule("AI", is_regex=True)


# ── rules of sources, min_score, priority, topic ─────────────────────────────────────────────


def test_source_rules_priority_and_topic_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        sources=GOOD_SOURCE
        + """include = ["Europe", '/\\bEU\\b/']
exclude = ["Rückblick"]
priority = 5

[[source]]
id = "blog"
url = "https://blog.example/feed.xml"
categories = ["ai-policy", "health"]
""",
        categories=GOOD_CATEGORY
        + """min_score = 0.75

[[category]]
id = "health"
title = "Health"
description = "Hospitals, doctors and public health."
topic = true
topic_threshold = 0.2
topic_examples = ["vaccine trial", "  santé   publique "]
""",
    )
    catalog = load_catalog(tmp_path)
    wire = catalog.source("wire")
    assert wire.include == (Rule("Europe", is_regex=False), Rule(r"\bEU\b", is_regex=True))
    assert wire.exclude == (Rule("Rückblick", is_regex=False),)
    assert wire.priority == 5
    assert catalog.source("blog").priority == 0
    assert catalog.priorities == {"wire": 5}
    ai = catalog.category("ai-policy")
    assert ai.min_score == 0.75
    assert (ai.topic, ai.topic_threshold, ai.threshold) == (False, None, DEFAULT_TOPIC_THRESHOLD)
    # Each category carries the own rules of the sources that feed it, and only those.
    assert ai.source_rules == (SourceRules("wire", wire.include, wire.exclude),)
    assert ai.rules_of("wire") == SourceRules("wire", wire.include, wire.exclude)
    assert ai.rules_of("blog") is None
    health = catalog.category("health")
    assert health.source_rules == ()
    assert (health.topic, health.threshold) == (True, 0.2)
    assert health.topic_examples == ("vaccine trial", "santé publique")
    assert [s.id for s in catalog.sources_of("health")] == ["blog"]


def test_a_catalog_built_in_code_attaches_source_rules_too() -> None:
    rules = (Rule("Europe", is_regex=False),)
    catalog = Catalog(
        sources=(
            SourceConfig(id="wire", url="https://w.example/", categories=("news",), exclude=rules),
        ),
        categories=(CategoryConfig(id="news", title="News"),),
    )
    assert catalog.category("news").source_rules == (SourceRules("wire", (), rules),)
    edited = dataclasses.replace(catalog.category("news"), include=rules, source_rules=())
    assert attach_source_rules(edited, catalog.sources).source_rules == (
        SourceRules("wire", (), rules),
    )


def test_bad_source_rule_is_located(tmp_path: Path) -> None:
    write(tmp_path, sources=GOOD_SOURCE + "exclude = ['/(unclosed/']\n")
    error = problem(tmp_path)
    assert_located(error, SOURCES_FILE, "wire", "exclude")
    assert "bad rule '/(unclosed/'" in str(error)


@pytest.mark.parametrize("value", ["true", '"high"', "1.5", "1001", "-1001"])
def test_bad_priority(tmp_path: Path, value: str) -> None:
    write(tmp_path, sources=GOOD_SOURCE + f"priority = {value}\n")
    assert_located(problem(tmp_path), SOURCES_FILE, "wire", "priority")


@pytest.mark.parametrize("value", ["true", '"0.5"', "-0.1", "1.01", "nan", "inf"])
def test_bad_min_score(tmp_path: Path, value: str) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + f"min_score = {value}\n")
    error = problem(tmp_path)
    assert_located(error, CATEGORIES_FILE, "ai-policy", "min_score")
    assert "must be a number from 0 to 1" in str(error)


@pytest.mark.parametrize("value", ["0", "0.0", "-0.2", "1.5", '"0.8"', "false"])
def test_bad_topic_threshold(tmp_path: Path, value: str) -> None:
    write(
        tmp_path,
        categories=GOOD_CATEGORY + f"description = 'x'\ntopic = true\ntopic_threshold = {value}\n",
    )
    error = problem(tmp_path)
    assert_located(error, CATEGORIES_FILE, "ai-policy", "topic_threshold")
    assert "above 0 and at most 1" in str(error)


def test_topic_must_be_boolean(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + 'description = "x"\ntopic = "yes"\n')
    assert_located(problem(tmp_path), CATEGORIES_FILE, "ai-policy", "topic")


def test_topic_needs_something_to_compare_with(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + "topic = true\n")
    error = problem(tmp_path)
    assert_located(error, CATEGORIES_FILE, "ai-policy", "topic")
    assert "needs a description or topic_examples" in str(error)
    # Examples alone are enough.
    write(tmp_path, categories=GOOD_CATEGORY + 'topic = true\ntopic_examples = ["AI law"]\n')
    assert load_catalog(tmp_path).category("ai-policy").topic_examples == ("AI law",)


@pytest.mark.parametrize(
    "value", ['[""]', "[1]", '["' + "x" * 301 + '"]', "[" + ", ".join(['"a"'] * 51) + "]"]
)
def test_bad_topic_examples(tmp_path: Path, value: str) -> None:
    write(tmp_path, categories=GOOD_CATEGORY + f"topic_examples = {value}\n")
    assert_located(problem(tmp_path), CATEGORIES_FILE, "ai-policy", "topic_examples")


def test_categories_can_be_read_from_an_edited_copy(tmp_path: Path) -> None:
    write(tmp_path)
    edited = tmp_path / "edited.toml"
    edited.write_text(GOOD_CATEGORY + 'include = ["AI Act"]\n', encoding="utf-8")
    catalog = load_catalog(tmp_path, categories_path=edited)
    assert catalog.category("ai-policy").include == (Rule("AI Act", is_regex=False),)
    assert catalog.source("wire").url == "https://wire.example/feed.xml"
    edited.write_text(GOOD_CATEGORY + "include = ['/(bad/']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(tmp_path, categories_path=edited)
    assert_located(info.value, "edited.toml", "ai-policy", "include")


def test_variants_is_omit_or_fallback(tmp_path: Path) -> None:
    write(tmp_path, categories=GOOD_CATEGORY)
    assert load_catalog(tmp_path).category("ai-policy").variants is None
    write(tmp_path, categories=GOOD_CATEGORY + 'variants = "fallback"\n')
    assert load_catalog(tmp_path).category("ai-policy").variants == "fallback"
    write(tmp_path, categories=GOOD_CATEGORY + 'variants = "mix"\n')
    assert_located(problem(tmp_path), CATEGORIES_FILE, "ai-policy", "variants")
