"""Logging set-up for entry points: one line per event, readable ``key=value`` or JSON.

Messages are written ``action=<what> outcome=<result> key=value...``; those about a source start
with ``source=<id>``, so one grep (or one JSON field) finds a source's history. The text format
prints the message as written after a UTC timestamp, the level and the logger; the JSON format
(``AGGREGATOR_LOG_FORMAT=json``) gives one object per line with the same keys as fields.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
# key=value where value is bare (up to the next space) or a Python repr of a string (%r).
FIELD_RE: Final = re.compile(
    r"""(?<![^\s])([a-z_][a-z0-9_-]*)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s]*)"""
)
# Keys a message cannot override in the JSON object.
RESERVED: Final = frozenset({"ts", "level", "logger", "msg", "exc"})
_NOISY: Final = (
    "urllib3",
    "apscheduler.executors",
    "apscheduler.scheduler",
    "uvicorn.access",
    "alembic.runtime",
)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_fields(message: str) -> dict[str, Any]:
    """The ``key=value`` pairs of a message, values unquoted where they were ``%r``-quoted;
    integers stay integers so a JSON consumer can compare them."""
    fields: dict[str, Any] = {}
    for key, raw in FIELD_RE.findall(message):
        value: Any = raw
        if raw[:1] in {"'", '"'} and len(raw) >= 2:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw[1:-1]
        elif re.fullmatch(r"-?\d+", raw):
            value = int(raw)
        fields.setdefault(key, value)
    return fields


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...the message's key=value fields, "exc"}``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
        }
        for key, value in message_fields(message).items():
            if key not in RESERVED:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own logging config (applied by anything that started it with defaults) gives
    # its loggers their own handler and stops them at "uvicorn": route them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        own = logging.getLogger(name)
        own.handlers[:] = []
        own.propagate = True
        own.disabled = False
        own.setLevel(logging.NOTSET)
    # Their per-request chatter would drown the per-source lines.
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
