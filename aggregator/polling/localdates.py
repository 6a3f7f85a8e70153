"""Dates that feedparser cannot read because their month and day names are not English.

Owns one narrow format, the one seen in real feeds: an RFC 822 date written with localized
names (``Seg, 24 Set 2018 19:42:40 -0300``, ``mer, 16 nov 2022 00:38:15 +0100``,
``Mo, 3. Dez 2018 10:00:00 +0100``) in German, Spanish, French, Italian, Dutch or Portuguese.
A table, not a general date library: it costs microseconds per entry, and a poll may read
thousands of entries (dateparser took 2–150 ms per date here, depending on its language hints).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

ENGLISH_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

# Full month names, accents removed, lower case; any prefix of at least three letters names
# the month when every name it prefixes is the same month (``mar`` is March in six languages).
_MONTH_NAMES: tuple[tuple[str, ...], ...] = (
    ("january", "januar", "janner", "janeiro", "gennaio", "enero", "janvier", "januari"),
    ("february", "februar", "fevereiro", "febbraio", "febrero", "fevrier", "februari"),
    ("march", "marz", "marco", "marzo", "mars", "maart"),
    ("april", "abril", "aprile", "avril"),
    ("may", "mai", "maio", "maggio", "mayo", "mei"),
    ("june", "juni", "junho", "giugno", "junio", "juin"),
    ("july", "juli", "julho", "luglio", "julio", "juillet"),
    ("august", "agosto", "aout", "augustus"),
    ("september", "setembro", "settembre", "septiembre", "setiembre", "septembre"),
    ("october", "oktober", "outubro", "ottobre", "octubre", "octobre"),
    ("november", "novembro", "novembre", "noviembre"),
    ("december", "dezember", "dezembro", "dicembre", "diciembre", "decembre"),
)
MIN_PREFIX = 3

# A leading day name ("Seg,", "mer.,", "Mo,"): RFC 822 puts the weekday first, with a comma.
# It is dropped without being read: it adds nothing to the date, and short day names collide
# with month names (Italian "mar" is Tuesday and March).
_LEADING_DAY = re.compile(r"^\s*[^\W\d_]{2,12}\.?\s*,\s*")
_WORD = re.compile(r"[^\W\d_]+\.?")
# "3." (German day numbers) becomes "3".
_ORDINAL_DOT = re.compile(r"\b(\d{1,2})\.(?=\s)")


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _month_number(word: str) -> int | None:
    folded = _fold(word.rstrip("."))
    if len(folded) < MIN_PREFIX:
        return None
    found = {
        number
        for number, names in enumerate(_MONTH_NAMES, 1)
        for name in names
        if name.startswith(folded)
    }
    return found.pop() if len(found) == 1 else None


def parse_localized_date(text: str | None) -> datetime | None:
    """``text`` as aware UTC when it is an RFC 822 date with localized names; else None.

    A date without a zone is taken as UTC, as feedparser does.
    """
    if not text or len(text) > 100:
        return None
    rest = _ORDINAL_DOT.sub(r"\1", _LEADING_DAY.sub("", text.strip(), count=1))
    months = 0

    def english(match: re.Match[str]) -> str:
        nonlocal months
        number = _month_number(match.group())
        if number is None:
            return match.group()
        months += 1
        return ENGLISH_MONTHS[number - 1]

    rest = _WORD.sub(english, rest)
    if months != 1:
        return None
    if ":" not in rest:
        rest += " 00:00:00"  # a day without a time: midnight, as feedparser reads one
    try:
        parsed = parsedate_to_datetime(rest)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None
