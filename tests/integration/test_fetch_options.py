"""Per-source request settings (issue 18): user agent, extra headers, basic auth and cookie
from environment secrets, and a proxy, seen by a loopback server; the file's checks; the
settings carried into worker processes; and the secrets kept out of every output and log."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig, load_catalog
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.errors import ConfigError, FetchError
from aggregator.polling.fetch import Fetcher
from aggregator.polling.fetch.configured import fetcher_from_settings
from aggregator.polling.poller import Refresher
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import FetchOptions
from tests.support.builders import NOW
from tests.support.feeds import rss

USER_AGENT = "aggregator-tests/1.0"
AUTH_SECRET = "wire-user:pa55-W0RD-4c9f"
COOKIE_SECRET = "session=c00kie-5ecret-77aa"
ITEMS = [{"guid": "a", "title": "Ferry runs aground", "link": "https://wire.example/a"}]
OPTIONS = FetchOptions(
    user_agent="WireBot/2.0 (+https://news.example/bot)",
    headers=(("X-Client", "newsroom"), ("Accept-Language", "fr")),
    auth_env="WIRE_AUTH",
    cookie_env="WIRE_COOKIE",
)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIRE_AUTH", AUTH_SECRET)
    monkeypatch.setenv("WIRE_COOKIE", COOKIE_SECRET)


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(
        user_agent=USER_AGENT, connect_timeout=2, read_timeout=2, total_timeout=5
    ) as fetcher:
        yield fetcher


def _basic() -> str:
    return "Basic " + base64.b64encode(AUTH_SECRET.encode()).decode()


@pytest.mark.usefixtures("secrets")
def test_headers_user_agent_basic_auth_and_cookie_reach_the_server(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/feed.xml", Resource(body=rss("Wire", ITEMS)))
    fetcher.fetch(feed_server.url("/feed.xml"), options=OPTIONS)
    fetcher.fetch(feed_server.url("/feed.xml"))
    with_options, plain = feed_server.requests
    assert with_options.headers["user-agent"] == "WireBot/2.0 (+https://news.example/bot)"
    assert with_options.headers["x-client"] == "newsroom"
    assert with_options.headers["accept-language"] == "fr"
    assert with_options.headers["authorization"] == _basic()
    assert with_options.headers["cookie"] == COOKIE_SECRET
    # Another source on the same fetcher (same thread, same session) sends none of it.
    assert plain.headers["user-agent"] == USER_AGENT
    assert {"x-client", "authorization", "cookie"}.isdisjoint(plain.headers)


@pytest.mark.usefixtures("secrets")
def test_credentials_stay_with_the_source_origin_across_redirects(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    with FeedServer() as elsewhere:
        elsewhere.set("/feed.xml", Resource(body=rss("Moved", ITEMS)))
        feed_server.set("/feed.xml", Resource(status=302, redirect_to=elsewhere.url("/feed.xml")))
        fetcher.fetch(feed_server.url("/feed.xml"), options=OPTIONS)
        [first] = feed_server.requests
        [second] = elsewhere.requests
    assert first.headers["authorization"] == _basic()
    assert "authorization" not in second.headers
    assert "cookie" not in second.headers
    # The harmless settings follow the fetch wherever it goes.
    assert second.headers["x-client"] == "newsroom"


def test_a_missing_secret_names_the_variable(
    feed_server: FeedServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIRE_AUTH", raising=False)
    feed_server.set("/feed.xml", Resource(body=rss("Wire", ITEMS)))
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(feed_server.url("/feed.xml"), options=OPTIONS)
    assert caught.value.kind == "credentials"
    assert "WIRE_AUTH" in str(caught.value)
    assert feed_server.requests == []  # nothing sent half-authenticated
    monkeypatch.setenv("WIRE_AUTH", "no-colon-here")
    monkeypatch.setenv("WIRE_COOKIE", COOKIE_SECRET)
    with pytest.raises(FetchError) as malformed:
        fetcher.fetch(feed_server.url("/feed.xml"), options=OPTIONS)
    assert "user:password" in str(malformed.value)
    assert "no-colon-here" not in str(malformed.value)


def test_a_proxy_carries_the_request(feed_server: FeedServer, fetcher: Fetcher) -> None:
    # The origin does not listen: only the proxy can answer.
    origin = "http://127.0.0.1:9/feed.xml"
    with FeedServer() as proxy:
        proxy.set("/feed.xml", Resource(body=rss("Via proxy", ITEMS)))
        result = fetcher.fetch(origin, options=FetchOptions(proxy=proxy.base_url))
        [seen] = proxy.requests
    assert result.status == 200
    assert b"Via proxy" in (result.content or b"")
    # A proxy is asked for the absolute URL.
    assert seen.path == origin


def _sources_toml(folder: Path, extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "categories.toml").write_text(
        '[[category]]\nid = "news"\ntitle = "News"\n', encoding="utf-8"
    )
    (folder / "sources.toml").write_text(
        '[[source]]\nid = "wire"\nurl = "https://wire.example/feed.xml"\n'
        f'categories = ["news"]\n{extra}\n',
        encoding="utf-8",
    )
    return folder


def test_the_file_reads_every_option(tmp_path: Path) -> None:
    folder = _sources_toml(
        tmp_path,
        'user_agent = "WireBot/2.0"\n'
        'headers = { "X-Client" = "newsroom" }\n'
        'auth_env = "WIRE_AUTH"\ncookie_env = "WIRE_COOKIE"\n'
        'proxy = "http://proxy.internal:3128"',
    )
    source = load_catalog(folder).source("wire")
    assert source.fetch == FetchOptions(
        user_agent="WireBot/2.0",
        headers=(("X-Client", "newsroom"),),
        auth_env="WIRE_AUTH",
        cookie_env="WIRE_COOKIE",
        proxy="http://proxy.internal:3128",
    )


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('headers = { "Authorization" = "Bearer x" }', "headers.Authorization", "auth_env"),
        ('headers = { "Cookie" = "a=b" }', "headers.Cookie", "cookie_env"),
        ('headers = { "Host" = "other.example" }', "headers.Host", "set by the fetcher"),
        ('headers = { "Bad Name" = "x" }', "headers.Bad Name", "not an HTTP header name"),
        ('headers = { "X-Line" = "a\\nb" }', "headers.X-Line", "control character"),
        ('headers = "X-Client: a"', "headers", "table of strings"),
        ('auth_env = "wire auth"', "auth_env", "environment variable name"),
        ("cookie_env = 5", "cookie_env", "non-empty string"),
        ('proxy = "ftp://proxy.example"', "proxy", "http(s)"),
        ('proxy = "http://user:pw@proxy.example:3128"', "proxy", "password"),
        ('proxy = "http://proxy.example:3128"\npublic_only = true', "proxy", "directly"),
        ('user_agent = ""', "user_agent", "non-empty string"),
        ('fetch_headers = { "X" = "y" }', "fetch_headers", "unknown key"),
    ],
)
def test_bad_options_are_refused_naming_the_key(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    folder = _sources_toml(tmp_path, extra)
    with pytest.raises(ConfigError) as caught:
        load_catalog(folder)
    assert caught.value.item == "wire"
    assert caught.value.key == key
    assert words in str(caught.value)
    # The password of a refused proxy is not repeated in the error either.
    assert "pw@" not in str(caught.value)


def _settings() -> Settings:
    return replace(
        Settings.from_env({}), host_delay=0.0, connect_timeout=2, read_timeout=2, fetch_deadline=5
    )


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("processes", [0, 1])
def test_the_options_survive_the_poll_and_its_worker_processes(
    store: Store, feed_server: FeedServer, processes: int
) -> None:
    feed_server.set("/wire.xml", Resource(body=rss("Wire", ITEMS)))
    feed_server.set("/plain.xml", Resource(body=rss("Plain", ITEMS)))
    catalog = Catalog(
        sources=(
            SourceConfig(
                id="wire", url=feed_server.url("/wire.xml"), categories=("news",), fetch=OPTIONS
            ),
            SourceConfig(id="plain", url=feed_server.url("/plain.xml"), categories=("news",)),
            # The same URL with other settings is its own fetch, never one with wire's secrets.
            SourceConfig(id="copy", url=feed_server.url("/wire.xml"), categories=("news",)),
        ),
        categories=(CategoryConfig(id="news", title="News"),),
    )
    store.sync_sources(catalog, NOW)
    factory = partial(fetcher_from_settings, _settings())
    refresher = Refresher(
        store=store,
        fetcher=factory(),
        catalog=catalog,
        workers=2,
        processes=processes,
        fetcher_factory=factory,
        process_min_urls=1,
        clock=lambda: NOW,
    )
    try:
        summary = refresher.poll(store.due_sources(NOW, everything=True))
        assert sorted(o.result for o in summary.outcomes) == ["updated"] * 3
        if processes:
            assert len(refresher.worker_pids()) == 1
    finally:
        refresher.close()
        refresher.fetcher.close()
    by_path: dict[str, list[dict[str, str]]] = {}
    for request in feed_server.requests:
        by_path.setdefault(request.path, []).append(request.headers)
    authorized = [h for h in by_path["/wire.xml"] if "authorization" in h]
    assert [
        (h["authorization"], h["cookie"], h["x-client"], h["user-agent"]) for h in authorized
    ] == [(_basic(), COOKIE_SECRET, "newsroom", OPTIONS.user_agent)]
    assert len(by_path["/wire.xml"]) == 2
    assert "authorization" not in by_path["/plain.xml"][0]
    # Nothing the store keeps or shows of a source holds the settings or the secrets.
    shown = repr([s.as_json() for s in store.sources()])
    assert "WIRE_AUTH" not in shown
    assert AUTH_SECRET not in shown


@pytest.mark.usefixtures("secrets")
def test_the_secrets_are_never_logged(
    store: Store, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.set("/wire.xml", Resource(status=401))
    catalog = Catalog(
        sources=(
            SourceConfig(
                id="wire", url=feed_server.url("/wire.xml"), categories=("news",), fetch=OPTIONS
            ),
        ),
        categories=(CategoryConfig(id="news", title="News"),),
    )
    store.sync_sources(catalog, NOW)
    fetcher = fetcher_from_settings(_settings())
    refresher = Refresher(
        store=store, fetcher=fetcher, catalog=catalog, workers=1, clock=lambda: NOW
    )
    caplog.set_level(logging.DEBUG)
    try:
        refresher.poll(store.due_sources(NOW, everything=True))
    finally:
        refresher.close()
        fetcher.close()
    assert feed_server.requests[0].headers["authorization"] == _basic()
    health = next(s for s in store.sources() if s.id == "wire")
    assert health.last_status == 401
    logged = caplog.text + repr(health)
    assert "wire" in caplog.text  # the poll was logged
    for secret in (AUTH_SECRET, COOKIE_SECRET, _basic().split()[1]):
        assert secret not in logged


def test_check_warns_of_secrets_unset_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aggregator.cli import main

    folder = _sources_toml(tmp_path, 'auth_env = "WIRE_AUTH"\ncookie_env = "WIRE_COOKIE"')
    monkeypatch.delenv("WIRE_AUTH", raising=False)
    monkeypatch.setenv("WIRE_COOKIE", COOKIE_SECRET)
    # Valid all the same: the machine running check may not be the one holding the secrets.
    assert main(["check", "--config", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "source 'wire': auth_env names WIRE_AUTH, which is not set" in err
    assert "WIRE_COOKIE" not in err
    assert COOKIE_SECRET not in err


def test_editing_a_source_keeps_its_options(tmp_path: Path) -> None:
    from aggregator.editorial.configedit import set_source_enabled

    folder = _sources_toml(
        tmp_path, 'headers = { "X-Client" = "newsroom" }\nauth_env = "WIRE_AUTH"'
    )
    set_source_enabled(folder, "wire", False)
    source = load_catalog(folder).source("wire")
    assert not source.enabled
    assert source.fetch == FetchOptions(headers=(("X-Client", "newsroom"),), auth_env="WIRE_AUTH")
