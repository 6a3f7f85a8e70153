"""Our parse with its shortcuts around feedparser gives what plain feedparser gives, on every
document of the shared corpora (about 4,700).

``polling.parse`` replaces two of feedparser's URL functions with exact shortcuts (a cache, and
absolute http(s) URLs under the sentinel base returned as written), and FeedParserDict's key
lookups, the deep copy of content parameters, the cp1252 table and the XML parser preference
with equivalents (``polling.fpshortcuts``). Each document is parsed twice, with the shortcuts
and with feedparser's own code put back, and compared: the ``ParsedFeed`` the pipeline reads,
field by field, and feedparser's raw feed and entries, down to the type of every container.
"""

from __future__ import annotations

from typing import Any

import feedparser.api
import feedparser.mixin
import pytest
from feedparser.util import FeedParserDict

from aggregator.errors import ParseError
from aggregator.polling import parse
from aggregator.safety.xml import defuse_entities
from aggregator.types import ParsedFeed
from tests.integration.test_corpus import CORPUS, NOT_DOCUMENTS, load
from tests.support.shared import require_shared

FOLDERS = (
    "feedparser-tests",
    "feedvalidator-testcases",
    "fastfeedparser-realworld",
    "rss-parser-inputs",
    "node-feedparser-feeds",
    "feed-rs-fixtures",
    "miniflux-testdata",
    "opml-awesome-rss-feeds",
)


def _ours(body: bytes, url: str, headers: dict[str, str]) -> tuple[ParsedFeed | str, Any]:
    try:
        parsed: ParsedFeed | str = parse.parse_feed(body, url=url, headers=headers)
    except ParseError as exc:
        parsed = f"ParseError: {exc}"
    try:
        raw = parse.run_feedparser(defuse_entities(body), headers)
    except Exception as exc:  # compared, not judged: both sides must fail alike
        return parsed, f"{type(exc).__name__}: {exc}"
    return parsed, _typed((raw.get("version"), raw.get("feed"), raw.get("entries")))


def _typed(value: Any) -> Any:
    """``value`` with the type of each container beside it: a plain dict where feedparser
    gives a FeedParserDict would compare equal otherwise."""
    if isinstance(value, dict):
        return type(value).__name__, [(key, _typed(item)) for key, item in dict.items(value)]
    if isinstance(value, list | tuple):
        return type(value).__name__, [_typed(item) for item in value]
    return value


def _plain(
    body: bytes, url: str, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[ParsedFeed | str, Any]:
    with monkeypatch.context() as patched:
        patched.setattr(
            feedparser.mixin, "make_safe_absolute_uri", parse._fp_make_safe_absolute_uri
        )
        patched.setattr(feedparser.mixin, "_urljoin", parse._fp_urljoin)
        for name, method in parse._fp_dict_methods.items():
            patched.setattr(FeedParserDict, name, method)
        patched.setattr(feedparser.mixin, "copy", parse._fp_copy)
        patched.setattr(feedparser.mixin, "_cp1252", parse._fp_cp1252)
        patched.setattr(feedparser.api, "PREFERRED_XML_PARSERS", parse._fp_xml_parsers)
        return _ours(body, url, headers)


def test_the_shortcuts_are_installed() -> None:
    # Otherwise the comparison below would compare feedparser with itself.
    assert feedparser.mixin.make_safe_absolute_uri is parse._make_safe_absolute_uri
    assert feedparser.mixin._urljoin is parse._urljoin
    assert FeedParserDict.get is not parse._fp_dict_methods["get"]
    assert feedparser.mixin.copy is not parse._fp_copy
    assert feedparser.mixin._cp1252 is not parse._fp_cp1252


def test_an_absolute_url_under_the_sentinel_is_returned_as_written_and_others_are_joined() -> None:
    base = parse._SENTINEL_BASE
    for uri in (
        "https://example.com/a?b=1#c",
        "http://example.com",
        "https://h/é",
        "https:///triple",
        "https://[::1/",
        "/relative",
        "mailto:x@example.com",
        " https://lead.example/space",
    ):
        assert parse._urljoin(base, uri) == parse._fp_urljoin(base, uri), uri
    assert parse._urljoin("https://real.example/feed", "https://a.example/x") == parse._fp_urljoin(
        "https://real.example/feed", "https://a.example/x"
    )


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("folder", FOLDERS)
def test_every_document_parses_the_same_as_with_plain_feedparser(
    folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = require_shared(CORPUS)
    paths = sorted(
        p for p in (root / folder).rglob("*") if p.is_file() and p.suffix not in NOT_DOCUMENTS
    )
    if not paths:
        pytest.fail(f"{root / folder} holds no documents")
    differing: list[str] = []
    for path in paths:
        relative = path.relative_to(root).as_posix()
        body, headers = load(path)
        url = f"https://corpus.example/{relative}"
        if _ours(body, url, headers) != _plain(body, url, headers, monkeypatch):
            differing.append(relative)
    assert not differing, f"{len(differing)} of {len(paths)} differ: {differing[:10]}"
