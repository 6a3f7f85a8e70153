"""/api/docs works offline: the page and every script, style and image it uses come from this
server (Swagger UI 5 from the fastapi-offline package), under a policy that allows no
other origin, and the admin pages keep their no-script policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from aggregator.store import Store
from aggregator.web import create_app
from aggregator.web.admin import ADMIN_POLICY
from tests.integration.test_outputs import Newsroom, outputs_for
from tests.support.browser import chromium, require_browser
from tests.support.webserver import serve_app


@pytest.fixture
def base(store: Store) -> Iterator[str]:
    Newsroom(store).story("one")
    with serve_app(
        create_app(store=store, outputs=outputs_for(store), admin_token="t0ken-for-tests")
    ) as url:
        yield url


def test_docs_page_uses_only_local_assets(base: str) -> None:
    page = requests.get(f"{base}/api/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    references = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert len(references) >= 3
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references)
    assert "<script>" not in page.text  # no inline script: the policy would refuse it
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "http" not in policy
    assert "*" not in policy
    for ref in references:
        asset = requests.get(base + ref, timeout=10)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    start = requests.get(f"{base}/api/docs/start.js", timeout=10).text
    assert "'/api/openapi.json'" in start
    bundle = requests.get(f"{base}/api/docs/assets/swagger-ui-bundle.js", timeout=10)
    assert bundle.headers["Content-Type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text
    assert requests.get(f"{base}/api/openapi.json", timeout=10).json()["paths"]


def test_only_the_pages_assets_are_served(base: str) -> None:
    for name in ("swagger-ui-bundle.js.map", "index.html", "..%2F__init__.py"):
        assert requests.get(f"{base}/api/docs/assets/{name}", timeout=10).status_code == 404


def test_admin_policy_is_unchanged(base: str) -> None:
    admin = requests.get(f"{base}/admin/", timeout=10, allow_redirects=False)
    assert admin.headers["Content-Security-Policy"] == ADMIN_POLICY
    assert "script-src" not in ADMIN_POLICY


@pytest.mark.slow
def test_the_docs_page_renders_the_schema_in_a_browser(base: str, tmp_path: Path) -> None:
    # The schema is OpenAPI 3.1; a Swagger UI that cannot read it shows an error page instead.
    require_browser()
    with chromium(tmp_path / "profile") as browser:
        browser.get(f"{base}/api/docs")
        WebDriverWait(browser, 30).until(
            lambda driver: (
                driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
                or "Unable to render" in driver.page_source
            )
        )
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert "Unable to render" not in browser.page_source
    assert "/api/categories" in paths
    assert "/api/stories/{story_id}" in paths
