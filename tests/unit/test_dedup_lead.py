"""The text the model embeds: a lead that skips consent, subscription and navigation furniture,
bylines, date lines and captions in several languages, and survives hostile input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from aggregator.clustering.dedup.embed import DIM
from aggregator.clustering.dedup.features import FeatureExtractor, input_from_text
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.clustering.dedup.lead import (
    LEAD_CHARS,
    SCAN_CHARS,
    clean_segments,
    is_boilerplate,
    lead,
    lead_text,
    plain,
)


@pytest.mark.parametrize(
    "segment",
    [
        "We use cookies to ensure that we give you the best experience on our website.",
        "Wir setzen auf unserer Website Cookies ein, um Ihnen den vollen Funktionsumfang "
        "anzubieten.",
        "Utilizamos cookies propias y de terceros para mejorar su experiencia.",
        "Please enable Javascript to watch this video",
        "Abilita Javascript per guardare questo video",
        "Sign up to FREE email alerts from Mirror - daily news",
        "Keep supporting great journalism by turning off your ad blocker.",
        "WhatsApp Facebook Twitter Pinterest Linkedin Tumblr Correo electrónico",
        "Share Tweet Email",
        "Anzeige",
        "Read More",
        "By Jane Doe",
        "Von Katja Colmenares, Johannes Malinowski",
        "miércoles, 01 de enero de 2020 17:29",
        "19.06.2020 / 17:59 CET/CEST",
        "Dec 31, 2019 Updated Dec 31, 2019",
        "(Photo: AP)",
        "https://example.org/news/2020/01/01/story.html",
        "关闭广告拦截器，继续支持伟大的新闻业，请订阅。",
        "Drogi Użytkowniku! Możemy przetwarzać pliki cookie i podobne dane.",
    ],
)
def test_furniture_is_boilerplate(segment: str) -> None:
    assert is_boilerplate(segment), segment


@pytest.mark.parametrize(
    "segment",
    [
        "Facebook says a bug in its anti-spam system is blocking links to news stories.",
        "Sen. Chuck Grassley took to Twitter on Thursday to criticise the president.",
        "Home Secretary Priti Patel announced new border rules on Monday.",
        "More than 650 paratroopers left for the Middle East on Wednesday.",
        "Die Regierung kündigte am Dienstag neue Hilfen für Landwirte an.",
        "El banco central mantuvo los tipos de interés sin cambios en 2020.",
        'Przez "bombę" nie poleciała na Teneryfę',
        "新德里：周二阳光明媚，尽管冰冷的风席卷了这座城市，但气温却只上升了几个档次。",
        "伊利诺伊州 200 多项新法律将于 2020 年 1 月 1 日生效。",
        "By the end of the year 353 people had died on the roads.",
        "The 2020 budget passed with 61 votes.",
    ],
)
def test_reports_are_not_boilerplate(segment: str) -> None:
    assert not is_boilerplate(segment), segment


def test_the_lead_skips_a_consent_notice_before_the_report() -> None:
    body = (
        "Wir setzen auf unserer Website Cookies und andere Technologien ein, um Ihnen den "
        "vollen Funktionsumfang anzubieten. Sie können auch zu Analysezwecken gesetzt werden.\n"
        "Bagdad (dpa) - Die versuchte Erstürmung der amerikanischen Botschaft in Bagdad hat "
        "die Spannungen zwischen den USA und dem Iran verschärft."
    )
    prepared = lead("", body)
    assert prepared.text.startswith("Bagdad (dpa)")
    assert "Cookies" not in prepared.text
    assert prepared.skipped >= 2


def test_an_untitled_headline_glued_to_site_talk_is_kept() -> None:
    body = (
        "Justin Bieber verkauft Tacos aus einem Food-Truck Bitte registrieren! Sie haben noch "
        "keinen Zugang zum Archiv? Der Sänger stand am Freitag in Los Angeles selbst am Grill."
    )
    text = lead("", body).text
    assert text.startswith("Justin Bieber verkauft Tacos aus einem Food-Truck")
    assert "registrieren" not in text
    assert "Los Angeles" in text


def test_share_rows_bylines_and_date_lines_go_in_spanish() -> None:
    body = (
        "WhatsApp Facebook Twitter Pinterest Linkedin Tumblr Correo electrónico\n"
        "Por Guillermo Abogado González\n"
        "miércoles, 01 de enero de 2020 17:29\n"
        "La policía logró detener al sujeto que atropelló a su ex nuera en Lavalle."
    )
    assert lead("Detenido en Mendoza", body).text == (
        "Detenido en Mendoza. La policía logró detener al sujeto que atropelló a su ex nuera "
        "en Lavalle."
    )


def test_the_title_repeated_by_the_body_is_read_once() -> None:
    title = "Angriffe auf US-Botschaft im Irak"
    text = lead(title, f"{title}\n{title}. Demonstranten stürmten das Gelände.").text
    assert text == f"{title}. Demonstranten stürmten das Gelände."


def test_chinese_sentences_keep_their_own_spacing() -> None:
    body = "巴塞罗那决定不出售比达尔。加泰罗尼亚豪门决定不让这位智利国脚转会。"
    assert lead("", body).text == body


def test_an_untitled_entry_gets_a_second_chunk_and_a_titled_one_does_not() -> None:
    body = " ".join(f"Sentence number {i} of the report about the flood." for i in range(40))
    untitled = lead("", body)
    assert len(untitled.text) == LEAD_CHARS
    assert untitled.has_second
    assert body.startswith(untitled.text)
    assert untitled.text + untitled.second in body or untitled.second in body
    titled = lead("Floods close the northern motorway for a second day", body)
    assert not titled.has_second


def test_markup_remnants_are_read_as_text() -> None:
    body = (
        '<div class="share"><a href="/x">Share</a> <a href="/y">Tweet</a></div>'
        "<p>The mayor&nbsp;opened the new bridge on Tuesday &amp; thanked the builders.</p>"
    )
    expected = "The mayor opened the new bridge on Tuesday & thanked the builders."
    assert lead("", body).text == expected
    assert plain("a<br/>b &lt;c&gt;") == "a b <c>"


def test_empty_input_gives_an_empty_lead() -> None:
    prepared = lead("", "")
    assert prepared.text == ""
    assert not prepared.has_second
    assert lead("Only a title", "").text == "Only a title"


def test_only_furniture_falls_back_to_the_raw_start() -> None:
    body = "Share Tweet Email\nPlease enable Javascript to watch this video"
    prepared = lead("", body)
    # Copies of one notice must still match each other, so the raw words stay.
    assert prepared.text == "Share Tweet Email Please enable Javascript to watch this video"
    assert prepared.skipped == 2
    assert lead("Budget passed", body).text == "Budget passed"


def test_a_huge_body_is_read_only_as_far_as_the_lead_needs() -> None:
    huge = "Anzeige " + "Der Stadtrat beschloss den Haushalt. " * 200_000
    prepared = lead("", huge)
    kept, _ = clean_segments(huge)
    assert prepared.text.startswith("Der Stadtrat beschloss den Haushalt.")
    assert len(prepared.text) <= LEAD_CHARS
    # Repeats are dropped, and only the first SCAN_CHARS are examined at all.
    assert kept == ["Der Stadtrat beschloss den Haushalt."]
    assert len(plain(huge)) <= 2 * SCAN_CHARS


def test_full_text_is_read_when_it_holds_more_than_the_feed() -> None:
    summary = "Short teaser."
    page = "Cookie settings accept all cookies\nThe minister resigned on Friday after the vote."
    assert lead("Minister resigns", summary, page).text == (
        "Minister resigns. The minister resigned on Friday after the vote."
    )
    assert lead("Minister resigns", summary, None).text == "Minister resigns. Short teaser."


def test_bad_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="lead lengths"):
        lead("title", "body", chars=0)
    with pytest.raises(ValueError, match="lead lengths"):
        lead("title", "body", second_chars=-1)


class RecordingEmbedder:
    """Stands in for the model: remembers what it was asked to read."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.read.extend(texts)
        return np.full((len(texts), DIM), 1 / np.sqrt(DIM), dtype=np.float32)


