"""On a terminal the progress bar and log lines never share a line: the bar is cleared before
a record is written and drawn again below it. Checked on what a terminal would show."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator

import pytest

from aggregator.cli.progress import ProgressBar, progress_for, step_progress
from aggregator.logs import configure
from aggregator.types import PollOutcome, PollResult


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(raw: str) -> list[str]:
    """The lines a terminal shows for ``raw``: carriage return, erase-line, newline."""
    lines = [""]
    column = 0
    for token in re.findall(r"\x1b\[K|\r|\n|[^\r\n\x1b]+", raw):
        line = lines[-1]
        if token == "\n":
            lines.append("")
            column = 0
        elif token == "\r":
            column = 0
        elif token == "\x1b[K":
            lines[-1] = line[:column]
        else:
            lines[-1] = line[:column] + token + line[column + len(token) :]
            column += len(token)
    return [line for line in lines if line]


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Terminal]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def attach() -> Terminal:
        # In the test itself: pytest's output capture puts its own sys.stdout back after
        # fixtures are set up.
        out = Terminal()
        monkeypatch.setattr("sys.stdout", out)
        configure("INFO", stream=out)  # stderr and stdout on one terminal
        return out

    try:
        yield attach
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("aggregator.refresh").setLevel(logging.NOTSET)


def test_log_lines_never_land_on_the_bar(terminal: Callable[[], Terminal]) -> None:
    out = terminal()
    bar = progress_for(3)
    assert isinstance(bar, ProgressBar)
    log = logging.getLogger("aggregator.refresh")
    bar(PollOutcome("a", PollResult.UPDATED, new_entries=2))
    log.warning("source=b action=poll outcome=error kind=timeout")
    bar(PollOutcome("b", PollResult.ERROR))
    log.warning("source=c action=poll outcome=error kind=http")
    bar(PollOutcome("c", PollResult.UPDATED))
    shown = screen(out.getvalue())
    assert [line for line in shown if "sources" in line and "outcome=" in line] == []
    assert [line for line in shown if "outcome=error" in line] == [
        line for line in shown if line.startswith("WARNING") or "source=" in line
    ]
    assert shown[-1].endswith("3/3 sources · 2 new · 1 errors")
    assert sum("kind=timeout" in line for line in shown) == 1


def test_the_step_counter_gives_way_to_logs_too(terminal: Callable[[], Terminal]) -> None:
    out = terminal()
    show = step_progress("clustering", "entries")
    assert show is not None
    show(1, 2)
    logging.getLogger("aggregator.cluster").warning("a model is slow today")
    show(2, 2)
    shown = screen(out.getvalue())
    assert [line for line in shown if "clustering [" in line and "slow" in line] == []
    assert any(line.endswith("a model is slow today") for line in shown)
    assert shown[-1].startswith("clustering [")
    assert shown[-1].endswith("2/2 entries")
