"""Each variant speaks its reader's language: labels from the gettext catalogs, dates from
Babel, ``dir="rtl"`` for Arabic, the language in every format, and an item in another language
saying which one it is in.

Hand-built ``OutputFeed``s (from test_publish) rendered per language, read back with
ElementTree, feedparser, the JSON Feed 1.1 schema and an HTML5 parser.
"""

from __future__ import annotations

import dataclasses
import html
import re
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import feedparser
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from aggregator import i18n
from aggregator.catalog import CategoryText, load_catalog
from aggregator.publishing.formats import (
    CategoryLinks,
    render_atom,
    render_category_page,
    render_json,
    render_rss,
)
from aggregator.types import OutputFeed
from tests.support.outputchecks import html5_errors, json_feed
from tests.unit.test_catalog import GOOD_SOURCE, assert_located, problems, write
from tests.unit.test_publish import BASE, sample_feed

ROOT = Path(__file__).resolve().parents[2]
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM = "{http://www.w3.org/2005/Atom}"
PLACEHOLDER = re.compile(r"%\(\w+\)s")
OTHER_LANGUAGES = tuple(lang for lang in i18n.UI_LANGUAGES if lang != i18n.SOURCE_LANGUAGE)


def _messages() -> set[str]:
    """Every message the code marks for translation, extracted as ``pybabel extract`` does."""
    found = extract_from_dir(str(ROOT), method_map=[("aggregator/publishing/**.py", "python")])
    return {
        message for _file, _line, message, _comments, _context in found if isinstance(message, str)
    }


def _catalog(lang: str) -> dict[str, str]:
    po = resources.files("aggregator.locale") / lang / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    assert not catalog.fuzzy
    return {str(m.id): str(m.string) for m in catalog if m.id and not m.fuzzy}


def _variant(lang: str) -> OutputFeed:
    return dataclasses.replace(sample_feed(lang), title="AI")


def _page(lang: str) -> str:
    links = CategoryLinks(
        feed=_variant(lang), languages=("en", "fr", "de", "ar", "ja"), newest_archive=2, lang=lang
    )
    data = render_category_page(links, site_title="Feeds")
    assert html5_errors(data) == []
    return data.decode("utf-8")


# -- the catalogs ----------------------------------------------------------------------------


def test_the_languages_asked_for_have_catalogs() -> None:
    wanted = {
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
    }
    assert wanted <= set(i18n.UI_LANGUAGES)


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_every_catalog_translates_every_message_of_the_code(lang: str) -> None:
    messages = _messages()
    assert "Also in:" in messages  # the extraction sees the renderers' calls
    catalog = _catalog(lang)
    assert set(catalog) == messages, "run pybabel extract/update (docs/localisation.md)"
    for message, translation in catalog.items():
        assert translation.strip(), f"{lang}: {message!r} is not translated"
        assert PLACEHOLDER.findall(translation) == PLACEHOLDER.findall(message), (lang, message)


def test_the_template_lists_the_messages_of_the_code() -> None:
    with (resources.files("aggregator.locale") / "messages.pot").open("rb") as handle:
        template = {str(m.id) for m in read_po(handle) if m.id}
    assert template == _messages()


def test_a_language_without_a_catalog_reads_english() -> None:
    assert i18n.ui_language("sv") == "en"
    assert i18n.ui_language("pt-BR") == "pt"
    assert i18n.translator("sv").gettext("Also in:") == "Also in:"
    assert i18n.translator("fr-CA").gettext("Also in:") == "Dans d'autres langues :"


# -- labels and dates in each variant's language ---------------------------------------------


def test_french_page() -> None:
    text = _page("fr")
    assert '<html lang="fr" dir="ltr">' in text
    assert "<p>Dans d'autres langues :</p>" in html.unescape(text)
    assert "Sources : Korea Herald, Le Monde" in text
    assert "S&#x27;abonner :" in text or "S'abonner :" in text
    # Babel's French medium date, UTC as French writes it; "updated" with its article.
    assert '<time datetime="2026-11-27T09:00:00Z">27 nov. 2026, 09:00 TU</time>' in text
    assert "mis à jour le <time" in text
    # The English story says which language it is in, named in French.
    assert "Langue d'origine : anglais" in text


def test_german_page() -> None:
    text = _page("de")
    assert '<html lang="de" dir="ltr">' in text
    assert "<p>In anderen Sprachen:</p>" in text
    assert "Quellen: Korea Herald" in text
    assert '<time datetime="2026-11-27T09:00:00Z">27.11.2026, 09:00 UTC</time>' in text
    assert "aktualisiert am <time" in text
    assert "Originalsprache: Englisch" in text


