"""The benchmark's loopback feed host, run in a process of its own.

Serves the synthetic feeds of ``synthfeeds`` on 127.0.0.1 with ETag and Last-Modified, answering
conditional requests with 304. It runs in a separate process so its CPU time is measured apart
from the polling process (``resource.getrusage`` in the host), and so it does not take the GIL
from the client under test.

Two implementations, chosen with ``kind``:

- ``asyncio`` (default): a minimal HTTP/1.1 keep-alive server on asyncio streams, each answer a
  pre-built byte string. It costs a fraction of what the pollers cost per request, so the host is
  not what bounds the figures (the benchmark prints the host's CPU seconds per phase to show it).
- ``stdlib``: the project's own ``aggregator.demo.feedserver.FeedServer`` (http.server, a thread
  per connection), for comparison.

Feeds are spread over ``hosts`` loopback addresses (127.0.x.y, all of 127/8 is loopback on
Linux), because a poller that is polite per host (at most N requests at a time and a minimum
delay per host, as ours is) would otherwise measure its own politeness delay: real deployments
poll thousands of hosts, not one.

Optional faults, each on a deterministic subset of feeds: a latency added to every answer,
slow feeds (a longer delay), and feeds that answer 500.

The parent talks to the host through ``HostProcess``: ``mutate`` (5% of feeds get a new entry,
hence a new ETag and a later Last-Modified), ``reset`` (every feed back to its original bytes),
``validators`` (off: no ETag/Last-Modified sent and conditional headers ignored, so every answer
is a 200 with the same bytes), ``stats`` (CPU seconds, peak RSS and answers by status).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import resource
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from hashlib import sha1
from typing import Any

from synthfeeds import changed_indexes, feed_path, make_feed

HOST = "127.0.0.1"
KINDS = ("asyncio", "stdlib")
# Loopback addresses one host process can listen on (127.0.1.1 … 127.0.40.250).
MAX_ADDRESSES = 10_000
# A keep-alive connection idle for this long is closed (asyncio kind).
IDLE_SECONDS = 30.0
_REASONS = {200: b"OK", 304: b"Not Modified", 404: b"Not Found", 500: b"Internal Server Error"}


@dataclass(frozen=True)
class HostOptions:
    feeds: int
    seed: int = 1
    kind: str = "asyncio"
    # Distinct loopback addresses (hosts) the feeds are spread over, feed i on host i % hosts.
    hosts: int = 1
    latency: float = 0.0
    slow_fraction: float = 0.0
    slow_seconds: float = 5.0
    error_fraction: float = 0.0


@dataclass
class _Doc:
    """One feed as served: its bytes, validators and the pre-built answers."""

    body: bytes
    content_type: str
    etag: str
    last_modified: str
    modified_at: datetime
    revision: int
    full: bytes = b""
    bare: bytes = b""
    not_modified: bytes = b""

    def __post_init__(self) -> None:
        common = (
            f"Content-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
        ).encode()
        validators = f"ETag: {self.etag}\r\nLast-Modified: {self.last_modified}\r\n".encode()
        self.full = b"HTTP/1.1 200 OK\r\n" + common + validators + b"\r\n" + self.body
        self.bare = b"HTTP/1.1 200 OK\r\n" + common + b"\r\n" + self.body
        self.not_modified = b"HTTP/1.1 304 Not Modified\r\n" + validators + b"\r\n"


def _doc(index: int, seed: int, revision: int) -> _Doc:
    feed = make_feed(index, seed, revision)
    return _Doc(
        body=feed.body,
        content_type=feed.content_type,
        etag='"' + sha1(feed.body).hexdigest() + '"',
        last_modified=format_datetime(feed.last_modified, usegmt=True),
        modified_at=feed.last_modified,
        revision=revision,
    )


@dataclass
class _State:
    options: HostOptions
    docs: dict[str, _Doc] = field(default_factory=dict)
    validators: bool = True
    statuses: Counter[int] = field(default_factory=Counter)
    slow: frozenset[str] = frozenset()
    failing: frozenset[str] = frozenset()
    # Set by the stdlib kind: pushes changed documents into its FeedServer.
    sync: Callable[[], None] | None = None

    def build(self) -> None:
        opts = self.options
        self.docs = {feed_path(i): _doc(i, opts.seed, 0) for i in range(opts.feeds)}
        self.slow = frozenset(
            feed_path(i) for i in changed_indexes(opts.feeds, opts.slow_fraction, opts.seed, "slow")
        )
        failing = set(changed_indexes(opts.feeds, opts.error_fraction, opts.seed, "error"))
        self.failing = frozenset(feed_path(i) for i in failing)

    def is_fresh(self, doc: _Doc, headers: dict[bytes, bytes]) -> bool:
        """RFC 9110 §13.2.2 precedence: If-None-Match decides when present."""
        if not self.validators:
            return False
        inm = headers.get(b"if-none-match")
        if inm is not None:
            return inm.strip() == b"*" or doc.etag.encode() in inm
        ims = headers.get(b"if-modified-since")
        if ims is None:
            return False
        if ims.decode("latin-1") == doc.last_modified:
            return True
        try:
            return doc.modified_at <= parsedate_to_datetime(ims.decode("latin-1"))
        except (TypeError, ValueError):
            return False

    def mutate(self, fraction: float, salt: str) -> int:
        chosen = changed_indexes(self.options.feeds, fraction, self.options.seed, salt)
        for index in chosen:
            path = feed_path(index)
            self.docs[path] = _doc(index, self.options.seed, self.docs[path].revision + 1)
        return len(chosen)

    def reset(self) -> None:
        for path, doc in list(self.docs.items()):
            if doc.revision:
                self.docs[path] = _doc(int(path[7:12]), self.options.seed, 0)
        self.validators = True


def host_address(number: int, hosts: int) -> str:
    """The loopback address of host ``number``: 127.0.0.1 alone, else 127.0.x.y from 127.0.1.1."""
    if hosts <= 1:
        return HOST
    if not 0 <= number < MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} loopback hosts")
    return f"127.0.{1 + number // 250}.{1 + number % 250}"


def feed_url(index: int, hosts: int, port: int) -> str:
    """Where feed ``index`` is served: on host ``index % hosts``."""
    return f"http://{host_address(index % max(1, hosts), hosts)}:{port}{feed_path(index)}"


def _plain(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n" % (
        status,
        _REASONS[status],
    )


async def _handle(
    state: _State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    opts = state.options
    try:
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            target = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            headers: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            path = target.split("?", 1)[0]
            if opts.latency > 0:
                await asyncio.sleep(opts.latency)
            if path in state.slow:
                await asyncio.sleep(opts.slow_seconds)
            doc = state.docs.get(path)
            if doc is None:
                status, answer = 404, _plain(404)
            elif path in state.failing:
                status, answer = 500, _plain(500)
            elif state.is_fresh(doc, headers):
                status, answer = 304, doc.not_modified
            else:
                status, answer = 200, doc.full if state.validators else doc.bare
            state.statuses[status] += 1
            writer.write(answer)
            await writer.drain()
            if headers.get(b"connection", b"").lower() == b"close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve_asyncio(state: _State, ready: threading.Event, port_box: list[int]) -> None:
    async def main() -> None:
        hosts = max(1, state.options.hosts)

        def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Any:
            return _handle(state, r, w)

        # One listening socket per loopback address, all on the first one's port.
        first = await asyncio.start_server(handler, host_address(0, hosts), 0, backlog=1024)
        port = first.sockets[0].getsockname()[1]
        servers = [first] + [
            await asyncio.start_server(handler, host_address(n, hosts), port, backlog=1024)
            for n in range(1, hosts)
        ]
        port_box.append(port)
        ready.set()
        await asyncio.gather(*(server.serve_forever() for server in servers))

    asyncio.run(main())


def _serve_stdlib(state: _State, ready: threading.Event, port_box: list[int]) -> None:
    from aggregator.demo.feedserver import FeedServer, Resource  # noqa: PLC0415 - optional kind

    if state.options.hosts > 1:
        raise ValueError("the stdlib kind serves one host only")
    server = FeedServer(HOST)
    server.start()
    applied: dict[str, tuple[int, bool]] = {}

    def sync() -> None:
        # Push the state's documents into the FeedServer whenever they changed.
        for path, doc in state.docs.items():
            key = (doc.revision, state.validators)
            if applied.get(path) == key:
                continue
            applied[path] = key
            status = 500 if path in state.failing else 200
            delay = state.options.latency + (
                state.options.slow_seconds if path in state.slow else 0.0
            )
            if state.validators:
                res = Resource(
                    body=doc.body,
                    content_type=doc.content_type,
                    etag=doc.etag,
                    last_modified=doc.last_modified,
                    status=status,
                    delay=delay,
                )
            else:
                res = Resource(
                    body=doc.body,
                    content_type=doc.content_type,
                    status=status,
                    delay=delay,
                    auto_validators=False,
                )
            server.set(path, res)
        server_counts = Counter(r.status for r in server.requests)
        server.reset_log()
        state.statuses.update(server_counts)

    state.sync = sync
    sync()
    port_box.append(server.port)
    ready.set()
    threading.Event().wait()  # serve until the process is terminated


def _host_main(conn: multiprocessing.connection.Connection, options: HostOptions) -> None:
    state = _State(options)
    state.build()
    ready = threading.Event()
    port_box: list[int] = []
    target = _serve_asyncio if options.kind == "asyncio" else _serve_stdlib
    threading.Thread(target=target, args=(state, ready, port_box), daemon=True).start()
    ready.wait()
    conn.send(port_box[0])
    while True:
        command, *args = conn.recv()
        reply: Any = None
        if command == "mutate":
            reply = state.mutate(*args)
        elif command == "reset":
            state.reset()
        elif command == "validators":
            state.validators = bool(args[0])
        elif command == "stats":
            if state.sync is not None:
                state.sync()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            reply = {
                "cpu_user": usage.ru_utime,
                "cpu_sys": usage.ru_stime,
                "maxrss_mb": usage.ru_maxrss / 1024,
                "statuses": {str(k): v for k, v in sorted(state.statuses.items())},
            }
        elif command == "stop":
            conn.send(None)
            return
        if state.sync is not None and command in {"mutate", "reset", "validators"}:
            state.sync()
        conn.send(reply)


class HostProcess:
    """The parent's handle on a feed host process; a context manager."""

    def __init__(self, options: HostOptions) -> None:
        if options.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.options = options
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("fork").Process(
            target=_host_main, args=(child, options), name="feedhost", daemon=True
        )
        self.port = 0

    def __enter__(self) -> HostProcess:
        self._process.start()
        self.port = int(self._conn.recv())
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._call("stop")
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)

    @property
    def pid(self) -> int:
        return int(self._process.pid or 0)

    def url(self, index: int) -> str:
        return feed_url(index, self.options.hosts, self.port)

    def _call(self, *command: Any) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def mutate(self, fraction: float, salt: str) -> int:
        return int(self._call("mutate", fraction, salt))

    def reset(self) -> None:
        self._call("reset")

    def validators(self, on: bool) -> None:
        self._call("validators", on)

    def stats(self) -> dict[str, Any]:
        return dict(self._call("stats"))
