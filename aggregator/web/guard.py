"""The HTTP connection guard: uvicorn's httptools protocol with the limits a public port needs.

It owns what happens before a request reaches the app: a deadline for the request line and
headers, caps on their bytes and count (431), and a cap on open connections that, when full,
drops the connection idle or waiting for headers the longest (a slowloris) to make room.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from aggregator.settings import Settings

log = logging.getLogger("aggregator.web.guard")

# File descriptors kept out of the connection cap: the database, archive files, log files,
# worker-process pipes and the listening socket itself need some too.
RESERVED_FDS: Final = 64
# Fewer descriptors than this left for connections is not a usable server.
MIN_CONNECTIONS: Final = 16


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_connections: int = 4096


def connection_cap(wanted: int, soft_nofile: int | None = None) -> int:
    """``wanted`` connections, lowered to what the open-file limit leaves after the reserve."""
    if soft_nofile is None:
        soft_nofile, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_nofile == resource.RLIM_INFINITY:
        return wanted
    return max(MIN_CONNECTIONS, min(wanted, soft_nofile - RESERVED_FDS))


@dataclass
class GuardState:
    """Shared by every connection of one server."""

    limits: Limits
    cap: int
    # Connections with no request under way, oldest first: the ones to drop at the cap.
    idle: OrderedDict[GuardedProtocol, None] = field(default_factory=OrderedDict)
    open: int = 0
    dropped: int = 0


_431: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
    b"charset=utf-8\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_408: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


class GuardedProtocol(HttpToolsProtocol):
    guard: GuardState

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = False
        self._header_bytes = 0
        self._header_count = 0
        self._counted = False
        # Set once we answered 408/431 ourselves: the rest of the connection is ignored.
        self._refused = False

    # -- connections -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        if guard.open >= guard.cap and not self._evict_oldest_idle():
            # Every connection is busy with a request: refuse this one rather than run out
            # of descriptors.
            guard.dropped += 1
            transport.abort()
            return
        guard.open += 1
        self._counted = True
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self.guard.open -= 1
        self.guard.idle.pop(self, None)
        self._stop_header_timer()
        super().connection_lost(exc)

    def _evict_oldest_idle(self) -> bool:
        idle = self.guard.idle
        while idle:
            oldest, _ = idle.popitem(last=False)
            if oldest.transport is not None and not oldest.transport.is_closing():
                self.guard.dropped += 1
                log.debug("action=evict reason=connection-cap client=%s", oldest.client)
                oldest.transport.abort()
                return True
        return False

    # -- the header phase ------------------------------------------------------------------

    def _await_headers(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self.guard.idle[self] = None
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.guard.limits.header_timeout, self._header_timeout
            )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            # An idle keep-alive connection is closed by uvicorn's own keep-alive timeout;
            # this one started a request (or connected) and did not finish its headers.
            self._close_with(
                _408,
                f"the request headers did not arrive within {self.guard.limits.header_timeout:g} s",
            )

    def _close_with(self, template: bytes, message: str) -> None:
        body = message.encode("ascii")
        self.transport.write(template % (len(body), body))
        self.transport.close()
        self._refused = True
        self.guard.idle.pop(self, None)
        self._awaiting_headers = False
        self._stop_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Counted after parsing, so a chunk carrying the end of the headers and some body
        # is not mistaken for big headers; at most one read beyond the limit is buffered.
        limit = self.guard.limits.max_header_bytes
        if self._awaiting_headers and self._header_bytes > limit and not self._refused:
            self._close_with(_431, f"request line and headers exceed {limit} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # Still evictable until its headers are complete: a slowloris sends a few bytes.
        if not self._awaiting_headers:
            self._await_headers()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        if self._header_count > self.guard.limits.max_headers:
            self._close_with(_431, f"more than {self.guard.limits.max_headers} headers")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_headers = False
        self._stop_header_timer()
        self.guard.idle.pop(self, None)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self.guard.idle[self] = None

    def timeout_keep_alive_handler(self) -> None:
        self.guard.idle.pop(self, None)
        super().timeout_keep_alive_handler()


def guarded_protocol(limits: Limits, cap: int | None = None) -> type[GuardedProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` whose connections share one state."""
    state = GuardState(
        limits=limits, cap=cap if cap is not None else connection_cap(limits.max_connections)
    )

    class Protocol(GuardedProtocol):
        guard = state

    return Protocol


def limits_from(settings: Settings) -> Limits:
    return Limits(
        header_timeout=settings.header_timeout,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        max_connections=settings.max_connections,
    )


def server_config(app: Any, settings: Settings) -> Config:
    """The uvicorn configuration of ``aggregator run``: the guarded protocol, a short
    keep-alive, no access log (the app logs what matters)."""
    limits = limits_from(settings)
    return Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(limits),
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,
        # The backlog holds connections the cap has not taken yet; the kernel
        # bounds it by net.core.somaxconn anyway.
        backlog=2048,
    )
