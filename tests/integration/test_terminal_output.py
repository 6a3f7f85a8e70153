"""Feed titles, URLs, errors and editors' notes reach the terminal without escape sequences or
control characters: ``stories``, ``stories show``, ``sources list`` and ``stories
corrections``, through the real command line on a SQLite store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.safety.terminal import terminal_json, terminal_text
from aggregator.store import open_store, upgrade
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source

HOSTILE_TITLE = "Breaking\x1b]0;pwned\x07 news\x1b[2J\x1b[31m red\x9b2J\x07\x00"
HOSTILE_ERROR = "boom\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\r\x08"
# Every byte that starts or is part of a terminal control: ESC, BEL, CSI (C1), NUL, CR, BS.
CONTROLS = ("\x1b", "\x07", "\x9b", "\x00", "\r", "\x08")


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    upgrade(store.engine)
    store.sync_sources(catalog(source("wire", title="Wire\x1b[2J")), NOW)
    store.save_poll(
        "wire",
        fetched(),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[
            (entry("1", title=HOSTILE_TITLE, url="https://news.example/1?\x1b[2J"), [match("news")])
        ],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    store.save_error(
        "wire",
        message=HOSTILE_ERROR,
        kind="http",
        status=500,
        now=NOW,
        next_check_at=NOW + timedelta(minutes=30),
    )
    settle(store)
    [story] = list(store.iter_stories())
    store.hide_story(story.story_id, None, by="eve\x1b[2J", now=NOW, note="note\x1b]0;x\x07")
    store.close()
    return url


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [
        ("stories",),
        ("stories", "show", "1"),
        ("sources", "list"),
        ("stories", "corrections"),
    ],
)
def test_cli_output_carries_no_terminal_controls(
    database: str, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    out = _run(capsys, *command, "--database", database)
    assert out.strip()
    for control in CONTROLS:
        assert control not in out, (control, out)
    if command[0] == "stories" and len(command) == 1:
        assert "Breaking news red" in out  # the text around the sequences stays
    if command == ("sources", "list"):
        assert "boomclick" in out


@pytest.mark.parametrize(
    "command",
    [("stories", "--json"), ("sources", "list", "--json"), ("stories", "show", "1", "--json")],
)
def test_json_output_escapes_controls_and_keeps_the_data(
    database: str, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    out = _run(capsys, *command, "--database", database)
    for control in CONTROLS:
        assert control not in out, (control, out)
    records = [json.loads(line) for line in out.splitlines()]
    # Escaped, not dropped: a program reading the JSON gets the feed's text as it was.
    assert any("\x1b" in text for text in _strings(records))


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_terminal_text_strips_sequences_whole() -> None:
    assert terminal_text("a\x1b]0;pwned\x07b") == "ab"
    assert terminal_text("a\x1b]0;pwned\x1b\\b") == "ab"
    assert terminal_text("a\x1b[2Jb\x1b[1;31mc") == "abc"
    assert terminal_text("a\x9b2Jb\x9d0;t\x9cc") == "abc"
    assert terminal_text("a\x1b(Bb\x1bcc") == "abc"
    assert terminal_text("line\none\ttab\x00\x7f\x85\r") == "line\none\ttab"
    # An unterminated title sequence takes the rest, as a terminal would.
    assert terminal_text("a\x1b]0;rest") == "a"
    assert terminal_text("Überwachung · 人工知能 — ok") == "Überwachung · 人工知能 — ok"


def test_terminal_json_escapes_c1_and_del() -> None:
    text = terminal_json({"t": "a\x9b2J\x7f\x1b"})
    assert not any(control in text for control in ("\x9b", "\x7f", "\x1b"))
    assert json.loads(text) == {"t": "a\x9b2J\x7f\x1b"}
