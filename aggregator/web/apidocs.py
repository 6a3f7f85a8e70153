"""The browsable API documentation at /api/docs, from the Swagger UI 5 files bundled in the
``fastapi-offline`` package (their one home; Swagger UI 5 reads the OpenAPI 3.1 schema FastAPI
writes, which 4.x cannot): no CDN, so it works offline and editors' browsers load no
third-party script. Our page and its start-up script are served from here,
under a policy that allows scripts from this origin only.
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Final

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

DOCS_PATH: Final = "/api/docs"
ASSETS_PATH: Final = f"{DOCS_PATH}/assets"
# Only what the page uses: the bundle also holds source maps and other builds.
ASSETS: Final = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
START_NAME: Final = "start.js"
# Swagger UI draws with inline styles and data: images and fetches the schema (and "try it
# out" requests) from here; scripts come only from this origin: no inline script at all.
DOCS_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The bundle's files change only with the package version, which changes their ETag.
ASSET_CACHE_CONTROL: Final = "public, max-age=86400"


def _start_script(openapi_url: str) -> bytes:
    # The bundle's own initializer points at the petstore example, so the page uses this one.
    return (
        "window.addEventListener('load', function () {\n"
        f"  window.ui = SwaggerUIBundle({{url: {openapi_url!r}, dom_id: '#swagger-ui',\n"
        "    deepLinking: true, presets: [SwaggerUIBundle.presets.apis]});\n"
        "});\n"
    ).encode()


def _page(title: str) -> bytes:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{html.escape(title)} API</title>\n"
        f'<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">\n'
        f'<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon.png">\n'
        '</head><body><div id="swagger-ui"></div>\n'
        f'<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{DOCS_PATH}/{START_NAME}"></script>\n'
        "</body></html>\n"
    ).encode()


def _answer(
    body: bytes, media_type: str, cache_control: str, policy: str | None = None
) -> Response:
    headers = {
        "ETag": f'"{hashlib.sha256(body).hexdigest()[:32]}"',
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
    }
    if policy:
        headers["Content-Security-Policy"] = policy
    return Response(body, media_type=media_type, headers=headers)


def include_api_docs(
    app: FastAPI, *, title: str, openapi_url: str, assets: Path | None = None
) -> None:
    """Serve the docs page, its start-up script and the bundle's assets on ``app``."""
    page = _page(title)
    start = _start_script(openapi_url)
    folder = assets if assets is not None else _bundled_assets()
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"API docs assets missing from {folder}: {', '.join(missing)}")

    # Read when first asked for, then kept: the bundle is 1.5 MB that a service whose docs
    # nobody opens need not hold.
    @cache
    def read(name: str) -> bytes:
        return (folder / name).read_bytes()

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> Response:
        return _answer(page, "text/html; charset=utf-8", "no-cache", DOCS_POLICY)

    @app.get(f"{DOCS_PATH}/{START_NAME}", include_in_schema=False)
    def start_script() -> Response:
        return _answer(start, "text/javascript; charset=utf-8", "no-cache")

    @app.get(f"{ASSETS_PATH}/{{name}}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, f"no API docs asset {name!r}")
        return _answer(read(name), ASSETS[name], ASSET_CACHE_CONTROL)


def _bundled_assets() -> Path:
    # Only the package's static files are used, not its FastAPI subclass.
    return Path(str(resources.files("fastapi_offline") / "static"))
