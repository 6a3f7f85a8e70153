"""Editors with their own accounts in a real browser (issue 18, acceptance 3): headless Debian
Chromium against the real ``aggregator run`` over a store that ``aggregator poll --all`` filled
from a loopback feed server, accounts made with ``aggregator editors add``, on SQLite and
PostgreSQL.

An editor logs in with their own token, finds a story by search and merges it from the
results, applies a rule change to the last 7 days after its dry run, and finds both in the
audit log under their name; a viewer's presses of the same buttons are refused (403 naming the
role) and change nothing.
"""

from __future__ import annotations

import html
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from aggregator.demo.feedserver import FeedServer
from aggregator.web.auth import CSRF_FIELD, SESSION_COOKIE
from tests.e2e.test_admin_browser import STARTUP_SECONDS, Editor, _free_port
from tests.support.browser import chromium, require_browser, write_newsroom
from tests.support.feeds import aggregator, cli_env
from tests.support.webserver import wait_until_serving

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

RAIL = "Rail workers announce a national strike"
FERRY = "Ferry runs aground off Paros"
ROBOT_CHESS = "Robot wins the world chess final"


@dataclass
class Newsroom:
    base: str
    config: Path
    shots: Path
    tokens: dict[str, str]

    def stories(self, category: str) -> dict[str, int]:
        """Title → id of the category's stories, as the public API lists them."""
        answer = requests.get(f"{self.base}/api/categories/{category}/stories", timeout=10)
        answer.raise_for_status()
        return {s["title"]: s["id"] for s in answer.json()}

    def audit(self) -> list[dict[str, object]]:
        answer = requests.get(
            f"{self.base}/api/audit",
            timeout=10,
            headers={"Authorization": f"Bearer {self.tokens['mia']}"},
        )
        answer.raise_for_status()
        rows: list[dict[str, object]] = answer.json()
        return rows


@pytest.fixture
def newsroom(feed_server: FeedServer, tmp_path: Path, database_url: str) -> Iterator[Newsroom]:
    """``aggregator run`` with no shared token: only the editors' own accounts may edit."""
    require_browser()
    config = write_newsroom(feed_server, tmp_path / "config")
    env = cli_env(
        AGGREGATOR_CLUSTERING="exact", AGGREGATOR_POLL_PROCESSES="0", AGGREGATOR_HOST_DELAY="0"
    )
    where = ["--config", str(config), "--database", database_url]
    aggregator("poll", "--all", *where, env=env)
    tokens = {
        name: aggregator("editors", "add", name, "--role", role, *where, env=env).stdout.strip()
        for name, role in (("mia", "editor"), ("vic", "viewer"))
    }
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run", *where],
        env={**env, "AGGREGATOR_PORT": str(port), "AGGREGATOR_TICK_SECONDS": "3600"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, STARTUP_SECONDS)
        yield Newsroom(base, config, tmp_path / "screenshots", tokens)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    require_browser()
    with chromium(tmp_path / "profile") as driver:
        yield driver


def _shoot(browser: WebDriver, room: Newsroom, name: str) -> None:
    room.shots.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(room.shots / f"{name}.png"))


def _log_in(editor: Editor, room: Newsroom, name: str) -> None:
    editor.driver.delete_all_cookies()
    editor.open("/admin/stories")
    assert editor.driver.current_url.startswith(f"{room.base}/admin/login")
    editor.find("input[name=token]").send_keys(room.tokens[name])
    editor.press(editor.find("form button"))
    assert editor.driver.current_url == f"{room.base}/admin/stories"


def _search(editor: Editor, words: str) -> None:
    field = editor.find("form[role=search] input[name=q]")
    field.clear()
    field.send_keys(words)
    editor.press(editor.find("form[role=search] button"))


