"""``resolve_link``'s shortcut for plain absolute http(s) links gives what ``urljoin`` and
``urlsplit`` give (the reference below is the general path, written out); ``canonical_url``'s
dot segments and host checks."""

from __future__ import annotations

import random
from urllib.parse import urljoin, urlsplit

from aggregator.polling.normalize import canonical_url, resolve_link

BASES = (
    "https://feeds.example/a/feed.xml",
    "http://feeds.example/",
    "",
    "http://[bad/x",
    "shttp://document-base.invalid/_/document",
    "HTTPS://Feeds.Example",
)
PIECES = (
    "http://",
    "https://",
    "HTTP://",
    "Https://",
    "a.example",
    "b.example:8080",
    "A.Example",
    "h%41st",
    "x.example.",
    "u@h",
    "[::1]",
    "[",
    "]",
    "/",
    "//",
    "/p",
    ";x",
    "?",
    "?q=1",
    "&utm_source=x",
    "#",
    "#f",
    "#!/r",
    "/./",
    "/../",
    "%41",
    "%zz",
    " ",
    "\t",
    "\n",
    "\x01",
    "é",
    "ü.example",
    "/path.html",
    ".",
    ":",
    "~",
    "'",
    '"',
    "<",
    "\\",
    "\u3000",
    "\x7f",
)


def reference(link: str, base: str) -> tuple[str, str] | None:
    try:
        resolved = urljoin(base, link.strip()) if base else link.strip()
        return resolved, urlsplit(resolved).scheme.lower()
    except ValueError:
        return None


def links(count: int) -> list[str]:
    rng = random.Random(1919)
    made = [
        "https://a.example/x",
        "http://a.example",
        "https://a.example/p?q#f",
        "https://a.example/p?#f",
        "https://a.example/p#",
        "https://a.example/p?",
        "https://a.example/p;v=1",
        "https://a;b.example/p",
        "https://a[b.example/p",
        "https://a.example/p[1]",
        "https://a.example//p",
        " https://a.example/ ",
        "https://a.example/p#a#b?c",
        "https://a.example/p?a?b#c",
    ]
    for _ in range(count):
        made.append(
            rng.choice(PIECES[:4]) + "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 6)))
        )
    return made


def test_resolve_link_as_urljoin() -> None:
    for link in links(20000):
        for base in BASES:
            assert resolve_link(link, base) == reference(link, base), (link, base)


def test_canonical_url_dot_segments_and_hosts() -> None:
    assert canonical_url("https://A.example/a/./b/../c.html?utm_source=x&k=1#!/r") == (
        "https://a.example/a/c.html?k=1#!/r"
    )
    assert canonical_url("https://a.example/a.b/.c/..d") == "https://a.example/a.b/.c/..d"
    assert canonical_url("https://a.example/x/.") == "https://a.example/x/"
    assert canonical_url("https://a.example/..") == "https://a.example/"
    assert canonical_url("https://a.example/.x./y") == "https://a.example/.x./y"
    assert canonical_url("https://a.ex{ample/") is None
    assert canonical_url("https://a.ex%41mple/") is None


def test_canonical_url_of_plain_links_as_the_general_path() -> None:
    # With a base, canonical_url always takes urllib's path; joining a URL with itself gives
    # it back whenever urljoin(url, url) == url, so both paths see the same URL.
    compared = 0
    for link in links(20000):
        try:
            same = urljoin(link, link) == link
        except ValueError:
            continue
        if same:
            compared += 1
            assert canonical_url(link) == canonical_url(link, base=link), link
    assert compared > 5000
