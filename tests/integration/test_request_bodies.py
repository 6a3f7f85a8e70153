"""Hostile request bodies (issue 16, item 11): JSON text that is not Unicode is a clear 400, not
a 500, and changes nothing; a body over its route's limit is refused while it arrives, so a
huge one neither grows the process nor reaches the route.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.browser import TOKEN, Workbench

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
LONE = b'"\\ud800"'


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/categories/tech/dry-run", b'{"include": [%s]}' % LONE),
        ("PUT", "/api/categories/tech/rules", b'{"include": [%s]}' % LONE),
        ("POST", "/api/sources", b'{"url": %s, "categories": ["tech"]}' % LONE),
        ("POST", "/api/stories/1/hide", b'{"note": %s}' % LONE),
        ("POST", "/api/stories/1/hide", b"{%s: 1}" % LONE),
    ],
)
def test_lone_surrogate_is_a_clear_400_and_changes_nothing(
    bench: Workbench, base: str, method: str, path: str, body: bytes
) -> None:
    files = {p.name: p.read_bytes() for p in bench.config.iterdir()}
    corrections = requests.get(f"{base}/api/corrections", headers=AUTH, timeout=10).json()
    response = requests.request(method, base + path, data=body, headers=AUTH, timeout=10)
    assert response.status_code == 400, response.text
    assert "surrogate" in response.json()["detail"]
    assert {p.name: p.read_bytes() for p in bench.config.iterdir()} == files
    assert requests.get(f"{base}/api/corrections", headers=AUTH, timeout=10).json() == corrections


def test_a_surrogate_pair_is_ordinary_text(base: str) -> None:
    body = b'{"include": ["\\ud83d\\ude00"], "since": "7d"}'
    response = requests.post(
        f"{base}/api/categories/tech/dry-run", data=body, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text


def test_declared_oversized_body_is_refused_before_reading(base: str) -> None:
    # 300 MB announced, a few kilobytes sent: the answer comes without the rest.
    host, port = urlsplit(base).hostname, urlsplit(base).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/categories/tech/dry-run HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n" + b"[" * 4096
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"1048576 bytes" in answer


@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream"])
def test_streamed_oversized_body_is_cut_off_without_growing_memory(
    base: str, content_type: str
) -> None:
    """Chunked, so no length is declared: counted while it arrives."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    chunk = b"a" * 65536
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    before = _rss_kib()
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/categories/tech/dry-run HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Type: " + content_type.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(framed)
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection after answering
        try:
            answer = sock.recv(65536)
        except OSError:
            answer = b""
    grown_mib = (_rss_kib() - before) / 1024
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert grown_mib < 16, f"grew by {grown_mib:.1f} MiB after {sent >> 20} MiB sent"


def _login_form_status(base: str, token_bytes: int) -> int:
    """The status of a login form whose token is ``token_bytes`` long."""
    return requests.post(
        f"{base}/admin/login",
        data=b"token=" + b"a" * token_bytes,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    ).status_code


def test_admin_forms_and_public_routes_have_their_own_limits(base: str) -> None:
    assert _login_form_status(base, 300_000) == 413
    assert _login_form_status(base, 100_000) == 401
    assert requests.post(f"{base}/readyz", data=b"a" * 100_000, timeout=10).status_code == 413
