"""Telling a feed from what is clearly not one, before the parser sees it.

Owns the content-type and body sniffing behind ``not_a_feed``: binary media types are refused
from the headers alone; an HTML page is refused only when its body looks like one, because
real feeds are often served as text/html or with no type at all.
"""

from __future__ import annotations

import html
import re

# What we look at to recognise a document; feeds and pages declare their root early.
SNIFF_BYTES = 8 * 1024
# A <title> deep in a huge <head> is not worth searching for.
TITLE_SEARCH_BYTES = 64 * 1024
TITLE_QUOTE_CHARS = 80

# Types that may carry a feed or an HTML page: the body decides.
SNIFFED_TYPES = frozenset({"", "text/html", "application/xhtml+xml"})
# Top-level types that are never a feed.
BINARY_TOP_LEVEL = frozenset({"image", "audio", "video", "font", "model"})
# application/* types that are never a feed (octet-stream is absent on purpose: servers label
# feeds with it, and the parser can tell).
BINARY_APPLICATION = frozenset(
    {
        "pdf",
        "zip",
        "gzip",
        "x-gzip",
        "x-tar",
        "x-7z-compressed",
        "x-rar-compressed",
        "msword",
        "vnd.ms-excel",
        "vnd.ms-powerpoint",
        "x-shockwave-flash",
        "wasm",
        "java-archive",
        "vnd.openxmlformats-officedocument.wordprocessingml.document",
        "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)
FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
# Elements an HTML document starts with (HTML lets <html> and <head> be omitted). Other roots
# (opml, entry, an unknown XML vocabulary) go to the parser, which names what it found.
HTML_START_ELEMENTS = frozenset(
    {
        "html",
        "head",
        "body",
        "meta",
        "title",
        "link",
        "base",
        "script",
        "style",
        "noscript",
        "div",
        "p",
        "span",
        "a",
        "table",
        "center",
        "font",
        "form",
        "iframe",
        "img",
        "br",
        "hr",
        "header",
        "main",
        "nav",
        "section",
        "article",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
    }
)

_BOM_ENCODINGS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# Prolog pieces that may come before the root element.
_PROLOG = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!doctype\s+([^\s>\[]+)[^>\[]*(?:\[.*?\])?\s*>)",
    re.IGNORECASE | re.DOTALL,
)
_ELEMENT = re.compile(r"\s*<([a-z_][\w.:-]*)", re.IGNORECASE)
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def media_type(content_type: str | None) -> str:
    """``type/subtype`` in lower case, without parameters; "" when absent."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def binary_type(content_type: str | None) -> str | None:
    """The media type when it can never be a feed (image, PDF, archive …), else None."""
    kind = media_type(content_type)
    top, _, sub = kind.partition("/")
    if top in BINARY_TOP_LEVEL or (top == "application" and sub in BINARY_APPLICATION):
        return kind
    return None


def looks_like_html_page(body: bytes, content_type: str | None) -> bool:
    """True when a body served as HTML (or untyped) is an HTML document, not a feed.

    A feed root (rss, feed, rdf:RDF, channel) or a JSON body is never refused, whatever the
    Content-Type says; other XML types are left to the parser.
    """
    if media_type(content_type) not in SNIFFED_TYPES:
        return False
    head = _text_head(body)
    stripped = head.lstrip()
    if stripped.startswith(("{", "[")):
        return False
    position = 0
    html_doctype = False
    while match := _PROLOG.match(head, position):
        doctype = match.group(1)
        html_doctype = html_doctype or (doctype is not None and doctype.lower() == "html")
        position = match.end()
    element = _ELEMENT.match(head, position)
    if element is None:
        return html_doctype
    name = element.group(1).lower()
    # The root decides over the doctype: feeds copied from web pages keep an XHTML doctype.
    # A prefixed root (rdf:RDF, atom:feed) is XML, never an HTML start element.
    if ":" in name or name in FEED_ROOTS:
        return False
    return html_doctype or name in HTML_START_ELEMENTS


def html_title(body: bytes) -> str | None:
    """The page's <title>, whitespace collapsed and cut to a quotable length."""
    match = _TITLE.search(body[:TITLE_SEARCH_BYTES])
    if match is None:
        return None
    text = " ".join(html.unescape(match.group(1).decode("utf-8", "replace")).split())
    if len(text) > TITLE_QUOTE_CHARS:
        text = text[: TITLE_QUOTE_CHARS - 1] + "…"
    return text or None


def _text_head(body: bytes) -> str:
    head = body[:SNIFF_BYTES]
    for bom, encoding in _BOM_ENCODINGS:
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, "replace")
    # Markup names are ASCII: latin-1 maps every byte, whatever the real charset.
    return head.decode("latin-1")
