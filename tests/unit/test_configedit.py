"""``aggregator.editorial.configedit``: the editorial files edited in place, comments and layout
kept,
checked before they are replaced, refused with file, id and key."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from aggregator.catalog import load_catalog
from aggregator.editorial.configedit import (
    NewCategory,
    NewSource,
    UnknownItem,
    add_sources,
    feed_url_key,
    remove_source,
    set_category_rules,
    set_source_enabled,
)
from aggregator.errors import ConfigError
from tests.support.feeds import write_config
from tests.support.shared import PROJECT_ROOT

SOURCES = """# Sources. The header stays.

# ── News ──

[[source]]
id = "alpha"
url = "https://alpha.example/feed.xml"
categories = ["news"]  # inline comment stays

# Beta's own comment, directly above it.
[[source]]
id = "beta"
url = "https://beta.example/feed.xml"
categories = ["news", "tech"]
interval = "1h"

# ── Tech ──

[[source]]
id = "gamma"
url = "https://gamma.example/feed.xml"
categories = ["tech"]
# Why gamma is off.
enabled = false

# A note at the end about gamma.
"""

CATEGORIES = """# Categories.

[[category]]
id = "news"
title = "News"
include = [
  # English
  "election",
  "parliament",
  # French
  "élection",
]

# ── Tech ──

[[category]]
id = "tech"
title = "Tech"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config", SOURCES, CATEGORIES)


def text(config: Path, name: str = "sources.toml") -> str:
    return (config / name).read_text(encoding="utf-8")


def test_pause_adds_the_key_after_the_last_one_and_resume_gives_back_the_same_bytes(
    config: Path,
) -> None:
    set_source_enabled(config, "beta", False)
    paused = text(config)
    assert 'interval = "1h"\nenabled = false\n\n# ── Tech ──\n' in paused
    assert load_catalog(config).source("beta").enabled is False
    set_source_enabled(config, "beta", True)
    assert text(config) == SOURCES


def test_resume_removes_the_key_and_pause_sets_it_in_place(config: Path) -> None:
    set_source_enabled(config, "gamma", True)
    assert "enabled" not in text(config)
    assert "# Why gamma is off." in text(config)
    assert load_catalog(config).source("gamma").enabled is True
    (config / "sources.toml").write_text(
        SOURCES.replace("enabled = false", "enabled = true"), encoding="utf-8"
    )
    set_source_enabled(config, "gamma", False)
    assert text(config) == SOURCES


