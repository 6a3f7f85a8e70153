"""The command line as a user meets it: ``check`` errors, help texts, option placement."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

import pytest

from aggregator.cli import build_parser, main
from tests.support.feeds import aggregator, toml_tables, write_config

GOOD_SOURCES = toml_tables(
    "source", {"id": "alpha", "url": "https://alpha.example/feed.xml", "categories": ["news"]}
)
GOOD_CATEGORIES = toml_tables("category", {"id": "news", "title": "News"})


def _check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--config", str(config)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_check_accepts_a_good_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, GOOD_SOURCES, GOOD_CATEGORIES)
    code, output = _check(config, capsys)
    assert code == 0
    assert "1 sources, 1 categories" in output


@pytest.mark.parametrize(
    ("sources", "categories", "file", "item", "key"),
    [
        (
            GOOD_SOURCES.replace(
                'categories = ["news"]', 'categories = ["news"]\nintervall = "1h"'
            ),
            GOOD_CATEGORIES,
            "sources.toml",
            "alpha",
            "intervall",
        ),
        (
            GOOD_SOURCES + GOOD_SOURCES.replace("alpha.example", "other.example"),
            GOOD_CATEGORIES,
            "sources.toml",
            "alpha",
            "id",
        ),
        (
            GOOD_SOURCES,
            GOOD_CATEGORIES + '\n[[category]]\nid = "orphan"\ntitle = "Orphan"\n',
            "categories.toml",
            "orphan",
            "id",
        ),
        (
            GOOD_SOURCES,
            GOOD_CATEGORIES.replace('title = "News"', 'title = "News"\ncolour = "red"'),
            "categories.toml",
            "news",
            "colour",
        ),
    ],
)
def test_check_names_file_id_and_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sources: str,
    categories: str,
    file: str,
    item: str,
    key: str,
) -> None:
    config = write_config(tmp_path, sources, categories)
    code, output = _check(config, capsys)
    assert code != 0
    assert str(config / file) in output
    assert f"id={item!r}" in output
    assert f"key={key!r}" in output


def test_check_in_a_subprocess_exits_non_zero(tmp_path: Path) -> None:
    config = write_config(tmp_path, GOOD_SOURCES + GOOD_SOURCES, GOOD_CATEGORIES)
    result = aggregator("check", "--config", str(config), check=False)
    assert result.returncode == 3
    assert "duplicate source id" in result.stderr


def test_missing_config_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = _check(tmp_path / "nowhere", capsys)
    assert code == 3
    assert "sources.toml" in output
    assert "not found" in output


def test_options_work_before_and_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, GOOD_SOURCES, GOOD_CATEGORIES)
    assert main(["--config", str(config), "check"]) == 0
    assert main(["check", "--config", str(config)]) == 0
    capsys.readouterr()


def test_every_command_has_help() -> None:
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    # The subparsers action: its choices map each command to its parser.
    choices = cast("dict[str, argparse.ArgumentParser] | None", actions[0].choices)
    assert choices is not None
    assert {"run", "poll", "publish", "check", "sources", "stories", "db", "demo"} <= set(choices)
    for name, sub in choices.items():
        assert sub.description, f"{name} has no help text"


def test_python_dash_m_prints_help() -> None:
    result = aggregator("--help")
    assert "poll" in result.stdout
    assert "publish" in result.stdout
