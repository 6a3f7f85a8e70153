"""Entity declarations are kept while harmless and removed when their expansion is not."""

from __future__ import annotations

import pytest

from aggregator.errors import ParseError
from aggregator.polling.parse import parse_feed
from aggregator.safety.xml import defuse_entities


def rss_with(prolog: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [{prolog}]>\n<rss version="2.0"><channel>'
        f"<title>t</title><item><title>x</title><link>https://x.example/</link>"
        f"<description>{body}</description></item></channel></rss>"
    ).encode()


def test_a_small_entity_declaration_is_left_untouched() -> None:
    document = rss_with('<!ENTITY co "Example Corp">', "News from &co;")
    assert defuse_entities(document) == document
    feed = parse_feed(document, url="https://x.example/feed", headers={})
    assert feed.entries[0].title == "x"


def test_quadratic_and_nested_expansions_are_removed() -> None:
    quadratic = rss_with('<!ENTITY a "' + "A" * 10_000 + '">', "&a;" * 200)
    assert b"<!ENTITY" not in defuse_entities(quadratic)
    laughs = "".join(f'<!ENTITY l{n} "' + f"&l{n - 1};" * 10 + '">' for n in range(1, 10))
    nested = rss_with('<!ENTITY l0 "lol">' + laughs, "&l9;")
    assert b"<!ENTITY" not in defuse_entities(nested)


def test_external_entities_are_always_removed() -> None:
    document = rss_with('<!ENTITY x SYSTEM "file:///etc/passwd">', "&x;")
    assert b"<!ENTITY" not in defuse_entities(document)


def test_wide_documents_with_entities_are_refused() -> None:
    document = rss_with('<!ENTITY co "Corp">', "&co;").decode().encode("utf-16")
    with pytest.raises(ParseError, match="UTF-16"):
        defuse_entities(document)
    plain = rss_with("", "hello").decode().encode("utf-16")
    assert defuse_entities(plain) == plain
