"""A loopback HTTP server that serves feed documents from memory, on the standard library only.

Owns the "real HTTP server on 127.0.0.1" used by ``aggregator demo`` and by the test suite:
conditional GET (ETag / Last-Modified → 304), redirects, slow and chunked bodies, gzip, and a
log of every request so tests can check what a client actually sent.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import re
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/rss+xml; charset=utf-8"
# No charset on XML types: the document's own XML declaration must decide (RFC 7303 lets a
# charset parameter override it, which would break non-UTF-8 samples).
CONTENT_TYPES = {
    ".xml": "application/rss+xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
}
FALLBACK_CONTENT_TYPE = "application/octet-stream"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Bytes per write when a body drips; small so a short body still makes several slow chunks.
DRIP_CHUNK_BYTES = 64
# Bytes per chunk of a chunked (no Content-Length) body that does not drip.
CHUNKED_PIECE_BYTES = 16 * 1024
# A keep-alive connection with no new request for this long is closed by the server.
IDLE_CONNECTION_SECONDS = 10.0
# How often serve_forever checks for shutdown; small so tests tear down quickly.
POLL_INTERVAL_SECONDS = 0.05
# How long stop() waits for handler threads once their sockets are shut down.
STOP_GRACE_SECONDS = 5.0
_ENTITY_TAG = re.compile(r'(?:W/)?"[^"]*"')


@dataclass
class Resource:
    """What the server answers for one path.

    ``etag`` None with ``auto_validators`` gives a strong ETag from the body's SHA-256 (only on
    200 answers). ``delay`` waits before answering; ``drip`` waits between body chunks of
    ``chunk_size`` bytes. ``chunked`` sends Transfer-Encoding: chunked with no Content-Length.
    ``gzip`` compresses the body when the request accepts gzip. ``headers`` are sent as given
    and replace the server's own header of the same name.
    """

    body: bytes = b""
    content_type: str = DEFAULT_CONTENT_TYPE
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    redirect_to: str | None = None
    auto_validators: bool = True
    chunked: bool = False
    gzip: bool = False
    chunk_size: int = DRIP_CHUNK_BYTES

    def __post_init__(self) -> None:
        if self.redirect_to is not None and self.status not in REDIRECT_STATUSES:
            raise ValueError(f"redirect_to needs a redirect status, not {self.status}")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")

    @property
    def effective_etag(self) -> str | None:
        if self.etag is not None:
            return self.etag
        if self.auto_validators and self.status == 200 and self.redirect_to is None:
            return '"' + hashlib.sha256(self.body).hexdigest() + '"'
        return None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it, and the status it decided to answer.

    ``path`` is the request target as sent (query string included); ``headers`` has lower-case
    names; ``at`` is ``time.monotonic()`` on arrival; ``client_port`` tells connections apart.
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int
    at: float = 0.0
    client_port: int = 0


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison of ``etag`` against an If-None-Match value (a list, ``*``, ``W/``)."""
    if if_none_match.strip() == "*":
        return True
    candidates = _ENTITY_TAG.findall(if_none_match)
    if not candidates:
        # Lenient with clients that send bare tokens instead of quoted entity tags.
        candidates = [part.strip() for part in if_none_match.split(",")]
    wanted = _opaque(etag)
    return any(_opaque(candidate) == wanted for candidate in candidates)


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def is_not_modified(resource: Resource, request_headers: dict[str, str]) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        etag = resource.effective_etag
        return etag is not None and etag_matches(if_none_match, etag)
    if_modified_since = request_headers.get("if-modified-since")
    if if_modified_since is None or resource.last_modified is None:
        return False
    since = _http_date(if_modified_since)
    modified = _http_date(resource.last_modified)
    return since is not None and modified is not None and modified <= since


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), FALLBACK_CONTENT_TYPE)


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so stop() can wake handlers blocked on idle keep-alives."""

    daemon_threads = True
    block_on_close = False
    # socketserver listens with a backlog of 5: when more clients connect at once than that
    # while the accept loop is late (a busy machine), the kernel drops their SYNs and each
    # waits a second for its retransmit, a second lost before the first byte.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: FeedServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) we neither need nor want.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_changed:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._connections_changed:
            self._connections.discard(request)
            self._connections_changed.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("feedserver: error while serving %s", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        with self._connections_changed:
            for connection in self._connections:
                # OSError: the client already closed its side.
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections_changed.wait_for(lambda: not self._connections, timeout)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_SECONDS
    # Headers and body go out in separate writes; with Nagle's algorithm the body waits for
    # the client's delayed ACK of the headers, about 40 ms per response on loopback.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("feedserver: %s %s", self.address_string(), format % args)

    def _answer(self, *, head: bool) -> None:
        server = cast(_HTTPServer, self.server)
        owner = server.owner
        arrived = time.monotonic()
        request_headers = {name.lower(): value for name, value in self.headers.items()}
        resource = owner.lookup(self.path)
        if resource is None:
            status = 404
        elif (
            resource.redirect_to is None
            and resource.status == 200
            and is_not_modified(resource, request_headers)
        ):
            status = 304
        else:
            status = resource.status
        owner.record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers=request_headers,
                status=status,
                at=arrived,
                client_port=int(self.client_address[1]),
            )
        )
        try:
            if resource is None:
                self._send_plain(404, b"not found\n", head=head)
                return
            if resource.delay > 0 and owner.stopping.wait(resource.delay):
                self.close_connection = True
                return
            self._send_resource(resource, status, request_headers, head=head)
        except OSError:
            # The client hung up (a fetcher giving up on a slow or huge body): expected here.
            self.close_connection = True

    def _send_plain(self, status: int, body: bytes, *, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_resource(
        self, resource: Resource, status: int, request_headers: dict[str, str], *, head: bool
    ) -> None:
        headers: dict[str, str] = {}
        etag = resource.effective_etag
        if etag is not None:
            headers["ETag"] = etag
        if resource.last_modified is not None:
            headers["Last-Modified"] = resource.last_modified
        body = b""
        if resource.redirect_to is not None:
            headers["Location"] = resource.redirect_to
            headers["Content-Length"] = "0"
        elif status != 304:
            body = resource.body
            headers["Content-Type"] = resource.content_type
            if resource.gzip:
                headers["Vary"] = "Accept-Encoding"
                if "gzip" in request_headers.get("accept-encoding", "").lower():
                    body = gzip.compress(body, mtime=0)
                    headers["Content-Encoding"] = "gzip"
            if resource.chunked:
                headers["Transfer-Encoding"] = "chunked"
            else:
                headers["Content-Length"] = str(len(body))
        custom = {name.lower() for name in resource.headers}
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in custom:
                self.send_header(name, value)
        for name, value in resource.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head or status == 304 or resource.redirect_to is not None:
            return
        self._send_body(body, resource)

    def _send_body(self, body: bytes, resource: Resource) -> None:
        owner = cast(_HTTPServer, self.server).owner
        if resource.drip > 0:
            size = resource.chunk_size
        elif resource.chunked:
            size = CHUNKED_PIECE_BYTES
        else:
            size = max(1, len(body))
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        for index, piece in enumerate(pieces):
            if index and resource.drip > 0 and owner.stopping.wait(resource.drip):
                self.close_connection = True
                return
            if resource.chunked:
                self.wfile.write(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
            else:
                self.wfile.write(piece)
            self.wfile.flush()
        if resource.chunked:
            self.wfile.write(b"0\r\n\r\n")


class FeedServer:
    """An in-memory feed host on a loopback port, run in a daemon thread.

    Use as a context manager (or ``start()`` / ``stop()``). ``set()`` and ``remove()`` may be
    called at any time from any thread; the next request sees the change.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._resources: dict[str, Resource] = {}
        self._log: list[RecordedRequest] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FeedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("FeedServer already started")
        self.stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name=f"feedserver-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close every socket; safe to call twice."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self.stopping.set()  # wakes handlers sleeping in a delay or a drip
        httpd.shutdown()
        httpd.close_connections(STOP_GRACE_SECONDS)
        httpd.server_close()
        thread.join(STOP_GRACE_SECONDS)
        self._httpd = self._thread = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` with no trailing slash."""
        if self._httpd is None:
            raise RuntimeError("FeedServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + ("" if path.startswith("/") else "/") + path

    def set(self, path: str, resource: Resource) -> None:
        """Serve ``resource`` at ``path``, replacing what was there."""
        with self._lock:
            self._resources[_normalize_path(path)] = resource

    def remove(self, path: str) -> None:
        """Stop serving ``path`` (404 from now on); nothing happens if it was not served."""
        with self._lock:
            self._resources.pop(_normalize_path(path), None)

    def lookup(self, target: str) -> Resource | None:
        """The resource for a request target: exact match first, then without the query."""
        with self._lock:
            found = self._resources.get(target)
            if found is None:
                found = self._resources.get(urlsplit(target).path)
            return found

    def serve_directory(self, directory: Path | str, prefix: str = "/") -> list[str]:
        """Serve every file under ``directory`` at ``prefix`` + its relative path.

        Content type comes from the extension; the ETag from the bytes and Last-Modified from
        the file's mtime, so clients can revalidate. Returns the registered paths.
        """
        root = Path(directory)
        prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        paths: list[str] = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            path = prefix + file.relative_to(root).as_posix()
            self.set(
                path,
                Resource(
                    body=file.read_bytes(),
                    content_type=content_type_for(file),
                    last_modified=formatdate(file.stat().st_mtime, usegmt=True),
                ),
            )
            paths.append(path)
        return paths

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._log)

    def count(self, path: str) -> int:
        """Requests for ``path``; the query string is ignored unless ``path`` has one."""
        return sum(1 for r in self.requests if _matches(r.path, path))

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()


def _normalize_path(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _matches(target: str, path: str) -> bool:
    if "?" in path:
        return target == path
    return urlsplit(target).path == path