def test_pause_and_resume_every_starter_source(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    original = text(config)
    for source in load_catalog(config).sources:
        if source.enabled:
            set_source_enabled(config, source.id, False)
            assert load_catalog(config).source(source.id).enabled is False
            set_source_enabled(config, source.id, True)
    assert text(config) == original


def test_remove_takes_the_comment_directly_above_and_keeps_headings(config: Path) -> None:
    remove_source(config, "beta")
    assert text(config) == SOURCES.replace(
        '# Beta\'s own comment, directly above it.\n[[source]]\nid = "beta"\n'
        'url = "https://beta.example/feed.xml"\ncategories = ["news", "tech"]\n'
        'interval = "1h"\n\n',
        "",
    )
    assert [s.id for s in load_catalog(config).sources] == ["alpha", "gamma"]


def test_removing_the_last_table_takes_the_comments_after_it(config: Path) -> None:
    remove_source(config, "gamma")
    assert text(config) == SOURCES[: SOURCES.index('[[source]]\nid = "gamma"')].rstrip() + "\n"
    assert [s.id for s in load_catalog(config).sources] == ["alpha", "beta"]


def test_removing_the_last_source_of_a_category_is_refused(config: Path) -> None:
    remove_source(config, "alpha")
    before = text(config)
    with pytest.raises(ConfigError) as refused:
        remove_source(config, "beta")
    assert refused.value.file == str(config / "categories.toml")
    assert refused.value.item == "news"
    assert refused.value.key == "id"
    assert "no source uses this category" in str(refused.value)
    assert text(config) == before


def test_unknown_ids_name_file_id_and_key(config: Path) -> None:
    with pytest.raises(UnknownItem) as unknown:
        set_source_enabled(config, "nope", False)
    assert (unknown.value.file, unknown.value.item, unknown.value.key) == (
        str(config / "sources.toml"),
        "nope",
        "id",
    )
    with pytest.raises(UnknownItem) as unknown_category:
        set_category_rules(config, "nope", include=["x"], exclude=[])
    assert unknown_category.value.file == str(config / "categories.toml")
    assert text(config) == SOURCES


def test_rules_keep_comments_of_kept_rules_and_regexes_stay_literal(config: Path) -> None:
    set_category_rules(
        config,
        "news",
        include=["election", "élection", r"/\bvote\b/"],
        exclude=["sponsored content"],
    )
    after = text(config, "categories.toml")
    assert '  # English\n  "election",\n' in after
    assert "parliament" not in after
    assert r"'/\bvote\b/'" in after
    # The new key goes with its table, before the next table's heading.
    assert after.index('exclude = ["sponsored content"]') < after.index("# ── Tech ──")
    category = load_catalog(config).category("news")
    assert [r.label for r in category.include] == ["'election'", "'élection'", r"/\bvote\b/"]
    assert [r.pattern for r in category.exclude] == ["sponsored content"]


def test_rules_added_and_removed_on_a_category_without_rules(config: Path) -> None:
    set_category_rules(config, "tech", include=["software", "hardware"], exclude=[])
    after = text(config, "categories.toml")
    assert after.endswith('title = "Tech"\ninclude = [\n  "software",\n  "hardware",\n]\n')
    set_category_rules(config, "tech", include=[], exclude=[])
    assert text(config, "categories.toml") == CATEGORIES


def test_an_invalid_rule_is_refused_naming_the_real_file(config: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        set_category_rules(config, "news", include=["/(unclosed/"], exclude=[])
    assert refused.value.file == str(config / "categories.toml")
    assert refused.value.item == "news"
    assert refused.value.key == "include"
    assert "nothing was written" in str(refused.value)
    assert text(config, "categories.toml") == CATEGORIES


def test_add_sources_with_new_categories_in_one_checked_write(config: Path) -> None:
    add_sources(
        config,
        [
            NewSource(
                id="le-monde",
                url="https://lemonde.example/rss",
                title='Le "Monde" \\ ©',
                categories=("world",),
                language="fr",
                site_url="https://lemonde.example/",
            ),
            NewSource(
                id="kbs", url="https://kbs.example/rss", title="KBS", categories=("world", "news")
            ),
        ],
        categories=[NewCategory(id="world", title="World")],
    )
    assert text(config).startswith(SOURCES)
    assert text(config, "categories.toml").startswith(CATEGORIES)
    catalog = load_catalog(config)
    assert catalog.source("le-monde").title == 'Le "Monde" \\ ©'
    assert catalog.source("le-monde").site_url == "https://lemonde.example/"
    assert catalog.source("kbs").categories == ("world", "news")
    assert catalog.category("world").include == ()


def test_add_sources_refuses_duplicates(config: Path) -> None:
    with pytest.raises(ConfigError) as same_url:
        add_sources(
            config,
            [
                NewSource(
                    id="again",
                    url="HTTP://Alpha.example/feed.xml/",
                    title=None,
                    categories=("news",),
                )
            ],
        )
    assert (same_url.value.item, same_url.value.key) == ("again", "url")
    assert "'alpha'" in str(same_url.value)
    with pytest.raises(ConfigError) as same_id:
        add_sources(
            config,
            [NewSource(id="alpha", url="https://other.example/", title=None, categories=("news",))],
        )
    assert (same_id.value.item, same_id.value.key) == ("alpha", "id")
    with pytest.raises(ConfigError) as unknown_category:
        add_sources(
            config,
            [NewSource(id="new", url="https://new.example/", title=None, categories=("nope",))],
        )
    assert unknown_category.value.key == "categories"
    assert text(config) == SOURCES


def test_edits_keep_the_file_mode(config: Path) -> None:
    (config / "sources.toml").chmod(0o640)
    set_source_enabled(config, "alpha", False)
    assert stat.S_IMODE((config / "sources.toml").stat().st_mode) == 0o640
    assert not list(config.glob(".*.tmp"))


def test_windows_line_endings_are_kept(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "sources.toml").write_bytes(SOURCES.replace("\n", "\r\n").encode())
    (config / "categories.toml").write_bytes(CATEGORIES.encode())
    set_source_enabled(config, "beta", False)
    raw = (config / "sources.toml").read_bytes()
    assert b'interval = "1h"\r\nenabled = false\r\n' in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_feed_url_key_ignores_scheme_case_and_trailing_slash() -> None:
    assert feed_url_key("https://Example.com/feed/") == feed_url_key("http://example.com/feed")
    assert feed_url_key("https://example.com/feed?a=1") != feed_url_key("https://example.com/feed")
    assert feed_url_key("ftp://example.com/feed") is None
    assert feed_url_key("") is None
