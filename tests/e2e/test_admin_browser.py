"""The editors' pages in a real browser (issue 6, acceptance 1): headless Debian Chromium,
driven by selenium through Debian's chromedriver, against the real ``aggregator run`` over a
store that ``aggregator poll --all`` filled from a loopback feed server.

An editor logs in, pauses a source (the page says so and sources.toml changes), merges two
stories and undoes it, edits a rule and sees the dry run before saving, and finds a hostile
headline shown as text, never run. Skipped outside CI without chromium/chromedriver; in CI a
missing browser fails (.ci/run installs both).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from aggregator.demo.feedserver import FeedServer
from tests.support.browser import (
    BROWSER_WAIT_SECONDS,
    HOSTILE_TITLE,
    TOKEN,
    chromium,
    require_browser,
    write_newsroom,
)
from tests.support.feeds import aggregator, cli_env
from tests.support.webserver import wait_until_serving

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    base: str
    config: Path
    stories: dict[str, int]


@pytest.fixture
def service(feed_server: FeedServer, tmp_path: Path) -> Iterator[Running]:
    require_browser()
    config = write_newsroom(feed_server, tmp_path / "config")
    database = f"sqlite:///{tmp_path / 'store.db'}"
    env = cli_env(
        AGGREGATOR_CLUSTERING="exact", AGGREGATOR_POLL_PROCESSES="0", AGGREGATOR_HOST_DELAY="0"
    )
    aggregator("poll", "--all", "--config", str(config), "--database", database, env=env)
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator",
            "run",
            "--config",
            str(config),
            "--database",
            database,
        ],
        env={
            **env,
            "AGGREGATOR_PORT": str(port),
            "AGGREGATOR_ADMIN_TOKEN": TOKEN,
            "AGGREGATOR_TICK_SECONDS": "3600",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, STARTUP_SECONDS)
        stories = requests.get(f"{base}/api/categories/news/stories", timeout=10).json()
        yield Running(base, config, {s["title"]: s["id"] for s in stories})
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    require_browser()
    with chromium(tmp_path / "profile") as driver:
        yield driver


def _gone(element: WebElement) -> Callable[[WebDriver], bool]:
    """True once `element` left the document (the next page replaced it).

    Chrome sometimes answers a query on a node of the page being torn down with
    "Node with given id does not belong to the document" instead of a stale
    reference; both mean the old page is gone.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def left(_: WebDriver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            return "does not belong to the document" in str(error)
        return False

    return left


class Editor:
    """What an editor does in the browser: open pages, fill forms, press buttons."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base = base
        self.wait = WebDriverWait(driver, BROWSER_WAIT_SECONDS)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> WebElement:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def press(self, button: WebElement) -> None:
        """Press a form's button and wait for the page it leads to."""
        html = self.find("html")
        button.click()
        self.wait.until(_gone(html))

    def flash(self) -> str:
        return self.find("p.flash").text

    def entries(self) -> int:
        from selenium.webdriver.common.by import By

        return len(self.driver.find_elements(By.CSS_SELECTOR, "tr[id^='entry-']"))


def test_an_editor_works_in_a_real_browser(service: Running, browser: WebDriver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    editor = Editor(browser, service.base)
    sources_toml = service.config / "sources.toml"

    # Log in: any admin page sends a stranger to the login form first.
    editor.open("/admin/sources")
    assert browser.current_url.startswith(f"{service.base}/admin/login")
    editor.find("input[name=token]").send_keys(TOKEN)
    editor.find("input[name=editor]").send_keys("Mia")
    editor.press(editor.find("form button"))
    assert browser.current_url == f"{service.base}/admin/sources"
    assert "signed in as Mia" in editor.find("nav").text

    # Pause a source: the page says so, the table shows it, and the file changed.
    assert editor.find("#source-wire .state").text == "active"
    editor.press(editor.find("form[aria-label='pause wire'] button"))
    assert editor.flash() == "Paused source 'wire'"
    assert editor.find("#source-wire .state").text == "paused"
    assert "enabled = false" in sources_toml.read_text(encoding="utf-8")

    # Merge two stories from the first one's page, then undo it.
    rail = service.stories["Rail workers announce a national strike"]
    ferry = service.stories["Ferry runs aground off Paros"]
    editor.open(f"/admin/stories/{rail}")
    assert editor.entries() == 1
    editor.find("input[name=other_story_id]").send_keys(str(ferry))
    editor.find("form[aria-label=merge] input[name=note]").send_keys("one event")
    editor.press(editor.find("form[aria-label=merge] button"))
    kept = min(rail, ferry)
    assert browser.current_url == f"{service.base}/admin/stories/{kept}"
    assert editor.flash().startswith(f"Merged story #{max(rail, ferry)} into #{kept}")
    assert editor.entries() == 2
    undo = editor.find("form[aria-label^='undo correction'] button")
    editor.press(undo)
    assert editor.flash().startswith("Undid correction #")
    assert editor.entries() == 1

    # Edit a rule and see the dry run before saving.
    editor.open("/admin/categories/tech")
    include = editor.find("textarea[name=include]")
    assert include.get_attribute("value") == "robot"
    include.clear()
    include.send_keys("ferry")
    editor.press(editor.find("button[value=dry-run]"))
    result = editor.find("#dry-run").text
    added, removed = result.split("Would be removed", 1)
    assert "Ferry runs aground off Paros" in added
    assert "Robot wins the world chess final" in removed
    categories_toml = (service.config / "categories.toml").read_text(encoding="utf-8")
    assert "ferry" not in categories_toml  # a dry run saves nothing
    assert editor.find("textarea[name=include]").get_attribute("value") == "ferry"
    editor.press(editor.find("button[value=save]"))
    assert editor.flash() == "Saved the rules of 'tech': 1 include, 0 exclude"
    assert '"ferry"' in (service.config / "categories.toml").read_text(encoding="utf-8")

    # A hostile headline is text on the page; nothing of it runs.
    editor.open(f"/admin/stories/{service.stories[HOSTILE_TITLE]}")
    assert HOSTILE_TITLE in editor.find("h1").text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)

    # Log out: the session is gone from this browser.
    editor.open("/admin/")
    editor.press(editor.find("nav form button"))
    editor.open("/admin/")
    assert browser.current_url.startswith(f"{service.base}/admin/login")
