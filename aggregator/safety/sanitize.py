"""HTML cleaning and HTML-to-text for entry titles, summaries and content.

The only module importing nh3: untrusted feed HTML goes through ``clean_html`` (an allow-list,
relative URLs resolved, links marked ``nofollow``) before it is stored or republished.
``html_to_text`` and ``plain_title`` turn markup into the plain text used for rules and hashes.
"""

from __future__ import annotations

import html
import re
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import nh3

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite",
        "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
        "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small",
        "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip

# Dropped together with everything inside them: their content is code or an embedded page,
# never article text.
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "frame", "frameset"}
)

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"lang", "title"}),
    "a": frozenset({"href", "title", "hreflang"}),
    "img": frozenset({"src", "alt", "title", "width", "height"}),
    "abbr": frozenset({"title"}),
    "acronym": frozenset({"title"}),
    "bdo": frozenset({"dir"}),
    "ol": frozenset({"start", "reversed"}),
    "td": frozenset({"colspan", "rowspan"}),
    "th": frozenset({"colspan", "rowspan", "scope"}),
    "time": frozenset({"datetime"}),
}

# No javascript:, data: or vbscript: - anything not listed loses its href/src.
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})

LINK_REL = "noopener noreferrer nofollow"

# Elements whose boundaries separate words in the text version (a paragraph break, not glue).
BLOCK_ELEMENTS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
        "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "td", "th", "tr", "ul",
    }
)  # fmt: skip

# Text inside these never reaches the plain-text version.
INVISIBLE_ELEMENTS = frozenset({"script", "style", "template", "noscript", "head", "title"})

_RelativeUrls = Literal["deny"] | tuple[Literal["rewrite_with_base"], str]

# A tag as nh3 serializes it: lower-case name, attribute values always double-quoted.
_SKELETON_TAG = re.compile(r'<(/?)([a-z][a-z0-9]*)((?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*)\s*/?>')
_SURROGATE = re.compile("[\ud800-\udfff]")
_ALT_ATTRIBUTE = re.compile(r'\salt="([^"]*)"')


def clean_html(html_text: str, base_url: str | None) -> str:
    """Return ``html_text`` reduced to a safe allow-list of tags and attributes.

    Relative ``href``/``src`` are resolved against ``base_url`` when it is an absolute http(s)
    URL and dropped otherwise (they would point into our own site once republished).
    """
    if not html_text or not html_text.strip():
        return ""
    html_text = scrub_text(html_text)
    if not (base_url and _is_http_url(base_url)):
        return _DENY_CLEANER.clean(html_text).strip()
    # The base only matters for relative URLs, which ammonia alone rewrites (an absolute one
    # is kept as written), and a cleaner built for one base costs three cleans: clean with a
    # shared cleaner that keeps relative URLs, and build one for this base only when the
    # result has one.
    cleaned = _PASS_THROUGH_CLEANER.clean(html_text)
    if not _may_hold_relative_url(cleaned):
        return cleaned.strip()
    try:
        return _nh3_clean(html_text, ("rewrite_with_base", base_url))
    except ValueError:
        # ammonia rejected the base URL (it is stricter than urlsplit); drop relative URLs.
        return _DENY_CLEANER.clean(html_text).strip()


# The sanitizer's policy, given alike to nh3.clean and to the prebuilt cleaners; its sets are
# built once (a quarter of an nh3.clean call's time was building them), and nh3 only reads them.
_POLICY: Final[dict[str, Any]] = {
    "tags": set(ALLOWED_TAGS),
    "clean_content_tags": set(DROPPED_WITH_CONTENT),
    "attributes": {tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    "url_schemes": set(ALLOWED_URL_SCHEMES),
    "link_rel": LINK_REL,
    "strip_comments": True,
}


def _nh3_clean(html_text: str, relative: _RelativeUrls) -> str:
    return nh3.clean(html_text, url_relative=relative, **_POLICY).strip()


def _cleaner(relative: Literal["deny", "pass_through"]) -> nh3.Cleaner:
    return nh3.Cleaner(url_relative=relative, **_POLICY)


_DENY_CLEANER = _cleaner("deny")
_PASS_THROUGH_CLEANER = _cleaner("pass_through")

# Lower-case http(s), "//" and a first host character: urlsplit finds a netloc (it drops tabs
# and line breaks, so those do not count as one).
_PLAIN_HTTP_START = re.compile(r"https?://[^/?#\t\r\n]")

# An href/src attribute as the serializer writes it (any prefix: a namespaced name too), whose
# value does not open with a scheme: only such a value can be relative (the URL parser's
# "relative URL without a base"). Text that merely looks like one (the serializer leaves
# quotes in text as they are) only costs the slow path.
_NOT_SCHEME_URL_ATTRIBUTE = re.compile(r'(?:href|src)="(?![A-Za-z][A-Za-z0-9+.\-]*:)')


def _may_hold_relative_url(cleaned: str) -> bool:
    return ('="' in cleaned) and _NOT_SCHEME_URL_ATTRIBUTE.search(cleaned) is not None


def _is_http_url(url: str) -> bool:
    if (
        _PLAIN_HTTP_START.match(url) is not None
        and url.isascii()
        and "[" not in url
        and "]" not in url
    ):
        # urlsplit's answer without splitting: an http(s) scheme, a host, nothing it refuses.
        return True
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)


