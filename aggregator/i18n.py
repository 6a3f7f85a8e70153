"""The readers' languages: gettext catalogs, dates, writing direction and language names, the
one home of Babel.

The catalogs are the ``.po`` files under ``aggregator/locale/`` (``docs/localisation.md`` says
how to extract and update them); each is compiled in memory the first time its language is
asked for, so an installed package needs no build step and no ``.mo`` files.
"""

from __future__ import annotations

import gettext
import io
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Final, Protocol

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

# The language the messages are written in: it needs no catalog.
SOURCE_LANGUAGE: Final = "en"
# Every language with a catalog under aggregator/locale/, the source language first.
UI_LANGUAGES: Final = (
    "en",
    "fr",
    "de",
    "es",
    "it",
    "pt",
    "nl",
    "pl",
    "ru",
    "uk",
    "zh",
    "ja",
    "ko",
    "ar",
    "hi",
)
LOCALE_PACKAGE: Final = "aggregator.locale"
DOMAIN: Final = "messages"


class Translator(Protocol):
    def gettext(self, message: str) -> str: ...


def primary(code: str | None) -> str | None:
    """``pt-BR`` → ``pt``: catalogs, directions and names are per primary language."""
    if not code:
        return None
    return code.strip().replace("_", "-").split("-", 1)[0].lower() or None


def ui_language(code: str | None) -> str:
    """The catalog language for a variant's language; English where there is no catalog."""
    language = primary(code)
    return language if language in UI_LANGUAGES else SOURCE_LANGUAGE


def translator(code: str | None) -> Translator:
    """The gettext translations for ``code`` (English, the messages as written, if none)."""
    return _translations(ui_language(code))


@lru_cache(maxsize=len(UI_LANGUAGES))
def _translations(language: str) -> Translator:
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    po = resources.files(LOCALE_PACKAGE) / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@lru_cache(maxsize=256)
def known_language(code: str) -> bool:
    """Whether ``code`` (``fr``, ``pt-BR``) names a language in the Unicode CLDR."""
    try:
        Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return False
    return True


@lru_cache(maxsize=256)
def direction(code: str | None) -> str:
    """``rtl`` for right-to-left scripts (Arabic, Hebrew, Persian, Urdu), else ``ltr``."""
    language = primary(code)
    if language is None or not known_language(language):
        return "ltr"
    return "rtl" if Locale.parse(language).character_order == "right-to-left" else "ltr"


def language_in(code: str, reader: str | None) -> str:
    """The name of language ``code`` in the reader's language: ``de`` for ``fr`` → "allemand"."""
    language = primary(code)
    if language is None or not known_language(language):
        return code
    name = Locale.parse(language).get_display_name(ui_language(reader))
    return name or code


def after_label(label: str) -> str:
    """The space between a label and what follows it: none after a full-width colon."""
    return "" if label.endswith("：") else " "


def format_moment(moment: datetime, code: str | None) -> str:
    """A date and time (UTC, to the minute) as the reader's language writes them."""
    locale = ui_language(code)
    value = moment.astimezone(UTC)
    day = format_date(value, "medium", locale=locale)
    time = format_time(value, "HH:mm z", tzinfo=UTC, locale=locale)
    pattern = str(get_datetime_format("medium", locale=locale))
    return pattern.replace("{1}", day).replace("{0}", time)
