"""Every document of the shared feed corpora goes through parse + normalize.

Each one either yields entries or raises ``ParseError`` with a message; any other exception is
a bug. Gzip bodies are decompressed here, as fetch does for ``Content-Encoding: gzip``.
feedparser's own test files carry the HTTP headers their harness fakes (``Header: Name:
value``); they are passed on, since the encoding tests depend on them.
"""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.polling.normalize import MAX_FUTURE_SKEW, normalize_feed
from aggregator.polling.parse import parse_feed
from aggregator.types import ParsedFeed
from tests.support.shared import require_shared, shared_dir

CORPUS = "data/feeds"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Files that describe the corpus rather than belong to it.
NOT_DOCUMENTS = frozenset({".md", ".tsv"})
MAX_DECOMPRESSED_BYTES = 50_000_000
HEADER_LINE = re.compile(rb"^\s*Header:\s*([A-Za-z][\w-]*):[ \t]*(.*?)\s*$", re.MULTILINE)
EXPECT_NOT_BOZO = re.compile(rb"^\s*Expect:\s*not bozo\b", re.MULTILINE)
# feedparser knows these formats, our feed model has no use for a channel without items.
NOT_OUR_FORMATS = ("feedparser-tests/wellformed/cdf/",)


def corpus_documents() -> list[object]:
    root = shared_dir() / CORPUS
    if not root.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    return [
        pytest.param(path, id=path.relative_to(root).as_posix())
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix not in NOT_DOCUMENTS
    ]


def load(path: Path) -> tuple[bytes, dict[str, str]]:
    body = path.read_bytes()
    if body.startswith(b"\x1f\x8b"):
        with gzip.open(path) as stream:
            body = stream.read(MAX_DECOMPRESSED_BYTES)
    headers = {
        name.decode().lower(): value.decode("latin-1")
        for name, value in HEADER_LINE.findall(body[:4096])
    }
    return body, headers


@pytest.mark.shared
@pytest.mark.parametrize("path", corpus_documents())
def test_document_parses_or_fails_cleanly(path: Path | None) -> None:
    root = require_shared(CORPUS)
    assert path is not None, f"{root} appeared after collection; run pytest again"
    relative = path.relative_to(root).as_posix()
    body, headers = load(path)
    url = f"https://corpus.example/{relative}"
    feed: ParsedFeed | None = None
    try:
        feed = parse_feed(body, url=url, headers=headers)
    except ParseError as exc:
        error = str(exc)
    if feed is None:
        assert error.strip(), "a ParseError must say what was wrong"
        expected_feed = (
            relative.startswith("feedparser-tests/wellformed/")
            and not relative.startswith(NOT_OUR_FORMATS)
            and EXPECT_NOT_BOZO.search(body[:4096]) is not None
        )
        assert not expected_feed, f"a well-formed feed was rejected: {error}"
        return

    assert path.suffix != ".opml", "an OPML list was taken for a feed"
    entries = normalize_feed(feed, feed_url=url, source_language=None, now=NOW)
    keys = [entry.identity_key for entry in entries]
    assert len(keys) == len(set(keys))
    for entry in entries:
        assert entry.title
        assert entry.published_at.tzinfo is not None
        assert entry.published_at <= entry.updated_at <= NOW + MAX_FUTURE_SKEW
        assert entry.url is None or entry.url.startswith(("http://", "https://"))
        assert "<script" not in entry.summary_html + entry.content_html
