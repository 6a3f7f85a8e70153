"""Language names for the "Also in" lists and the HTML pages, each written in itself.

A reader sees "Français" whatever the feed's language, so one table serves every output.
Unknown codes fall back to the code itself rather than to a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

LANGUAGE_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ar": "العربية",
        "bg": "Български",
        "ca": "Català",
        "cs": "Čeština",
        "da": "Dansk",
        "de": "Deutsch",
        "el": "Ελληνικά",
        "en": "English",
        "es": "Español",
        "et": "Eesti",
        "eu": "Euskara",
        "fa": "فارسی",
        "fi": "Suomi",
        "fr": "Français",
        "ga": "Gaeilge",
        "he": "עברית",
        "hi": "हिन्दी",
        "hr": "Hrvatski",
        "hu": "Magyar",
        "id": "Bahasa Indonesia",
        "it": "Italiano",
        "ja": "日本語",
        "ko": "한국어",
        "lt": "Lietuvių",
        "lv": "Latviešu",
        "ms": "Bahasa Melayu",
        "nb": "Norsk bokmål",
        "nl": "Nederlands",
        "nn": "Norsk nynorsk",
        "no": "Norsk",
        "pl": "Polski",
        "pt": "Português",
        "ro": "Română",
        "ru": "Русский",
        "sk": "Slovenčina",
        "sl": "Slovenščina",
        "sr": "Српски",
        "sv": "Svenska",
        "th": "ไทย",
        "tr": "Türkçe",
        "uk": "Українська",
        "ur": "اردو",
        "vi": "Tiếng Việt",
        "zh": "中文",
    }
)


def language_name(code: str) -> str:
    """``pt-BR`` → "Português"; an unknown code is shown as given."""
    primary = code.split("-", 1)[0].lower()
    return LANGUAGE_NAMES.get(primary, code)
