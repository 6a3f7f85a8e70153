"""Text from feeds and editors made harmless for a terminal.

Owns what the command line may print of text it did not write itself: escape sequences (CSI,
OSC, DCS and the like, in their 7-bit ``ESC`` and 8-bit C1 forms) are removed whole, then every
other control character but newline and tab, so a feed title cannot retitle the window, clear
the screen or forge a hyperlink.
"""

from __future__ import annotations

import json
import re

# A string-type sequence (OSC, DCS, SOS, PM, APC) runs to its terminator (BEL, or ST as
# ESC \ or 0x9C), or to the end of the text when it has none: a terminal would swallow that too.
_STRING_SEQUENCE = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
# CSI: parameters, intermediates, then one final byte.
_CSI_SEQUENCE = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
# Any other escape: intermediates and a final byte (ESC ( B, ESC 7, ESC c…).
_OTHER_ESCAPE = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"
_SEQUENCES_RE = re.compile(f"{_STRING_SEQUENCE}|{_CSI_SEQUENCE}|{_OTHER_ESCAPE}")
# Left over once sequences are gone: C0 but tab and newline, DEL, C1.
_CONTROLS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What JSON output must still escape after ``json.dumps(..., ensure_ascii=False)``, which
# escapes only C0: DEL and C1 (0x9B alone starts a CSI on many terminals).
_JSON_UNESCAPED_RE = re.compile(r"[\x7f-\x9f]")


def terminal_text(text: object) -> str:
    """``text`` (``str()`` of it) without escape sequences or control characters but ``\\n``
    and ``\\t``: the one filter for printing anything a feed or an editor wrote."""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():
        return value  # nothing to strip: the common case costs one scan
    return _CONTROLS_RE.sub("", _SEQUENCES_RE.sub("", value))


def terminal_json(value: object, *, indent: int | None = None) -> str:
    """``value`` as JSON for a terminal: every character kept, control ones as ``\\uXXXX``."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_UNESCAPED_RE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
