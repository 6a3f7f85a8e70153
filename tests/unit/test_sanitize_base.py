"""``clean_html`` with a base URL: the shared cleaner that keeps relative URLs, and the cleaner
built for the entry's base when its result may hold one, give what a cleaner built for the
base gives on every input (``sanitize._nh3_clean``, the configured ammonia call).
"""

from __future__ import annotations

import random
from urllib.parse import urlsplit

import pytest

from aggregator.safety import sanitize
from aggregator.safety.sanitize import clean_html

BASES = (
    "https://news.example/2025/06/story.html?id=7#top",
    "http://blog.example",
    "https://xn--bcher-kva.example/a/b/",
)

# URL values that are relative, absolute, or look like one but are not, as feeds write them.
URL_VALUES = (
    "", " ", "/a", "a/b", "../up", "./here", "?q=1", "#frag", "//cdn.example/i.png",
    "https://o.example/x", "HTTP://O.example/X y", "http:rel", "https:/one-slash",
    "http:\\\\back", "mailto:a@b.example", "tel:+1", "javascript:alert(1)", "data:x",
    "ftp://f.example/", " https://lead.example/", "ht\ttp://tab.example/", "h ttp://sp/",
    "\x01http://c0.example/", "%68ttp://pct/", "&#104;ttp://entity/", "&amp;x", "a:b",
    "1http://digit/", "+x:y", "é:accent", "http://[::1]/", "http://bad host/", "café/menu",
    'q"uote', "x>y", "http://a.example/é",
)  # fmt: skip


def _fragments(rng: random.Random, count: int) -> list[str]:
    fragments: list[str] = []
    for _ in range(count):
        pieces: list[str] = []
        for _ in range(rng.randint(1, 4)):
            value = rng.choice(URL_VALUES)
            quote = rng.choice(['"', "'", ""]) if " " not in value else rng.choice(['"', "'"])
            space = rng.choice(["", " ", "\n"])
            kind = rng.randrange(6)
            if kind == 0:
                pieces.append(f"<a href{space}={space}{quote}{value}{quote}>link</a>")
            elif kind == 1:
                pieces.append(f"<img alt=x src={quote}{value}{quote}>")
            elif kind == 2:
                pieces.append(f'<p>text href="{value}" and src="{value}"</p>')
            elif kind == 3:
                pieces.append(f"<A HREF={quote}{value}{quote} title={quote}t{quote}>L</A>")
            elif kind == 4:
                pieces.append(f"<div data-src={quote}{value}{quote}>d</div>")
            else:
                pieces.append(f"<svg><a xlink:href={quote}{value}{quote}>s</a></svg>")
        fragments.append("".join(pieces))
    return fragments


@pytest.mark.parametrize("base", BASES)
def test_each_url_value_as_a_cleaner_for_the_base(base: str) -> None:
    for value in URL_VALUES:
        for fragment in (f'<a href="{value}">x</a>', f"<img src='{value}'>"):
            assert clean_html(fragment, base) == sanitize._nh3_clean(
                fragment, ("rewrite_with_base", base)
            ), fragment


def test_mixed_fragments_as_a_cleaner_for_the_base() -> None:
    rng = random.Random(19)
    for fragment in _fragments(rng, 3000):
        base = rng.choice(BASES)
        assert clean_html(fragment, base) == sanitize._nh3_clean(
            fragment, ("rewrite_with_base", base)
        ), (fragment, base)


def test_relative_urls_are_resolved_against_the_entry() -> None:
    base = "https://news.example/2025/06/story.html"
    assert clean_html('<a href="../a">x</a><img src="">', base) == (
        '<a href="https://news.example/2025/a" rel="noopener noreferrer nofollow">x</a>'
        '<img src="https://news.example/2025/06/story.html">'
    )
    assert clean_html('<a href="//cdn.example/i">x</a>', "http://n.example/") == (
        '<a href="http://cdn.example/i" rel="noopener noreferrer nofollow">x</a>'
    )
    # An absolute URL is kept as written, whatever its form.
    assert clean_html('<a href="HTTP://O.example">x</a>', base) == (
        '<a href="HTTP://O.example" rel="noopener noreferrer nofollow">x</a>'
    )


def test_http_base_check_as_urlsplit() -> None:
    def reference(url: str) -> bool:
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)

    starts = ("http://", "https://", "HTTP://", "http:/", "http:", " http://", "ftp://")
    rests = (
        "",
        "a",
        "/a",
        "?",
        "#",
        "\t",
        "\n",
        "\ta",
        "[::1]",
        "[",
        "a]",
        "é",
        "a:80",
        "@",
        "\x01",
        " ",
    )
    rng = random.Random(7)
    for _ in range(5000):
        url = rng.choice(starts) + "".join(rng.choice(rests) for _ in range(rng.randint(0, 3)))
        assert sanitize._is_http_url(url) == reference(url), url


BLOCKS = ("p", "div", "li", "ul", "h2", "blockquote", "br", "td", "tr", "table", "hr")
INLINE = ("b", "a href='/x'", "span", "em", "code")
TEXTS = ("word", " two\nlines ", "&amp; &lt;b&gt;", "\n", "  ", "a&nbsp;b", "é", "x > y")


def test_block_lines_as_the_skeleton_loop() -> None:
    rng = random.Random(23)
    compared = 0
    for _ in range(3000):
        parts: list[str] = []
        for _ in range(rng.randint(1, 8)):
            kind = rng.randrange(4)
            if kind == 0:
                parts.append(f"<{rng.choice(BLOCKS)} class='c'\nid=i>")
            elif kind == 1:
                parts.append(f"</{rng.choice(BLOCKS)}>")
            elif kind == 2:
                parts.append(f"<{rng.choice(INLINE)}>{rng.choice(TEXTS)}</b>")
            else:
                parts.append(rng.choice(TEXTS))
        skeleton = sanitize._SKELETON_CLEANER.clean("".join(parts))
        assert "<img" not in skeleton
        assert "<pre" not in skeleton
        assert sanitize._block_lines(skeleton) == sanitize._skeleton_lines(skeleton), skeleton
        compared += "<" in skeleton
    assert compared > 1500
