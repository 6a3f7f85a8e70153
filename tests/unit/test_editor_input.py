"""Editors' input checked in one place (issue 16, items 3 and 4): regex rules run on a
linear-time engine and what it cannot run is refused, and every field of the editorial files is
refused when it holds control characters, a bad URL or too much text, naming file, id and key;
what ``check`` accepts can be written to the store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.catalog import (
    CATEGORIES_FILE,
    MAX_LANGUAGE_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_URL_LENGTH,
    SOURCES_FILE,
    CatalogErrors,
    CategoryConfig,
    clean_title,
    load_catalog,
    parse_rule,
)
from aggregator.cli import ExitCode, main
from aggregator.editorial.classify import classify
from aggregator.errors import ConfigError
from aggregator.safety.regex import UnsupportedRegex, compile_rule_regex, translate
from aggregator.store import Store
from tests.support.builders import entry

SOURCE = """[[source]]
id = "wire"
url = "https://wire.example/feed.xml"
categories = ["news"]
{extra}
"""
CATEGORY = """[[category]]
id = "news"
title = "News"
{extra}
"""
# A feed text on which Python's backtracking engine never finishes this pattern.
CATASTROPHIC = "/(.+)+#$/"


def _write(directory: Path, source: str = "", category: str = "") -> Path:
    (directory / SOURCES_FILE).write_text(SOURCE.format(extra=source), encoding="utf-8")
    (directory / CATEGORIES_FILE).write_text(CATEGORY.format(extra=category), encoding="utf-8")
    return directory


def _located(directory: Path) -> list[tuple[str, str | None, str | None, str]]:
    with pytest.raises(ConfigError) as info:
        load_catalog(directory)
    error = info.value
    errors = error.errors if isinstance(error, CatalogErrors) else [error]
    return [(Path(e.file or "").name, e.item, e.key, e.reason) for e in errors]


# -- item 4: every field, one check -----------------------------------------------------------

BAD_SOURCE_FIELDS = [
    # The reproduction: a NUL byte in a URL passed check, then PostgreSQL refused it.
    ('url = "https://wire.example/feed\\u0000.xml"', "url", "U+0000"),
    ('url = "https://wire.example/a feed.xml"', "url", "space"),
    ('url = "https://wire.example:99999/feed.xml"', "url", "valid URL"),
    ('url = "https:///feed.xml"', "url", "no host"),
    (f'url = "https://wire.example/{"a" * MAX_URL_LENGTH}"', "url", "at most"),
    ('site_url = "https://wire.example/\\u001b[2J"', "site_url", "U+001B"),
    ('title = "Wire\\u0007"', "title", "U+0007"),
    ('title = "Wire\\nsecond line"', "title", "U+000A"),
    ('title = "\\ud7ff\\u009b"', "title", "U+009B"),
    (f'title = "{"t" * (MAX_TITLE_LENGTH + 1)}"', "title", "at most"),
    (f'language = "en{"-abcdefgh" * 4}"', "language", "at most"),
    ('include = ["ok\\u0000"]', "include", "U+0000"),
]


@pytest.mark.parametrize(("line", "key", "says"), BAD_SOURCE_FIELDS)
def test_bad_source_fields_are_refused_naming_file_id_and_key(
    tmp_path: Path, line: str, key: str, says: str
) -> None:
    # A later line of the same key wins in our template, so replace the URL in place.
    text = SOURCE.format(extra="")
    if key == "url":
        text = text.replace('url = "https://wire.example/feed.xml"', line)
    else:
        text += line + "\n"
    (tmp_path / SOURCES_FILE).write_text(text, encoding="utf-8")
    (tmp_path / CATEGORIES_FILE).write_text(CATEGORY.format(extra=""), encoding="utf-8")
    # A refused URL or title also leaves its table out, so a follow-on problem (a category
    # no source uses) may be reported with it.
    found = {(file, item, at): reason for file, item, at, reason in _located(tmp_path)}
    assert says in found[(SOURCES_FILE, "wire", key)]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('title = "News\\u0000"', "title"),
        ('description = "ok\\nand on\\ttabs\\u001b"', "description"),
        ('languages = ["en", "fr\\u0000"]', "languages"),
        ('topic_examples = ["a\\u0085b"]', "topic_examples"),
        ('include = ["/(a)\\\\1/"]', "include"),
        ('exclude = ["/x(?=y)/"]', "exclude"),
    ],
)
def test_bad_category_fields_are_refused_naming_file_id_and_key(
    tmp_path: Path, line: str, key: str
) -> None:
    text = CATEGORY.format(extra="")
    if key == "title":
        text = text.replace('title = "News"', line)
    else:
        text += line + "\n"
    (tmp_path / SOURCES_FILE).write_text(SOURCE.format(extra=""), encoding="utf-8")
    (tmp_path / CATEGORIES_FILE).write_text(text, encoding="utf-8")
    assert (CATEGORIES_FILE, "news", key) in [(f, i, k) for f, i, k, _ in _located(tmp_path)]


def test_a_description_may_hold_newlines_and_tabs(tmp_path: Path) -> None:
    _write(tmp_path, category='description = """Two\nlines\tand a tab"""')
    assert load_catalog(tmp_path).category("news").description == "Two\nlines\tand a tab"


def test_check_refuses_a_nul_in_a_url_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(tmp_path)
    (config / SOURCES_FILE).write_text(
        SOURCE.format(extra="").replace("feed.xml", "feed\\u0000.xml"), encoding="utf-8"
    )
    assert main(["check", "--config", str(config)]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert str(config / SOURCES_FILE) in err
    assert "id='wire'" in err
    assert "key='url'" in err


def test_what_check_accepts_at_its_limits_is_stored(tmp_path: Path, store: Store) -> None:
    longest_url = "https://wire.example/" + "a" * (MAX_URL_LENGTH - len("https://wire.example/"))
    language = ("en" + "-abcdefg" * 5)[:MAX_LANGUAGE_LENGTH].rstrip("-")
    config = _write(
        tmp_path,
        source=f'title = "{"Ü" * MAX_TITLE_LENGTH}"\n'
        f'language = "{language}"\n'
        f'site_url = "{longest_url}"',
    )
    (config / SOURCES_FILE).write_text(
        (config / SOURCES_FILE)
        .read_text(encoding="utf-8")
        .replace("https://wire.example/feed.xml", longest_url),
        encoding="utf-8",
    )
    catalog = load_catalog(config)
    store.sync_sources(catalog, datetime(2026, 1, 1, tzinfo=UTC))
    [row] = store.sources()
    assert row.url == longest_url


def test_clean_title_makes_publishers_titles_acceptable() -> None:
    assert clean_title("Le\x1b]0;x\x07 Monde\n\tNum\u0000érique") == "Le ]0;x Monde Num érique"
    assert clean_title("\x00\x1b") is None
    assert len(clean_title("x" * 2000) or "") == MAX_TITLE_LENGTH


# -- item 3: regexes that cannot hang ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (r"/(a)\1/", "backreferences"),
        (r"/(?P<x>a)(?P=x)/", "backreferences"),
        (r"/AI(?= Act)/", "lookahead"),
        (r"/(?<!open)AI/", "lookbehind"),
        (r"/(?>a+)b/", "atomic"),
        (r"/a++/", "repetition"),
    ],
)
def test_constructs_the_linear_engine_cannot_run_are_refused_with_the_reason(
    rule: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says) as info:
        parse_rule(rule)
    assert isinstance(info.value, UnsupportedRegex)
    assert "linear-time" in str(info.value)


def test_refused_at_check_naming_file_category_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(tmp_path, category="include = ['/AI(?!-generated)/']")
    assert main(["check", "--config", str(config)]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert str(config / CATEGORIES_FILE) in err
    assert "id='news'" in err
    assert "key='include'" in err
    assert "lookahead" in err


def test_rules_keep_their_python_meaning() -> None:
    # Unicode \w, \d and \s, scoped case-sensitivity, \uXXXX escapes, literal ']' in a class.
    for pattern, text, expected in [
        (r"\bkunstlich\w* intelligenz", "KUNSTLICHE INTELLIGENZ", True),
        (r"^\w+$", "Straße", True),
        (r"^\w+$", "закон", True),
        (r"\d{3}", "٣٤٥", True),
        (r"a\sb", "a\u00a0b", True),
        (r"(?-i:\bAI\b)", "j'ai", False),
        (r"(?-i:\bAI\b)", "EU AI Act", True),
        (r"caf\u00e9", "CAFÉ", True),
        (r"[]x]", "]", True),
        (r"a.b", "a\nb", False),
    ]:
        assert compile_rule_regex(pattern).search(text) is expected, pattern
    assert translate(r"[\w-]") == r"[\p{L}\p{N}_-]"


CHILD = """
import sys
from aggregator.catalog import CategoryConfig, parse_rule
from aggregator.editorial.classify import classify
from tests.support.builders import entry
category = CategoryConfig(id="news", title="News", include=(parse_rule(sys.argv[1]),))
found = classify(entry("1", title="x" * 64, text="y" * 5000), source_categories=("news",),
                 categories={"news": category})
print("matched" if found else "no match")
"""


def test_a_catastrophic_pattern_finishes(tmp_path: Path) -> None:
    # In a child process: Python's own engine would hold the GIL for ever (2**64 steps) and
    # take pytest with it; the timeout only turns such a hang into a failure.
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), CATASTROPHIC],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no match"


def test_classify_with_regexes_still_matches_and_explains() -> None:
    category = load_rules(r"/\b(regulat\w*|lois?)\b/", "/(?-i:IA)/")
    found = classify(
        entry("1", title="Nouvelle loi sur l'IA"),
        source_categories=("news",),
        categories={"news": category},
    )
    assert [m.reason for m in found] == [
        r"include /\b(regulat\w*|lois?)\b/ matched in title; include /(?-i:IA)/ matched in "
        "title"
    ]


def load_rules(*rules: str) -> CategoryConfig:
    return CategoryConfig(id="news", title="News", include=tuple(parse_rule(r) for r in rules))
