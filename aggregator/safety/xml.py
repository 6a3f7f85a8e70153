"""Defusing entity expansion in feed documents before they reach the XML parser.

feedparser keeps a document's own ``<!ENTITY>`` declarations and, when expat gives up, its
loose parser expands them without limit (a 10 MB body can ask for terabytes). Declarations whose
total expansion stays under a budget are left as written; otherwise every declaration is removed
from the prolog and the references stay unexpanded.
"""

from __future__ import annotations

import re

from aggregator.errors import ParseError

# Characters the declared entities may add to the document when expanded, in total.
ENTITY_EXPANSION_BUDGET = 1_000_000
_MAX_NESTING = 20

_ROOT = re.compile(rb"<[A-Za-z_]")
_DECLARATION = re.compile(rb"<!ENTITY\b[^>]*>", re.IGNORECASE)
_INTERNAL = re.compile(rb"""<!ENTITY\s+([^\s%"']+)\s+(?:"([^"]*)"|'([^']*)')\s*>""", re.IGNORECASE)
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def defuse_entities(content: bytes) -> bytes:
    """``content`` unchanged, or with its entity declarations removed when they are risky."""
    if _is_wide(content):
        _refuse_wide_declarations(content)
        return content
    root = _ROOT.search(content)
    end = root.start() if root else len(content)
    prolog = content[:end]
    declarations = list(_DECLARATION.finditer(prolog))
    if not declarations:
        return content
    internal = {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _INTERNAL.finditer(prolog)
    }
    # External and parameter entities are never fetched by us; drop them whatever the budget.
    risky = len(internal) != len(declarations)
    if not risky:
        body = content[end:]
        memo: dict[bytes, int] = {}
        total = 0
        for name in internal:
            uses = body.count(b"&" + name + b";")
            if uses:
                total += uses * _expanded_size(name, internal, memo, 0)
            if total > ENTITY_EXPANSION_BUDGET:
                risky = True
                break
    if not risky:
        return content
    return _DECLARATION.sub(b"", prolog) + content[end:]


def _expanded_size(
    name: bytes, values: dict[bytes, bytes], memo: dict[bytes, int], depth: int
) -> int:
    if name in memo:
        return memo[name]
    if depth > _MAX_NESTING:
        return ENTITY_EXPANSION_BUDGET + 1
    value = values[name]
    size = len(value)
    for other in values:
        uses = value.count(b"&" + other + b";")
        if uses:
            size += uses * _expanded_size(other, values, memo, depth + 1)
        if size > ENTITY_EXPANSION_BUDGET:
            size = ENTITY_EXPANSION_BUDGET + 1
            break
    memo[name] = size
    return size


def _is_wide(content: bytes) -> bool:
    return content.startswith(_WIDE_BOMS) or b"\x00" in content[:4]


def _refuse_wide_declarations(content: bytes) -> None:
    """UTF-16/32 documents are rare; ones that declare entities are refused, not risked."""
    for encoding in ("utf-16", "utf-32"):
        try:
            text = content[:65536].decode(encoding, errors="ignore")
        except LookupError:  # pragma: no cover - both codecs always exist
            continue
        if "<!ENTITY" in text.upper():
            raise ParseError(
                "not a feed we accept: a UTF-16/32 document declaring XML "
                "entities (refused to avoid entity expansion attacks)"
            )
