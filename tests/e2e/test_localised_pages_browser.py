"""The per-language category pages in a real browser (issue 17, acceptance 3): headless Debian
Chromium, driven by selenium, against the web app over a real store on 127.0.0.1.

The French, Arabic and Japanese pages show their labels and dates in that language, the Arabic
page runs right to left, and each is screenshotted (set AGGREGATOR_SCREENSHOT_DIR to keep the
PNGs and look at them). Skipped outside CI without chromium/chromedriver; in CI a missing
browser fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aggregator.catalog import Catalog, CategoryConfig, CategoryText
from aggregator.publishing.outputs import Outputs
from aggregator.store import Store
from aggregator.web import create_app
from tests.support.browser import chromium, require_browser
from tests.support.builders import NOW, entry, fetched, match, settle, source
from tests.support.webserver import serve_app

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

LANGUAGES = ("en", "fr", "ar", "ja")
HEADLINES = {
    "en": "Parliament adopts the AI Act",
    "fr": "Le Parlement adopte le règlement sur l'IA",
    "ar": "البرلمان يعتمد قانون الذكاء الاصطناعي",
    "ja": "議会がAI法を可決",
}
TITLES = {"fr": "Politique de l'IA", "ar": "سياسة الذكاء الاصطناعي", "ja": "AI政策"}
# What each page must say, in its own language: the switch, a label, an "updated" date.
EXPECTED = {
    "fr": ("Langues :", "S'abonner :", "mis à jour le", "Langue d'origine : anglais", " TU"),
    "ar": ("اللغات:", "اشترك:", "حُدِّث في", "لغة النص الأصلي: الإنجليزية", "التوقيت العالمي"),
    "ja": ("言語：", "購読：", "更新", "原文の言語：英語", "UTC"),
}


def _catalog() -> Catalog:
    sources = tuple(source(f"{lang}-wire", language=lang) for lang in LANGUAGES)
    category = CategoryConfig(
        id="ai-policy",
        title="AI policy",
        description="Laws on AI.",
        languages=LANGUAGES,
        variants="fallback",
        translations=tuple(CategoryText(lang, title) for lang, title in TITLES.items()),
    )
    return Catalog(sources=sources, categories=(category,))


@pytest.fixture
def site(store: Store) -> Iterator[str]:
    require_browser()
    catalog = _catalog()
    store.sync_sources(catalog, NOW)
    for hours, lang in enumerate(LANGUAGES, start=1):
        published = NOW + timedelta(hours=hours)
        store.save_poll(
            f"{lang}-wire",
            fetched(),
            body_hash=None,
            feed_title=None,
            feed_link=None,
            entries=[
                (
                    entry(
                        f"act-{lang}",
                        language=lang,
                        title=HEADLINES[lang],
                        published_at=published,
                        updated_at=published + timedelta(minutes=30),
                    ),
                    [match("ai-policy")],
                )
            ],
            next_check_at=published,
            now=published,
        )
    settle(store)
    outputs = Outputs(
        store=store,
        catalog=catalog,
        base_url="https://agg.example",
        tag_authority="agg.example",
        feed_size=20,
    )
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        yield base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    require_browser()
    with chromium(tmp_path / "profile") as driver:
        yield driver


def _screenshot(browser: WebDriver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(path))
    keep = os.environ.get("AGGREGATOR_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


@pytest.mark.parametrize("lang", ["fr", "ar", "ja"])
def test_page_in_its_language(site: str, browser: WebDriver, tmp_path: Path, lang: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{site}/categories/ai-policy.{lang}.html")
    root = browser.find_element(By.TAG_NAME, "html")
    assert root.get_attribute("lang") == lang
    assert browser.find_element(By.TAG_NAME, "h1").text == TITLES[lang]
    text = browser.find_element(By.TAG_NAME, "body").text
    for expected in EXPECTED[lang]:
        assert expected in text, f"{lang}: {expected!r} not on the page"
    for label in ("Subscribe", "Also in", "Sources:", "updated", "Original language"):
        assert label not in text
    # Fallback stories in other languages are shown with their own language marked.
    assert HEADLINES["en"] in text
    assert HEADLINES[lang] in text
    direction = browser.execute_script("return getComputedStyle(document.body).direction")
    assert direction == ("rtl" if lang == "ar" else "ltr")
    # The English headline inside the Arabic page keeps running left to right.
    heading = browser.find_element(By.XPATH, f"//h3[.//a[text()='{HEADLINES['en']}']]")
    assert (
        browser.execute_script("return getComputedStyle(arguments[0]).direction", heading) == "ltr"
    )
    # The language switch links every other language's page, in its own name.
    switch = browser.find_element(By.CSS_SELECTOR, "nav.meta")
    links = {
        a.get_attribute("hreflang"): a.get_attribute("href")
        for a in switch.find_elements(By.TAG_NAME, "a")
        if a.get_attribute("hreflang")
    }
    assert set(links) == set(LANGUAGES) - {lang}
    assert _screenshot(browser, tmp_path, f"ai-policy.{lang}").stat().st_size > 10_000


def test_arabic_page_is_laid_out_right_to_left(site: str, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    def first_switch_link_x(lang: str) -> float:
        browser.get(f"{site}/categories/ai-policy.{lang}.html")
        switch = browser.find_element(By.CSS_SELECTOR, "nav.meta")
        return float(switch.find_elements(By.TAG_NAME, "a")[0].rect["x"])

    # The switch starts at the right edge of the text column in Arabic, at the left in French.
    assert first_switch_link_x("ar") > first_switch_link_x("fr") + 300
