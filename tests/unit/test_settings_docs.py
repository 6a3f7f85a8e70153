"""Everything an operator can set or type is documented: each setting of the live ``SETTINGS``
table is in ``deploy/aggregator.env.example`` and in the operator guide's settings table, and
each command and subcommand of the live argparse tree has help text. Settings and commands
added later are checked without touching this file."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from aggregator.cli import build_parser
from aggregator.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "aggregator.env.example"
OPERATOR_GUIDE = ROOT / "docs" / "operator.md"


def table_rows(markdown: str) -> dict[str, str]:
    """First-column `AGGREGATOR_…` names of the markdown tables → their whole row."""
    rows = {}
    for line in markdown.splitlines():
        match = re.match(r"^\|\s*`(AGGREGATOR_[A-Z0-9_]+)`\s*\|", line)
        if match:
            rows[match[1]] = line
    return rows


def test_every_setting_is_in_the_env_example_with_its_meaning() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    missing = [
        spec.env
        for spec in SETTINGS
        if f"#{spec.env}=" not in text or f"# {spec.meaning}\n" not in text
    ]
    assert missing == [], (
        "regenerate with `python -m aggregator.settings > deploy/aggregator.env.example`"
    )


def test_every_setting_has_a_row_in_the_operator_guide() -> None:
    rows = table_rows(OPERATOR_GUIDE.read_text(encoding="utf-8"))
    missing = [spec.env for spec in SETTINGS if spec.env not in rows]
    assert missing == [], f"add a row for each to the settings table of {OPERATOR_GUIDE}"
    # Each row says the default (the shown example when the default is machine-made).
    wrong = [
        spec.env
        for spec in SETTINGS
        if (spec.default if spec.example is None else spec.example)
        and f"`{spec.default if spec.example is None else spec.example}`" not in rows[spec.env]
    ]
    assert wrong == [], "the operator guide's default differs from the settings table"


def test_the_operator_guide_lists_no_setting_that_does_not_exist() -> None:
    rows = table_rows(OPERATOR_GUIDE.read_text(encoding="utf-8"))
    assert sorted(set(rows) - {spec.env for spec in SETTINGS}) == []


def subcommands(
    parser: argparse.ArgumentParser, path: str = "aggregator"
) -> Iterator[tuple[str, str | None, argparse.ArgumentParser]]:
    """(command path, its help, its parser) for every subcommand, depth first."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            yield f"{path} {name}", helps.get(name), sub
            yield from subcommands(sub, f"{path} {name}")


def test_every_command_and_subcommand_has_help() -> None:
    parser = build_parser()
    found = list(subcommands(parser))
    names = {path for path, _, _ in found}
    # The walk reaches the nested levels (a broken walk must not pass silently).
    assert {"aggregator run", "aggregator db upgrade", "aggregator sources list"} <= names
    missing = sorted(path for path, help_text, _ in found if not (help_text or "").strip())
    assert missing == []


def test_every_option_has_help() -> None:
    missing = []
    for path, _, sub in [("aggregator", None, build_parser()), *subcommands(build_parser())]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if action.option_strings and not (action.help or "").strip():
                missing.append(f"{path} {action.option_strings[0]}")
    assert missing == []
