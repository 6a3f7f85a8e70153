"""Sessions and token checks under abuse (issue 16, items 7 and 8): logout revokes the session
and its CSRF token; failed logins and Bearer tokens are rate-limited per client address with
Retry-After and logged with the address; weak tokens are refused at start-up without being
repeated.
"""

from __future__ import annotations

import logging
import re

import pytest
import requests

from aggregator.errors import ConfigError
from aggregator.settings import Settings
from aggregator.web.auth import FAILURE_BURST, SESSION_COOKIE, FailureLimiter
from tests.support.browser import TOKEN, Workbench

WRONG = "wrong-token-abcdefghijklmnop"


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_logout_revokes_the_cookie_and_its_csrf_token(bench: Workbench, base: str) -> None:
    browser = requests.Session()
    login = browser.post(f"{base}/admin/login", data={"token": TOKEN, "editor": "eve"}, timeout=10)
    assert login.status_code == 200
    cookie = browser.cookies.get(SESSION_COOKIE, path="/admin")
    assert cookie is not None
    csrf = _csrf(browser.get(f"{base}/admin/sources", timeout=10).text)
    assert (
        browser.post(
            f"{base}/admin/logout", data={"csrf": csrf}, timeout=10, allow_redirects=False
        ).status_code
        == 303
    )
    # A copy of the old cookie, as an attacker who stole it would replay it.
    stolen = {SESSION_COOKIE: cookie}
    page = requests.get(f"{base}/admin/sources", cookies=stolen, allow_redirects=False, timeout=10)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/admin/login")
    pause = requests.post(
        f"{base}/admin/sources/wire/pause",
        data={"csrf": csrf},
        cookies=stolen,
        allow_redirects=False,
        timeout=10,
    )
    assert pause.status_code == 401
    assert "enabled" not in (bench.config / "sources.toml").read_text(encoding="utf-8")


def test_failed_logins_are_limited_per_address_and_logged(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    answers = [
        requests.post(f"{base}/admin/login", data={"token": WRONG}, timeout=10)
        for _ in range(FAILURE_BURST + 1)
    ]
    assert [a.status_code for a in answers[:FAILURE_BURST]] == [401] * FAILURE_BURST
    limited = answers[-1]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    # Even the right token waits now: guessing gets no answer either way.
    assert (
        requests.post(f"{base}/admin/login", data={"token": TOKEN}, timeout=10).status_code == 429
    )
    for answer in answers:
        assert WRONG not in answer.text
    refusals = [r.getMessage() for r in caplog.records if "outcome=refused" in r.getMessage()]
    assert len(refusals) == FAILURE_BURST
    assert all("client=127.0.0.1" in line for line in refusals)


def test_wrong_bearer_tokens_are_limited_and_logged(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = f"{base}/api/sources/wire/pause"
    statuses = [
        requests.post(url, headers={"Authorization": f"Bearer {WRONG}"}, timeout=10).status_code
        for _ in range(FAILURE_BURST + 1)
    ]
    assert statuses == [401] * FAILURE_BURST + [429]
    right = requests.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert right.status_code == 429
    assert "Retry-After" in right.headers
    assert WRONG not in right.text
    lines = [r.getMessage() for r in caplog.records if "action=api-auth" in r.getMessage()]
    assert len(lines) == FAILURE_BURST
    assert all("client=127.0.0.1" in line for line in lines)


def test_the_bucket_refills_and_addresses_are_apart() -> None:
    now = [0.0]
    limiter = FailureLimiter(burst=2, refill=5.0, clock=lambda: now[0], max_addresses=2)
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == 5
    assert limiter.retry_after("b") is None
    now[0] = 5.0
    assert limiter.retry_after("a") is None
    # Bounded memory: a third address forgets the least recent one.
    limiter.failed("b")
    limiter.failed("c")
    assert limiter.retry_after("a") is None


@pytest.mark.parametrize(
    "token", ["aaaaaaaaaaaaaaaa", "abababababababab", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcd"]
)
def test_weak_tokens_are_refused_at_start_without_being_repeated(token: str) -> None:
    with pytest.raises(ConfigError, match="AGGREGATOR_ADMIN_TOKEN") as refused:
        Settings.from_env({"AGGREGATOR_ADMIN_TOKEN": token})
    assert token not in str(refused.value)
    assert "guess" in str(refused.value)


def test_random_tokens_pass() -> None:
    import secrets

    for _ in range(200):
        token = secrets.token_urlsafe(12)
        assert Settings.from_env({"AGGREGATOR_ADMIN_TOKEN": token}).admin_token == token
