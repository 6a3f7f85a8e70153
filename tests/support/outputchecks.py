"""Checks shared by the output tests: the JSON Feed 1.1 schema and HTML5 parse errors."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import html5lib
import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "jsonfeed-1.1.schema.json"


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def json_feed(data: bytes) -> dict[str, Any]:
    """Parse ``data`` and assert it is a valid JSON Feed 1.1 document; returns it."""
    document: dict[str, Any] = json.loads(data.decode("utf-8"))
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator().iter_errors(document)
    ]
    assert problems == [], "\n".join(problems)
    # The spec's rules a schema cannot say: next_url never loops back to the feed itself.
    if "next_url" in document:
        assert document["next_url"] != document.get("feed_url")
    return document


def html5_errors(data: bytes) -> list[str]:
    """Parse errors an HTML5 parser reports for ``data`` (empty when it parses cleanly)."""
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    parser.parse(data)
    return [f"{position}: {code} {details}" for position, code, details in parser.errors]