def test_the_feature_extractor_embeds_the_lead_of_the_extracted_page() -> None:
    embedder = RecordingEmbedder()
    extractor = FeatureExtractor(LanguageDetector(), embedder)
    stored_text = "Minister resigns\nShort teaser."
    page = "Please accept all cookies to continue.\nThe minister resigned on Friday after the vote."
    item = input_from_text("1", "Minister resigns", stored_text, "en", None, None, page)
    extractor.extract_many(
        [item, input_from_text("2", "Minister resigns", stored_text, "en", None, None)]
    )
    assert embedder.read == [
        "Minister resigns. The minister resigned on Friday after the vote.",
        "Minister resigns. Short teaser.",
    ]


def test_a_consent_run_leaves_neither_its_opening_words_nor_its_fragments() -> None:
    body = (
        "Schweiz schränkt Export von Schutzausrüstung ein Um die Funktion unserer Website zu "
        "verbessern, sammeln wir Informationen über Sie. Für Details siehe "
        "Datenschutzerklärung. gen. Indem Sie „Akzeptieren“ anklicken, stimmen Sie zu."
    )
    assert lead("", body).text == "Schweiz schränkt Export von Schutzausrüstung ein"


def test_a_report_about_a_website_is_not_site_talk() -> None:
    body = (
        "Die National Security Agency erklärte am Freitag, ein Fehler habe ihre öffentliche "
        "Website einige Stunden lahmgelegt und nicht Hacker, wie online behauptet wurde."
    )
    assert lead("NSA: interner Fehler", body).text == f"NSA: interner Fehler. {body}"


_REPORT = (
    "The city council approved the budget on Tuesday after a long debate. "
    "Schools get more money for teachers and buildings. "
    "Roads in the north of the city will be repaired next spring. "
    "The opposition said the plan was too expensive and voted against it. "
)


@pytest.mark.parametrize(
    ("title", "body"),
    [
        ("Budget passed", _REPORT * 3),
        ("", _REPORT * 3),
        ("Budget", "Budget\n" + _REPORT * 3),
        ("Budget passed", "Budget passed. " + _REPORT),
        # A dropped segment right where the lead ends changes the kept one's separator.
        ("Council", _REPORT.replace(". ", ".\nShare Tweet Email\n") * 2),
        ("", "Anzeige\n" + "Share Tweet Email\n" * 40 + _REPORT),
        ("Budget passed", "Budget passed | " + " | ".join(_REPORT.split(". ")) * 2),
        ("市议会通过预算", "市议会周二通过了预算。学校将获得更多资金。" * 30),
        ("", "We use cookies. " * 5 + "Please accept all cookies to continue."),
        ("Short", "Budget passed. Budget passed. " * 20 + _REPORT),
    ],
)
def test_the_model_text_reads_the_body_only_as_far_as_it_needs(title: str, body: str) -> None:
    for chars in (20, 96, LEAD_CHARS, 2000):
        assert lead_text(title, body, chars=chars) == lead(title, body, chars=chars).text
