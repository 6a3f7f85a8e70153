"""Run an ASGI app under a real uvicorn server on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import uvicorn

STARTUP_SECONDS = 10


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, log_config=None)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()


def wait_until_serving(process: subprocess.Popen[str], base: str, seconds: float) -> None:
    """Wait for ``aggregator run`` at ``base`` to answer /healthz; fail with its output if it
    exits, or when ``seconds`` pass. A read timeout counts as not yet (a loaded machine)."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()[0]
        try:
            requests.get(f"{base}/healthz", timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):
            assert time.monotonic() < deadline, "aggregator run did not start"
            time.sleep(0.1)