def test_arabic_page_runs_right_to_left() -> None:
    text = _page("ar")
    assert '<html lang="ar" dir="rtl">' in text
    assert "<p>بلغات أخرى:</p>" in text
    assert "المصادر: Korea Herald" in text
    assert "التوقيت العالمي</time>" in text
    # Latin-script titles inside the right-to-left page keep their own direction.
    assert '<h3 lang="en" dir="ltr">' in text
    assert '<li lang="fr" dir="ltr">' in text


def test_japanese_page() -> None:
    text = _page("ja")
    assert '<html lang="ja" dir="ltr">' in text
    assert "<p>他の言語：</p>" in text
    assert "情報源：Korea Herald" in text
    # The time comes before "updated" in Japanese.
    assert '<time datetime="2026-11-27T12:00:00Z">2026/11/27 12:00 UTC</time> 更新' in text
    assert "原文の言語：英語" in text


def test_english_page_is_as_before() -> None:
    text = _page("en")
    assert '<html lang="en" dir="ltr">' in text
    assert "<p>Also in:</p>" in text
    assert '<time datetime="2026-11-27T09:00:00Z">Nov 27, 2026, 09:00 UTC</time>' in text
    assert "updated <time" in text


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_no_english_label_in_a_non_english_variant(lang: str) -> None:
    """Every format of a variant, and its page, carry the translations and none of the English
    labels (where the language writes the label differently)."""
    catalog = _catalog(lang)
    feed = _variant(lang)
    atom = ET.fromstring(render_atom(feed, lang=lang))
    rss = ET.fromstring(render_rss(feed, lang=lang))
    documents = {
        # What a reader sees: the page's text without its markup, and the items' bodies.
        "page": html.unescape(re.sub(r"<[^>]+>", " ", _page(lang))),
        "atom": "\n".join(
            html.unescape(e.findtext(f"{ATOM}summary") or "") for e in atom.iter(f"{ATOM}entry")
        ),
        "rss": "\n".join(html.unescape(e.findtext("description") or "") for e in rss.iter("item")),
        "json": "\n".join(
            html.unescape(item["content_html"])
            for item in json_feed(render_json(feed, lang=lang))["items"]
        ),
    }
    # Every message as English writes it (up to its first placeholder); no language here
    # writes any of them the same way.
    english = {message.split("%(", 1)[0].strip() for message in _messages()}
    for name, text in documents.items():
        for label in english:
            assert label not in text, f"{lang} {name}: English {label!r}"
    page = documents["page"]
    for message in (
        "Also in:",
        "Sources:",
        "Subscribe:",
        "All languages",
        "Languages:",
        "Original language:",
    ):
        assert catalog[message] in page, f"{lang}: {message!r}"
    assert catalog["updated %(time)s"].split("%(", 1)[0].strip() in page
    for name in ("atom", "rss", "json"):
        assert catalog["Also in:"] in documents[name]
        assert catalog["Sources:"] in documents[name]


def test_rtl_only_for_right_to_left_languages() -> None:
    assert [lang for lang in i18n.UI_LANGUAGES if i18n.direction(lang) == "rtl"] == ["ar"]
    assert i18n.direction("he") == "rtl"
    assert i18n.direction("xx") == "ltr"
    assert i18n.direction(None) == "ltr"


# -- the language in every format --------------------------------------------------------------


def test_feeds_carry_the_variants_language() -> None:
    feed = _variant("ar")
    atom = ET.fromstring(render_atom(feed, lang="ar"))
    assert atom.get(XML_LANG) == "ar"
    rss = ET.fromstring(render_rss(feed, lang="ar"))
    assert rss.findtext("channel/language") == "ar"
    assert json_feed(render_json(feed, lang="ar"))["language"] == "ar"


