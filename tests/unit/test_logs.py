"""Log lines: readable key=value text by default, one JSON object per line when asked, the
same keys either way; a traceback stays on its event's line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from aggregator.errors import ConfigError
from aggregator.logs import configure, message_fields
from aggregator.settings import Settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(fmt: str) -> list[str]:
    stream = io.StringIO()
    configure("INFO", fmt, stream=stream)
    log = logging.getLogger("aggregator.polling.poller")
    log.info(
        "source=%s action=poll outcome=%s status=%s new=%d updated=%d ms=%d",
        "le-monde",
        "updated",
        200,
        3,
        1,
        42,
    )
    log.warning(
        "source=%s action=poll outcome=error kind=%s status=%s error=%r",
        "heise",
        "http",
        404,
        "HTTP 404 from https://h.example/feed: 'gone' \"now\"",
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        log.error("source=%s action=poll outcome=error kind=internal", "x", exc_info=exc)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    return stream.getvalue().splitlines()


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_are_the_message_after_time_level_and_logger() -> None:
    lines = emit("text")
    first = lines[0].split(" ", 3)
    assert first[0].endswith("Z")
    assert "T" in first[0]
    assert first[1:3] == ["INFO", "aggregator.polling.poller"]
    assert first[3] == (
        "source=le-monde action=poll outcome=updated status=200 new=3 updated=1 ms=42"
    )
    assert "source=heise action=poll outcome=error kind=http" in lines[1]
    # The traceback follows its line; nothing else about the source is printed.
    assert "source=x action=poll outcome=error kind=internal" in lines[2]
    assert any("RuntimeError: boom" in line for line in lines[3:])
    assert lines[-1].endswith("uvicorn.error Started server process [7]")


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_same_keys_as_fields() -> None:
    lines = emit("json")
    assert len(lines) == 4  # the traceback is inside its object, not on lines of its own
    records = [json.loads(line) for line in lines]
    ok, failed, crashed, foreign = records
    assert ok["level"] == "INFO"
    assert ok["logger"] == "aggregator.polling.poller"
    assert ok["ts"].endswith("Z")
    assert {k: ok[k] for k in ("source", "action", "outcome", "status", "new", "ms")} == {
        "source": "le-monde",
        "action": "poll",
        "outcome": "updated",
        "status": 200,
        "new": 3,
        "ms": 42,
    }
    assert ok["msg"].startswith("source=le-monde action=poll")
    assert failed["error"] == "HTTP 404 from https://h.example/feed: 'gone' \"now\""
    assert failed["level"] == "WARNING"
    assert (crashed["source"], crashed["kind"]) == ("x", "internal")
    assert "RuntimeError: boom" in crashed["exc"]
    assert foreign["msg"] == "Started server process [7]"
    assert "source" not in foreign


def test_message_fields_keep_reserved_and_odd_values_apart() -> None:
    fields = message_fields(
        "action=tick outcome=done sources=3 url=http://a.example/x?y=1 reason='a b' level=loud"
    )
    assert fields == {
        "action": "tick",
        "outcome": "done",
        "sources": 3,
        "url": "http://a.example/x?y=1",
        "reason": "a b",
        "level": "loud",
    }


def test_the_format_is_a_setting() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"AGGREGATOR_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="AGGREGATOR_LOG_FORMAT"):
        Settings.from_env({"AGGREGATOR_LOG_FORMAT": "xml"})