def test_an_editor_searches_merges_applies_and_audits(
    newsroom: Newsroom, browser: WebDriver
) -> None:
    room = newsroom
    editor = Editor(browser, room.base)
    news = room.stories("news")
    rail, ferry = news[RAIL], news[FERRY]
    _log_in(editor, room, "mia")
    # An account's name is its own: nothing on the form lets Mia sign as someone else.
    assert "signed in as mia (editor)" in editor.find("nav").text

    # Search from the story list: the ferry entry is found with the story it is in.
    _search(editor, "aground Paros")
    found = editor.find("#search-results").text
    assert FERRY in found
    assert f"#{ferry}" in found
    assert RAIL not in found
    _shoot(browser, room, "01-search")

    # From the rail story's page, find the ferry story and merge it from the results.
    editor.open(f"/admin/stories/{rail}")
    assert editor.entries() == 1
    _search(editor, "ferry")
    _shoot(browser, room, "02-found-to-merge")
    editor.press(editor.find(f"form[aria-label='merge story {ferry}'] button"))
    kept, gone = min(rail, ferry), max(rail, ferry)
    assert browser.current_url == f"{room.base}/admin/stories/{kept}"
    assert editor.flash().startswith(f"Merged story #{gone} into #{kept} (correction #")
    assert editor.entries() == 2
    _shoot(browser, room, "03-merged")
    after = room.stories("news").values()
    assert kept in after
    assert gone not in after

    # Change the tech rules, see the dry run, save, then apply them to the last 7 days.
    assert set(room.stories("tech")) == {ROBOT_CHESS}
    editor.open("/admin/categories/tech")
    include = editor.find("textarea[name=include]")
    include.clear()
    include.send_keys("ferry")
    editor.press(editor.find("button[value=dry-run]"))
    added, removed = editor.find("#dry-run").text.split("Would be removed", 1)
    assert FERRY in added
    assert ROBOT_CHESS in removed
    _shoot(browser, room, "04-dry-run")
    editor.press(editor.find("button[value=save]"))
    assert editor.flash() == "Saved the rules of 'tech': 1 include, 0 exclude"
    days = editor.find("form[aria-label='apply rules'] input[name=days]")
    assert days.get_attribute("value") == "7"
    editor.find("form[aria-label='apply rules'] input[name=note]").send_keys("ferries are tech")
    editor.press(editor.find("form[aria-label='apply rules'] button"))
    assert editor.flash().startswith(
        "Applied the rules of 'tech' to the last 7 days: 1 added, 1 removed (correction #"
    )
    _shoot(browser, room, "05-applied")
    assert set(room.stories("tech").values()) == {kept}

    # Both edits are in the audit log, under Mia's own name.
    editor.open("/admin/audit")
    rows = [row.text for row in browser.find_elements("css selector", "tr[id^='audit-']")]
    assert any("mia" in r and f"correction merge: story #{rail}" in r for r in rows), rows
    assert any(
        "mia" in r and "rules apply: tech" in r and "days: 7" in r and "note: ferries are tech" in r
        for r in rows
    ), rows
    # The rules' change reads as words, not as Python reprs of the stored detail.
    assert any(
        "mia" in r
        and "rules save: tech" in r
        and "exclude: no change; include: added ferry, removed robot" in r
        for r in rows
    ), rows
    _shoot(browser, room, "06-audit")
    by_mia = {(r["kind"], r["action"]) for r in room.audit() if r["editor"] == "mia"}
    assert {("correction", "merge"), ("rules", "save"), ("rules", "apply")} <= by_mia


def test_a_viewer_reads_but_cannot_merge_or_apply(newsroom: Newsroom, browser: WebDriver) -> None:
    room = newsroom
    editor = Editor(browser, room.base)
    news = room.stories("news")
    rail, ferry = news[RAIL], news[FERRY]
    audited = len(room.audit())
    _log_in(editor, room, "vic")
    assert "signed in as vic (viewer)" in editor.find("nav").text
    assert "viewer role" in editor.find("#read-only").text

    # A viewer may search; pressing a merge button is refused with the role named.
    editor.open(f"/admin/stories/{rail}")
    _search(editor, "ferry")
    assert FERRY in editor.find("#search-results").text
    _shoot(browser, room, "11-viewer-found")
    merge = f"form[aria-label='merge story {ferry}']"
    refused = _posted_by_hand(browser, room, f"/admin/stories/{rail}/merge", merge)
    _press_refused(editor, room, merge + " button", "12-viewer-merge")
    assert refused.status_code == 403
    assert "'vic' has the viewer role" in html.unescape(refused.text)
    editor.open(f"/admin/stories/{rail}")
    assert editor.entries() == 1
    assert room.stories("news")[FERRY] == ferry

    # The category page: neither the dry run nor Apply goes through for a viewer.
    editor.open("/admin/categories/tech")
    apply = "form[aria-label='apply rules']"
    refused = _posted_by_hand(browser, room, "/admin/categories/tech", apply)
    assert refused.status_code == 403
    _press_refused(editor, room, apply + " button", "13-viewer-apply")
    assert set(room.stories("tech")) == {ROBOT_CHESS}

    # The audit log is theirs to read, and none of the refused presses is in it.
    editor.open("/admin/audit")
    assert "viewer" not in browser.find_element("css selector", "h1").text
    assert len(room.audit()) == audited
    assert all(r["editor"] != "vic" for r in room.audit())


def _press_refused(editor: Editor, room: Newsroom, css: str, shot: str) -> None:
    """Press the button in the browser: the answer is the refusal page naming the role."""
    editor.press(editor.find(css))
    assert editor.find("h1").text == "Not allowed"
    assert "'vic' has the viewer role, which cannot do this: it needs the editor role" in (
        editor.find("body").text
    )
    _shoot(editor.driver, room, shot)
    # The refusal is no dead end: a link leads back into the pages, still signed in.
    editor.press(editor.find("#back a"))
    assert editor.driver.current_url == f"{room.base}/admin/"
    assert "signed in as vic (viewer)" in editor.find("nav").text


def _posted_by_hand(
    browser: WebDriver, room: Newsroom, action: str, form: str
) -> requests.Response:
    """The same form posted with the browser's session cookie, to read the status code."""
    from selenium.webdriver.common.by import By

    fields = {
        f.get_attribute("name") or "": f.get_attribute("value") or ""
        for f in browser.find_elements(By.CSS_SELECTOR, f"{form} input")
    }
    assert fields.get(CSRF_FIELD)
    cookie = browser.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return requests.post(
        room.base + action,
        data=fields,
        timeout=10,
        allow_redirects=False,
        cookies={SESSION_COOKIE: cookie["value"]},
    )
