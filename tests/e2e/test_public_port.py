"""The public port of ``aggregator run`` under abuse: half-open connections (slowloris), huge
and numerous headers. The service runs as deployed, in a child process with a low open-file
limit, so exhausting descriptors is cheap to try and bounded in count.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.feeds import cli_env, write_config
from tests.support.webserver import wait_until_serving

STARTUP_SECONDS = 60
# The child's descriptor limit, and more half-open connections than it has descriptors.
CHILD_NOFILE = 256
HALF_OPEN = 400

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ``aggregator run`` after lowering its own descriptor limit (no preexec_fn: unsafe with threads).
LOW_NOFILE_RUN = (
    "import resource, runpy, sys\n"
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({CHILD_NOFILE}, {CHILD_NOFILE}))\n"
    "sys.argv[0] = 'aggregator'\n"
    "runpy.run_module('aggregator', run_name='__main__')\n"
)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Running:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.base = f"http://127.0.0.1:{port}"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Running]:
    config = write_config(
        tmp_path / "config",
        # Never due within the test: the port is all that is exercised.
        '[[source]]\nid = "news"\nurl = "http://127.0.0.1:9/news.xml"\n'
        'categories = ["all"]\ninterval = "24h"\n',
        '[[category]]\nid = "all"\ntitle = "All"\n',
    )
    port = _free_port()
    env = cli_env(
        AGGREGATOR_PORT=str(port),
        AGGREGATOR_CLUSTERING="exact",
        AGGREGATOR_POLL_PROCESSES="0",
        AGGREGATOR_LOG_LEVEL="WARNING",
        AGGREGATOR_ARCHIVE_DIR=str(tmp_path / "archives"),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LOW_NOFILE_RUN,
            "run",
            "--config",
            str(config),
            "--database",
            f"sqlite:///{tmp_path / 'store.db'}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Running(process, port)
    try:
        wait_until_serving(process, running.base, STARTUP_SECONDS)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _half_open(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and never finish its headers."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Slow: ")
        sockets.append(sock)
    return sockets


def test_slowloris_does_not_take_the_service_offline(service: Running) -> None:
    sockets = _half_open(service.port, HALF_OPEN)
    try:
        answers: list[int | str] = []
        for _ in range(3):
            try:
                answers.append(requests.get(f"{service.base}/healthz", timeout=5).status_code)
            except requests.RequestException as exc:
                answers.append(repr(exc))
        assert answers == [200, 200, 200]
        assert service.process.poll() is None
    finally:
        for sock in sockets:
            sock.close()


def _send_huge_headers(port: int, megabytes: int) -> bytes:
    """Stream ``megabytes`` of header lines; what the server answered (b"" if it closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        try:
            for _ in range(megabytes * 1024):
                sock.sendall(line)
            sock.sendall(b"\r\n")
        except OSError:
            pass  # refused mid-way: the server closed the connection
        try:
            return sock.recv(4096)
        except OSError:
            return b""
    finally:
        sock.close()


def test_huge_headers_are_refused_without_growing_the_process(service: Running) -> None:
    before = _rss_kib(service.process.pid)
    answers = [_send_huge_headers(service.port, 8) for _ in range(2)]
    grown_mib = (_rss_kib(service.process.pid) - before) / 1024
    for answer in answers:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
    # 16 MiB of headers were sent; buffering them would grow the process by at least that.
    assert grown_mib < 8, f"grew by {grown_mib:.1f} MiB"
    assert requests.get(f"{service.base}/healthz", timeout=5).status_code == 200


def test_too_many_headers_get_431(service: Running) -> None:
    headers = {f"X-H{i}": "v" for i in range(150)}
    response = requests.get(f"{service.base}/healthz", headers=headers, timeout=5)
    assert response.status_code == 431
    assert "headers" in response.text
