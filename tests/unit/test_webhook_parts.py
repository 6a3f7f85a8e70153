"""The pure parts of webhooks: signatures as a receiver checks them, ``webhooks.toml``
validation naming file, subscriber and key, filters, back-off, and source-health alerts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.delivery.health import assess
from aggregator.delivery.sender import backoff
from aggregator.delivery.signing import signature, signature_header, verify
from aggregator.delivery.subscribers import load_subscribers
from aggregator.errors import ConfigError
from aggregator.store.webhooks import SourceFacts
from aggregator.types import SourceHealth, Subscriber

SECRET = "whsec-0123456789abcdef"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BODY = b'{"id":"story.published:abc:news","type":"story.published"}'


def test_a_signature_verifies_only_with_its_secret_body_and_a_recent_timestamp() -> None:
    stamp = 1_800_000_000
    header = signature_header(SECRET, stamp, BODY)
    assert header == f"t={stamp},v1={signature(SECRET, stamp, BODY)}"
    assert verify(SECRET, header, BODY, now=stamp + 10)
    assert not verify("another-secret-of-length", header, BODY, now=stamp)
    assert not verify(SECRET, header, BODY + b" ", now=stamp)
    assert not verify(SECRET, header, BODY, now=stamp + 301)  # a replay, too old
    assert not verify(SECRET, f"t={stamp + 1},v1={signature(SECRET, stamp, BODY)}", BODY, now=stamp)
    assert not verify(SECRET, "v1=deadbeef", BODY, now=stamp)
    # While a secret is rotated a request may carry two signatures; either may match.
    rotated = f"{header},v1={signature('old-secret-0123456789', stamp, BODY)}"
    assert verify(SECRET, rotated, BODY, now=stamp)


def _write(folder: Path, text: str) -> Path:
    (folder / "webhooks.toml").write_text(text, encoding="utf-8")
    return folder


GOOD = (
    '[[subscriber]]\nid = "partner"\nurl = "https://hooks.example/in"\n'
    'secret_env = "PARTNER_SECRET"\ncategories = ["news"]\nlanguages = ["en"]\n'
    'events = ["story.published", "source.health"]\n'
)


def test_a_good_file_and_no_file(tmp_path: Path) -> None:
    assert load_subscribers(tmp_path, categories=["news"], allow_private=False) == []
    [partner] = load_subscribers(
        _write(tmp_path, GOOD),
        categories=["news"],
        allow_private=False,
        environ={"PARTNER_SECRET": SECRET},
    )
    assert partner.secret is None
    assert (partner.secret_env, partner.origin) == ("PARTNER_SECRET", "file")
    assert partner.events == ("story.published", "source.health")


@pytest.mark.parametrize(
    ("text", "item", "key", "words"),
    [
        (GOOD.replace('"news"]', '"sport"]'), "partner", "categories", "unknown category"),
        (
            GOOD.replace("https://hooks.example/in", "http://127.0.0.1:8080/in"),
            "partner",
            "url",
            "loopback",
        ),
        (
            GOOD.replace("https://hooks.example/in", "ftp://hooks.example/in"),
            "partner",
            "url",
            "http",
        ),
        (GOOD.replace("PARTNER_SECRET", "UNSET_SECRET"), "partner", "secret_env", "not set"),
        (
            GOOD.replace('secret_env = "PARTNER_SECRET"', 'secret = "short"'),
            "partner",
            "secret",
            "at least 16",
        ),
        (GOOD.replace('secret_env = "PARTNER_SECRET"\n', ""), "partner", "secret", "exactly one"),
        (GOOD.replace('"source.health"', '"story.deleted"'), "partner", "events", "unknown event"),
        (GOOD.replace('["en"]', '["english"]'), "partner", "languages", "language code"),
        (GOOD.replace('id = "partner"', 'id = "Partner One"'), "Partner One", "id", "slug"),
        (GOOD + 'colour = "red"\n', "partner", "colour", "unknown key"),
        (GOOD + GOOD, "partner", "id", "duplicate"),
    ],
)
def test_a_bad_file_names_file_subscriber_and_key(
    tmp_path: Path, text: str, item: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_subscribers(
            _write(tmp_path, text),
            categories=["news"],
            allow_private=False,
            environ={"PARTNER_SECRET": SECRET},
        )
    error = caught.value
    assert (error.file, error.item, error.key) == (str(tmp_path / "webhooks.toml"), item, key)
    assert words in error.reason


def test_loopback_targets_are_allowed_where_private_addresses_are(tmp_path: Path) -> None:
    text = GOOD.replace("https://hooks.example/in", "http://127.0.0.1:8080/in")
    [partner] = load_subscribers(
        _write(tmp_path, text),
        categories=["news"],
        allow_private=True,
        environ={"PARTNER_SECRET": SECRET},
    )
    assert partner.url == "http://127.0.0.1:8080/in"


def test_not_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_subscribers(_write(tmp_path, "[[subscriber]\n"), categories=[], allow_private=False)


def test_filters() -> None:
    everything = Subscriber(id="a", url="https://x.example/")
    assert everything.wants("story.published", ["news"], ["fr"])
    picky = replace(
        everything, categories=("news",), languages=("en",), events=("story.published",)
    )
    assert picky.wants("story.published", ["news", "tech"], ["en-GB"])
    assert not picky.wants("story.version", ["news"], ["en"])
    assert not picky.wants("story.published", ["tech"], ["en"])
    assert not picky.wants("story.published", ["news"], ["fr"])
    # A source of unknown language still alerts a subscriber that filters by language.
    assert picky.wants("story.published", ["news"], [])


def test_backoff_doubles_up_to_its_cap() -> None:
    waits = [backoff(n, 30, 600).total_seconds() for n in range(1, 8)]
    assert waits == [30, 60, 120, 240, 480, 600, 600]
    assert backoff(10_000, 30, 600) == timedelta(seconds=600)


def _source(**changes: object) -> SourceFacts:
    base = SourceFacts(
        id="s",
        url="https://s.example/feed",
        configured_url=None,
        redirect_url=None,
        title="S",
        language="en",
        categories=("news",),
        state="active",
        error_count=0,
        last_error=None,
        last_success_at=NOW - timedelta(hours=1),
        publish_interval_seconds=3600.0,
        entries=10,
        newest_entry_at=NOW - timedelta(hours=2),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "health", "words"),
    [
        ({}, SourceHealth.OK, ""),
        ({"error_count": 2}, SourceHealth.OK, ""),
        ({"error_count": 3, "last_error": "HTTP 503"}, SourceHealth.FAILING, "3 failed polls"),
        ({"state": "gone", "last_error": "HTTP 410 Gone"}, SourceHealth.GONE, "410"),
        ({"redirect_url": "https://s.example/new"}, SourceHealth.MOVED, "s.example/new"),
        ({"configured_url": "https://old.example/feed"}, SourceHealth.MOVED, "sources.toml"),
        ({"entries": 0, "newest_entry_at": None}, SourceHealth.EMPTY, "no entries"),
        ({"newest_entry_at": NOW - timedelta(days=3)}, SourceHealth.SILENT, "usually"),
        # Quiet for a day, though hourly: within the two days any source may rest.
        ({"newest_entry_at": NOW - timedelta(days=1)}, SourceHealth.OK, ""),
        ({"state": "paused", "error_count": 9}, SourceHealth.OK, ""),
    ],
)
def test_source_health(changes: dict[str, object], health: SourceHealth, words: str) -> None:
    alert = assess(_source(**changes), NOW)
    assert alert.health == health
    assert words in alert.detail