# Built once: most of an nh3.clean call with keyword arguments is building its configuration.
_SKELETON_CLEANER = nh3.Cleaner(
    tags=set(BLOCK_ELEMENTS | {"img"}),
    clean_content_tags=set(INVISIBLE_ELEMENTS | DROPPED_WITH_CONTENT),
    # "*": nothing, or nh3 keeps its default generic lang/title attributes.
    attributes={"img": {"alt"}, "*": set()},
    link_rel=None,
    strip_comments=True,
)


def html_to_text(html_text: str) -> str:
    """Plain text of an HTML fragment: entities decoded, one line per block, spaces collapsed.

    nh3 first reduces any input, however broken, to a well-formed skeleton of block tags and
    ``<img alt>`` (in linear time, unlike a regex over raw HTML); one regex pass then turns
    that skeleton into lines, about twice as fast as ``html.parser``.
    """
    if not html_text:
        return ""
    if "<" not in html_text and "&" not in html_text:
        return _collapse_lines(scrub_text(html_text))
    skeleton = _SKELETON_CLEANER.clean(scrub_text(html_text))
    if "<img" not in skeleton and "<pre" not in skeleton:
        lines = _block_lines(skeleton)
    else:
        lines = _skeleton_lines(skeleton)
    # Unescape last, once: the skeleton is serialized HTML, so text "<" arrives as "&lt;".
    return _collapse_lines(html.unescape(lines))


def _block_lines(skeleton: str) -> str:
    """``_skeleton_lines`` of a skeleton without ``<img>`` or ``<pre>``: every tag is then a
    line break, and block tags carry no attributes, so no line breaks of their own."""
    return _SKELETON_TAG.sub("\n", skeleton.replace("\n", " "))


def _skeleton_lines(skeleton: str) -> str:
    """The skeleton's text with a line break for each block tag, an image's alt text for the
    image, and source line breaks as spaces outside ``<pre>``; entities still escaped."""
    pieces: list[str] = []
    in_pre = 0
    position = 0
    for tag in _SKELETON_TAG.finditer(skeleton):
        text = skeleton[position : tag.start()]
        # Source line breaks are just spaces in HTML, except inside <pre>.
        pieces.append(text if in_pre else text.replace("\n", " "))
        position = tag.end()
        closing, name, attributes = tag.groups()
        if name == "img":
            # The alt text stands in for the picture, as a reader would hear it.
            alt = _ALT_ATTRIBUTE.search(attributes)
            if alt and alt.group(1):
                pieces.append(f" {alt.group(1)} ")
            continue
        pieces.append("\n")
        if name == "pre":
            in_pre = max(0, in_pre - 1) if closing else in_pre + 1
    tail = skeleton[position:]
    pieces.append(tail if in_pre else tail.replace("\n", " "))
    return "".join(pieces)


def _collapse_lines(text: str) -> str:
    if "\n" not in text:
        return " ".join(text.split())
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def scrub_text(text: str) -> str:
    """``text`` without characters no store can hold: NUL is dropped (PostgreSQL refuses it)
    and lone surrogates, from JSON ``\\ud800`` escapes or numeric character references,
    become U+FFFD (they cannot be encoded at all)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def plain_title(text: str | None, is_html: bool) -> str:
    """A one-line plain-text title.

    Entities are decoded even when the title is declared as text, because feeds escape titles
    twice far more often than they mean a literal ``&amp;``.
    """
    if not text:
        return ""
    plain = html_to_text(text) if is_html else html.unescape(text)
    return " ".join(scrub_text(plain).split())
