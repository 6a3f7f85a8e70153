"""Real-world feeds of ``../shared/data/feeds/`` through parse, normalize and the store's poll
write (issues 14 and 15): each feed's distinct items stay distinct entries in distinct stories,
a re-poll stores nothing again, and readable dates are never replaced by the poll time.

The check itself is ``bench/realfeeds_check.py`` (one implementation for the script and the
tests); the named files are the cases the issues list, the slow test covers all 336 files.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from tests.support.bench import bench_module
from tests.support.shared import require_shared

if TYPE_CHECKING:  # bench/ is on mypy's path (mypy_path in pyproject.toml), not on sys.path
    from realfeeds_check import FileReport

CORPUS = "data/feeds"
BENCHMARK = "fastfeedparser-realworld/benchmark_data/"

# Entries of one feed that the check counts as the feed republishing one item, and why (read
# in the files). Al-Monitor: 20 items for 11 articles, 3 of them listed 4 times with the same
# guid and link. Taverncast: two "Geekistry" items with one guid (and one mp3) and one date.
JUSTIFIED_REPUBLICATIONS = {
    BENCHMARK + "72fea1ebfd02e90a": 9,
    "rss-parser-inputs/itunes-missing-image.rss": 1,
}


def _check_module() -> ModuleType:
    return bench_module("realfeeds_check")


def _reports(*relative: str) -> dict[str, FileReport]:
    root = require_shared(CORPUS)
    check = _check_module()
    paths = [root / name for name in relative]
    return {report.path: report for report in check.run(root, paths)}


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "entries"),
    [
        (BENCHMARK + "2c95f93d868f5c01", 43),  # lovergne.dev: every post is /awesome#post
        (BENCHMARK + "1d58ba8460bcc2d0", 30),  # xxiivv journal: now.html#entry
        (BENCHMARK + "18d1bc71cc221963", 10),  # WordPress comments: page#comment-N
        ("rss-parser-inputs/itunes-missing-image.rss", 131),  # Taverncast: links to home page
        (BENCHMARK + "b38787f0a7eb3696", 338),  # fale.io: one talk's title at many events
        (BENCHMARK + "cc314ce5dfbb3adc", 1046),  # areweanticheatyet: no guid, no link
    ],
)
def test_a_feeds_distinct_items_stay_distinct(name: str, entries: int) -> None:
    report = _reports(name)[name]
    republished = JUSTIFIED_REPUBLICATIONS.get(name, 0)
    assert report.error is None
    assert report.entries_in == entries
    assert (report.stored, report.republished) == (entries - republished, republished)
    assert report.merged == 0, "distinct entries of one feed share an entry or a story"
    assert report.repoll_new == 0, "a re-poll of the same document stored entries again"


@pytest.mark.shared
def test_localized_and_placeholder_dates() -> None:
    uol, frisk = "rss-parser-inputs/uolNoticias.rss", BENCHMARK + "1c17c9c37207f120"
    reports = _reports(uol, frisk)
    # UOL Notícias: "Seg, 24 Set 2018 19:42:40 -0300", read from the localized names.
    assert reports[uol].date_sources == {"feed-localized": 15}
    assert reports[uol].poll_dates == 0
    # frisk.space: 19 items dated "Mon, 01 Jan 0001": undated, and on a first poll backlog
    # stored below the feed's dated entries, never with the poll's time.
    assert reports[frisk].placeholder_dates == 19
    assert reports[frisk].date_sources == {"feed": 13, "first-seen": 19}
    assert reports[frisk].stored_poll_dates == 0


@pytest.mark.slow
@pytest.mark.shared
def test_every_real_world_feed_keeps_its_entries_and_dates() -> None:
    root = require_shared(CORPUS)
    check = _check_module()
    reports = check.run(root, check.documents(root))
    assert len(reports) == 336
    problems = []
    for report in reports:
        if report.error:
            continue  # refused documents (HTML pages, gzip bodies) are test_corpus's business
        republished = JUSTIFIED_REPUBLICATIONS.get(report.path, 0)
        expected = report.entries_in - report.empty - republished
        if (report.stored, report.republished, report.merged) != (expected, republished, 0):
            problems.append(
                f"{report.path}: in {report.entries_in}, empty {report.empty}, "
                f"stored {report.stored}, republished {report.republished}, "
                f"merged {report.merged}"
            )
        if report.repoll_new or report.poll_dates or report.stored_poll_dates:
            problems.append(
                f"{report.path}: re-poll new {report.repoll_new}, readable dates "
                f"undated {report.poll_dates} {report.examples}, stored with the "
                f"poll time {report.stored_poll_dates}"
            )
    assert problems == []


@pytest.mark.shared
def test_craigslist_titles_read_as_the_publisher_meant() -> None:
    """craigslist wraps HTML in CDATA: ``<![CDATA[… &#x0024;4300 3bd 1930ft<sup>2</sup>]]>``.
    feedparser marks these titles text/html; shown as plain text they are "$4300 … 1930ft2",
    not the literal markup (which no reader wants to see)."""
    from datetime import UTC, datetime

    from aggregator.polling.normalize import normalize_feed
    from aggregator.polling.parse import parse_feed

    path = require_shared(CORPUS) / "rss-parser-inputs" / "craigslist.rss"
    feed = parse_feed(path.read_bytes(), url="https://sfbay.craigslist.example/", headers={})
    entries = normalize_feed(
        feed,
        feed_url="https://sfbay.craigslist.example/",
        source_language=None,
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    titles = [e.title for e in entries]
    assert titles[0] == (
        "Bright, Spacious Beautiful Victorian (oakland north / temescal) $4300 3bd 1930ft2"
    )
    assert not [t for t in titles if "&#" in t or "<sup>" in t]
