"""A webhook receiver on 127.0.0.1 for the delivery tests: it checks each request's signature,
keeps what it accepted by idempotency key, and follows a script (answer 500, answer too late,
or accept) request by request. It can be stopped and started again on the same port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aggregator.delivery.signing import SIGNATURE_HEADER, verify

OK = "ok"
FAIL = "fail"
SLOW = "slow"


@dataclass
class Received:
    key: str
    kind: str
    body: dict[str, Any]
    signed: bool
    answer: str


@dataclass
class Receiver:
    """``script(n)`` says what to do with the n-th request (from 0); ``slow_seconds`` is how
    long a slow answer waits before its 200 (longer than the sender's timeout)."""

    secret: str
    script: Callable[[int], str] = lambda _n: OK
    slow_seconds: float = 3.0
    # How long an accepted request takes, so a stream of them lasts long enough to interrupt.
    ok_seconds: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signed = verify(
                    receiver.secret,
                    self.headers.get(SIGNATURE_HEADER, ""),
                    body,
                    now=int(time.time()),
                )
                with receiver._lock:
                    what = receiver.script(len(receiver.requests))
                    document = json.loads(body)
                    receiver.requests.append(
                        Received(
                            key=self.headers.get("Idempotency-Key", ""),
                            kind=self.headers.get("Aggregator-Event", ""),
                            body=document,
                            signed=signed,
                            answer=what,
                        )
                    )
                time.sleep(receiver.slow_seconds if what == SLOW else receiver.ok_seconds)
                status = 500 if what == FAIL or not signed else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> dict[str, int]:
        """How many times each event was accepted (a slow answer counts: the receiver did
        the work even though the sender stopped waiting)."""
        counts: dict[str, int] = {}
        with self._lock:
            for received in self.requests:
                if received.signed and received.answer in (OK, SLOW):
                    counts[received.key] = counts.get(received.key, 0) + 1
        return counts