def test_an_item_in_another_language_is_labelled_as_such() -> None:
    """No offline translation model ships inside a package (docs/localisation.md): the
    original title stays, marked with its language for software and for the reader."""
    feed = _variant("fr")
    atom = ET.fromstring(render_atom(feed, lang="fr"))
    entries = atom.findall(f"{ATOM}entry")
    korea = entries[0]
    assert korea.findtext(f"{ATOM}title") == "Korea unveils national AI plan"
    assert korea.get(XML_LANG) == "en"
    assert "<p>Langue d'origine : anglais</p>" in html.unescape(
        korea.findtext(f"{ATOM}summary") or ""
    )
    # The French story is in the feed's language: no label.
    assert entries[1].get(XML_LANG) is None
    assert "Langue d" not in (entries[1].findtext(f"{ATOM}summary") or "")
    rss = ET.fromstring(render_rss(feed, lang="fr"))
    first = rss.find("channel/item")
    assert first is not None
    assert first.findtext("{http://purl.org/dc/elements/1.1/}language") == "en"
    assert "Langue d'origine : anglais" in html.unescape(first.findtext("description") or "")
    assert feedparser.parse(render_rss(feed, lang="fr")).entries[0].title == (
        "Korea unveils national AI plan"
    )
    item = json_feed(render_json(feed, lang="fr"))["items"][0]
    assert item["language"] == "en"
    assert "Langue d&#x27;origine : anglais" in item["content_html"]


# -- pages link each other ---------------------------------------------------------------------


def test_category_pages_link_each_other_with_hreflang() -> None:
    text = _page("fr")
    assert (
        f'<link rel="alternate" hreflang="x-default" href="{BASE}/categories/ai-policy.html">'
    ) in text
    for lang in ("en", "fr", "de", "ar", "ja"):
        assert (
            f'<link rel="alternate" hreflang="{lang}" '
            f'href="{BASE}/categories/ai-policy.{lang}.html">'
        ) in text
    # The switch names each language in itself and marks the page being read.
    assert '<strong lang="fr" hreflang="fr">Français</strong>' in text
    assert (
        f'<a href="{BASE}/categories/ai-policy.ar.html" lang="ar" hreflang="ar">العربية</a>'
    ) in text
    # Older stories are offered in the same language.
    assert f'href="{BASE}/feeds/ai-policy/archive/2.fr.atom"' in text


# -- the category's own title and description, per language ----------------------------------

TRANSLATED = """
[[category]]
id = "ai-policy"
title = "AI policy"
description = "Laws on AI."
languages = ["en", "fr", "de"]

[category.translations.fr]
title = "Politique de l'IA"
description = "Les lois sur l'IA."

[category.translations.de]
title = "KI-Politik"
"""


def test_category_translations_are_read(tmp_path: Path) -> None:
    category = load_catalog(write(tmp_path, GOOD_SOURCE, TRANSLATED)).category("ai-policy")
    assert category.translations == (
        CategoryText("fr", "Politique de l'IA", "Les lois sur l'IA."),
        CategoryText("de", "KI-Politik", None),
    )
    assert category.title_in("fr") == "Politique de l'IA"
    assert category.title_in("fr-CA") == "Politique de l'IA"
    assert category.description_in("fr") == "Les lois sur l'IA."
    # German gives only a title; Spanish nothing: the category's own words stand in.
    assert category.description_in("de") == "Laws on AI."
    assert category.title_in("es") == "AI policy"
    assert category.title_in(None) == "AI policy"


def test_an_inline_table_reads_the_same(tmp_path: Path) -> None:
    inline = TRANSLATED.split("[category.translations.fr]", maxsplit=1)[0] + (
        'translations.fr = { title = "Politique de l\'IA" }\n'
    )
    category = load_catalog(write(tmp_path, GOOD_SOURCE, inline)).category("ai-policy")
    assert category.title_in("fr") == "Politique de l'IA"


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ('[category.translations.xx]\ntitle = "?"', "translations.xx", "not a known language"),
        (
            '[category.translations.french]\ntitle = "?"',
            "translations.french",
            "not a known language",
        ),
        ('[category.translations.fr]\ntitel = "?"', "translations.fr", "unknown key(s) titel"),
        ('[category.translations.fr]\ntitle = ""', "translations.fr.title", "non-empty"),
        ('[category.translations]\nfr = "Politique"', "translations.fr", "a table"),
        ('translations = "fr"', "translations", "a table of languages"),
    ],
)
def test_bad_translations_are_named(tmp_path: Path, table: str, key: str, reason: str) -> None:
    categories = _category_with(table)
    found = problems(write(tmp_path, GOOD_SOURCE, categories))
    matching = [e for e in found if e.key == key]
    assert matching, [str(e) for e in found]
    assert_located(matching[0], "categories.toml", "ai-policy", key)
    assert reason in str(matching[0])


def _category_with(table: str) -> str:
    return f'[[category]]\nid = "ai-policy"\ntitle = "AI policy"\n{table}\n'
