"""Editors' regex rules compiled for a linear-time engine (RE2, through google-re2).

The one home of ``re2``. Rules are written in Python's regex syntax; this module translates the
parts whose meaning differs (``\\w``, ``\\d``, ``\\s`` are Unicode-aware in Python, ASCII in
RE2) and refuses, with the reason, what RE2 cannot run in linear time: backreferences,
lookaround, atomic groups, conditionals. No pattern can then make a poll or a dry run hang.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2

# Python's \w: letters and digits of any script, and the underscore.
_WORD = r"\p{L}\p{N}_"
_DIGIT = r"\p{Nd}"
# Python's \s: str.isspace(), which RE2's \s (ASCII, without \v) is not.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\p{Z}"
# Inside a class, the negated forms must be written without brackets; RE2's \P{..} allows
# that for digits only, so \W and \S in a class keep RE2's (ASCII) meaning.
_OUTSIDE = {
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "d": _DIGIT,
    "D": r"\P{Nd}",
    "s": f"[{_SPACE}]",
    "S": f"[^{_SPACE}]",
    "Z": r"\z",
}
_INSIDE = {"w": _WORD, "d": _DIGIT, "D": r"\P{Nd}", "s": _SPACE}

_REFUSED_GROUPS = (
    ("(?=", "lookahead (?=…) is not supported"),
    ("(?!", "negative lookahead (?!…) is not supported"),
    ("(?<=", "lookbehind (?<=…) is not supported"),
    ("(?<!", "negative lookbehind (?<!…) is not supported"),
    ("(?P=", "backreferences (?P=name) are not supported"),
    ("(?>", "atomic groups (?>…) are not supported"),
    ("(?(", "conditionals (?(…)…) are not supported"),
    ("(?#", "comments (?#…) are not supported"),
)
# Python's inline flags RE2 has no use for: a, u (str patterns are Unicode anyway), L.
_DROPPED_FLAGS = frozenset("auL")
# Python's \uXXXX and \UXXXXXXXX; RE2 writes them \x{…}.
_UNICODE_ESCAPE_RE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")
_FLAGS_RE = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_WHY = "rules run on a linear-time regex engine so that no rule can hang a poll"
# Far above any real rule; a pattern past it (huge counted repetitions) is refused.
MAX_PROGRAM_MEMORY = 8 << 20
# google-re2's engine answers with (start, end) byte spans, (-1, -1) for no match.
_UNANCHORED: Any = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
_NO_MATCH = (-1, -1)


class UnsupportedRegex(ValueError):
    """A valid Python regex that the linear-time engine cannot run; the message says why."""


@dataclass(frozen=True)
class RuleRegex:
    """A compiled rule regex; ``search`` is True when it matches anywhere in ``text``."""

    pattern: str
    compiled: Any

    def search(self, text: str) -> bool:
        # The wrapper's search builds a match object and maps byte offsets back to
        # characters, most of a call's cost on short fields; a yes or no needs the engine's
        # first span only. The wrapper's own search stays the fallback for any other version.
        engine = getattr(self.compiled, "_regexp", None)
        if engine is None or _UNANCHORED is None:
            return self.compiled.search(text) is not None
        encoded = text.encode("utf-8")
        return bool(engine.Match(_UNANCHORED, encoded, 0, len(encoded))[0] != _NO_MATCH)


def translate(pattern: str) -> str:
    """``pattern`` (Python syntax) in RE2 syntax with the same meaning; UnsupportedRegex
    names the construct RE2 cannot run."""
    out: list[str] = []
    index, in_class, class_start = 0, False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if escaped.isdigit() and escaped != "0" and not in_class:
                raise UnsupportedRegex(f"backreferences (\\{escaped}) are not supported: {_WHY}")
            code = _UNICODE_ESCAPE_RE.match(pattern, index)
            if code is not None:
                out.append(f"\\x{{{code.group(1) or code.group(2)}}}")
                index = code.end()
                continue
            table = _INSIDE if in_class else _OUTSIDE
            out.append(table.get(escaped, "\\" + escaped))
            index += 2
            continue
        if in_class:
            # A ']' right after '[' or '[^' is a literal, not the end of the class.
            if char == "]" and index > class_start:
                in_class = False
            out.append(char)
            index += 1
            continue
        if char == "[":
            in_class = True
            class_start = index + 1
            if pattern.startswith("^", class_start):
                class_start += 1
            out.append(char)
            index += 1
            continue
        if pattern.startswith("(?", index):
            for opener, reason in _REFUSED_GROUPS:
                if pattern.startswith(opener, index):
                    raise UnsupportedRegex(f"{reason}: {_WHY}")
            flags = _FLAGS_RE.match(pattern, index)
            if flags is not None:
                out.append(_flags(flags))
                index = flags.end()
                continue
        out.append(char)
        index += 1
    return "".join(out)


def _flags(match: re.Match[str]) -> str:
    on, off, end = match.group(1), match.group(2), match.group(3)
    if "x" in on:
        raise UnsupportedRegex("verbose mode (?x) is not supported")
    on = "".join(flag for flag in on if flag not in _DROPPED_FLAGS)
    off = "".join(flag for flag in (off or "") if flag not in _DROPPED_FLAGS)
    if not on and not off:
        return "(?:" if end == ":" else ""
    return f"(?{on}{'-' + off if off else ''}{end}"


def compile_rule_regex(pattern: str, *, ignore_case: bool = True) -> RuleRegex:
    """Compile ``pattern`` for the linear-time engine; ValueError (UnsupportedRegex for a
    construct it cannot run) with the reason otherwise."""
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_MEMORY
    translated = translate(pattern)
    try:
        compiled = re2.compile(translated, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise UnsupportedRegex(f"{detail}: {_WHY}") from exc
    return RuleRegex(pattern=pattern, compiled=compiled)
