"""Language-independent evidence that two texts report the same event: numbers, names, links.

Pure string work: numbers in a separator-free form, capitalized name tokens folded to ASCII
(accents dropped, Cyrillic and Greek transliterated, a short prefix kept so inflection and
spelling variants meet), and canonical links. Nothing here knows about models or stories.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Name keys are cut to this many ASCII letters: "Putina"/"Putin", "Merkels"/"Merkel" meet,
# while distinct names rarely share five letters.
NAME_KEY_CHARS = 5
# Shorter name keys are mostly initials and abbreviations shared by chance.
MIN_NAME_CHARS = 3
# Numbers with fewer digits (1, 12) are everywhere; 3+ digits (years, amounts, counts) carry
# information. Decimals keep their fraction digits.
MIN_NUMBER_DIGITS = 3
# Evidence is drawn from this much text: the lead says what the story is; the rest of a long
# article adds noise (related-story boxes, boilerplate).
MAX_EVIDENCE_CHARS = 1500
MAX_TOKENS = 200

_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґў",
        [
            "a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o",
            "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e",
            "yu", "ya", "i", "i", "e", "g", "u",
        ],
        strict=True,
    )
)  # fmt: skip
_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξοπρσςτυφχψω",
        [
            "a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x", "o", "p",
            "r", "s", "s", "t", "y", "f", "ch", "ps", "o",
        ],
        strict=True,
    )
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_NUMBER = re.compile(r"\d[\d.,\u00a0\u202f ]*\d|\d")
_SENTENCE_END = re.compile(r"[.!?:;»\"“”]\s*$")
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class Evidence:
    """The cross-language tokens of one text; sets so they compare by overlap."""

    numbers: frozenset[str]
    names: frozenset[str]
    links: frozenset[str]
    # Distinct words of the text (``words``); None for features stored before it was counted.
    words: int | None = None


def fold(word: str) -> str:
    """Lower-case ASCII form of ``word``: accents dropped, Cyrillic and Greek transliterated."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", word.casefold()):
        if ch.isascii():
            if ch.isalnum():
                out.append(ch)
        elif ch in _CYRILLIC:
            out.append(_CYRILLIC[ch])
        elif ch in _GREEK:
            out.append(_GREEK[ch])
        elif unicodedata.category(ch) == "Mn":
            continue
    return "".join(out)


def numbers(text: str) -> frozenset[str]:
    """Numbers with at least ``MIN_NUMBER_DIGITS`` digits, group separators removed.

    "1,000", "1 000" and "1.000" all become "1000"; a separator followed by one or two
    digits is taken as a decimal point ("1.08" stays "1.08", "2,5" becomes "2.5").
    """
    found: set[str] = set()
    for match in _NUMBER.finditer(text):
        raw = re.sub(r"[\u00a0\u202f ]", "", match.group())
        head, sep, tail = raw.rpartition(".") if "." in raw else raw.rpartition(",")
        if sep and 1 <= len(tail) <= 2 and tail.isdigit():
            value = re.sub(r"[.,]", "", head) + "." + tail
        else:
            value = re.sub(r"[.,]", "", raw)
        if sum(ch.isdigit() for ch in value) >= MIN_NUMBER_DIGITS:
            found.add(value)
        if len(found) >= MAX_TOKENS:
            break
    return frozenset(found)


def names(text: str) -> frozenset[str]:
    """Keys of capitalized words that do not open a sentence: a cheap stand-in for names.

    Scripts without case (Chinese, Arabic, Devanagari) give nothing here; their numbers and
    the embedding still count.
    """
    found: set[str] = set()
    previous_end = 0
    for match in _WORD.finditer(text):
        word = match.group()
        opens_sentence = previous_end == 0 or bool(_SENTENCE_END.search(text[: match.start()][-3:]))
        previous_end = match.end()
        if opens_sentence or not word[0].isupper() or (word.isupper() and len(word) > 6):
            continue
        key = fold(word)[:NAME_KEY_CHARS]
        if len(key) >= MIN_NAME_CHARS:
            found.add(key)
            if len(found) >= MAX_TOKENS:
                break
    return frozenset(found)


def links(text: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Links found in the text plus ``extra`` ones, without scheme, "www." or trailing "/"."""
    found = {_link_key(url) for url in _URL.findall(text)}
    found.update(_link_key(url) for url in extra if url)
    found.discard("")
    return frozenset(sorted(found)[:MAX_TOKENS])


def _link_key(url: str) -> str:
    key = re.sub(r"^https?://(www\.)?", "", url.strip().rstrip(".,;")).rstrip("/")
    return key.casefold()


def words(text: str) -> int:
    """How many distinct words ``text`` holds; in a script written without spaces (fewer
    than one space per 12 letters: Chinese, Japanese, Thai) half its distinct characters, about
    a word each."""
    found = [match.group().casefold() for match in _WORD.finditer(text)]
    letters = sum(len(word) for word in found)
    if letters and len(found) * 12 < letters:
        return len(set("".join(found))) // 2
    return len(set(found))


def extract(title: str, body: str, urls: Iterable[str] = ()) -> Evidence:
    """Evidence from a title and the lead of its body."""
    text = f"{title}.\n{body[:MAX_EVIDENCE_CHARS]}" if title else body[:MAX_EVIDENCE_CHARS]
    return Evidence(
        numbers=numbers(text), names=names(text), links=links(text, urls), words=words(text)
    )


def overlap(first: frozenset[str], second: frozenset[str]) -> float:
    """Overlap coefficient |A∩B| / min(|A|,|B|); 0 when either side is empty."""
    if not first or not second:
        return 0.0
    return len(first & second) / min(len(first), len(second))


def shared(first: frozenset[str], second: frozenset[str]) -> int:
    """How many tokens both sets hold."""
    return len(first & second)
