"""HTTP fetching of sources: the only home of ``requests`` (and of its ``urllib3``).

Owns conditional GET, redirect following (noticing permanent moves), the size and total-time
limits enforced while the body streams, and the translation of every transport problem into
``FetchError``. One ``Fetcher`` is shared by a thread pool; each worker thread gets its own
``requests.Session``.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.utils import requote_uri
from urllib3.response import BaseHTTPResponse

from aggregator.errors import FetchError
from aggregator.types import FetchResult

ACCEPT = ("application/atom+xml, application/rss+xml, application/feed+json, "
          "application/xml;q=0.9, */*;q=0.8")
# Only what requests/urllib3 can always decode; br and zstd need optional packages.
ACCEPT_ENCODING = "gzip, deflate"
# Feed URLs move rarely; a chain longer than this is a loop or a misconfigured site.
MAX_REDIRECTS = 10
# Upper bound for one read; a read returns as soon as any bytes arrive.
READ_CHUNK_BYTES = 64 * 1024
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})
ALLOWED_SCHEMES = frozenset({"http", "https"})
# A socket timeout this close to the deadline was cut short by it, not by read_timeout.
DEADLINE_SLACK_SECONDS = 0.05
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 60.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class _Hops:
    """The end of a redirect chain: the final response and the permanent target, if any."""

    response: requests.Response
    permanent_redirect: str | None


class Fetcher:
    """Fetches feed URLs with conditional GET, redirects, and size and time limits.

    Thread-safe: share one instance across a ``ThreadPoolExecutor``. ``close()`` releases every
    session's connections; the fetcher stays usable and opens new sessions if called again.
    """

    def __init__(self, *, user_agent: str, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 read_timeout: float = DEFAULT_READ_TIMEOUT,
                 total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if not user_agent.strip():
            raise ValueError("user_agent must not be empty: sources deserve to know who asks")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout),
                            ("total_timeout", total_timeout), ("max_bytes", max_bytes)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        self.user_agent = user_agent
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: dict[threading.Thread, requests.Session] = {}
        self._generation = 0

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's session and its pooled connections."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            # Threads still holding a closed session notice the new generation and replace it.
            self._generation += 1
        for session in sessions:
            session.close()

    def fetch(self, url: str, *, etag: str | None = None,
              last_modified: str | None = None) -> FetchResult:
        """GET ``url``, conditionally when validators are given.

        Returns a result for 2xx and for 304 (``content`` None). Raises ``FetchError`` for
        everything else: ``kind`` is http, timeout, connection, too_large, redirects,
        invalid_url or decode.
        """
        started = time.monotonic()
        deadline = started + self.total_timeout
        _check_url(url)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        with self._translate_errors(url, deadline):
            hops = self._follow(url, headers, deadline)
            response = hops.response
            try:
                if response.status_code == 304:
                    content = None
                elif 200 <= response.status_code < 300:
                    content = self._read_body(response, deadline)
                else:
                    raise _http_error(response)
            finally:
                response.close()
        response_headers = {name.lower(): value for name, value in response.headers.items()}
        result_etag = response_headers.get("etag")
        result_last_modified = response_headers.get("last-modified")
        if response.status_code == 304:
            # A 304 confirms the validators we sent, even when it does not repeat them.
            result_etag = result_etag or etag
            result_last_modified = result_last_modified or last_modified
        return FetchResult(
            url=response.url, status=response.status_code, content=content,
            headers=response_headers, etag=result_etag, last_modified=result_last_modified,
            elapsed=time.monotonic() - started, permanent_redirect=hops.permanent_redirect)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None and self._local.generation == self._generation:
            return session
        session = requests.Session()
        session.headers.update({
            "User-Agent": self.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        })
        with self._lock:
            # Pools start fresh threads on every poll; close sessions whose thread is gone so
            # a long-running service does not accumulate idle connections.
            for thread in [t for t in self._sessions if not t.is_alive()]:
                self._sessions.pop(thread).close()
            self._sessions[threading.current_thread()] = session
            self._local.generation = self._generation
        self._local.session = session
        return session

    def _follow(self, url: str, headers: dict[str, str], deadline: float) -> _Hops:
        """Request ``url`` and follow redirects hop by hop.

        Followed here rather than by requests so every hop gets the remaining time budget, and
        so a later per-host politeness layer can see each host contacted.
        """
        session = self._session()
        current = url
        permanent: str | None = None
        # Only an unbroken run of permanent hops from the start moves the source: after a
        # temporary hop, the source's own URL still stands.
        still_permanent = True
        for _ in range(MAX_REDIRECTS + 1):
            response = self._exchange(session, current, headers, deadline)
            if not response.is_redirect:
                return _Hops(response, permanent)
            try:
                target = _redirect_target(session, response)
            finally:
                response.close()
            if still_permanent and response.status_code in PERMANENT_REDIRECT_STATUSES:
                permanent = target
            else:
                still_permanent = False
            current = target
        raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}", kind="redirects")

    def _exchange(self, session: requests.Session, url: str, headers: dict[str, str],
                  deadline: float) -> requests.Response:
        """One HTTP request, without following redirects and with the body left unread."""
        remaining = _remaining(deadline, url, self.total_timeout)
        timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
        return session.get(url, headers=headers, stream=True, allow_redirects=False,
                           timeout=timeout)

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"{response.url} declares {int(declared)} bytes, over the limit of "
                f"{self.max_bytes}", kind="too_large")
        raw: BaseHTTPResponse = response.raw
        body = bytearray()
        while True:
            remaining = _remaining(deadline, response.url, self.total_timeout)
            _limit_next_read(raw, min(self.read_timeout, remaining))
            # read1 returns whatever one socket read brings, so a server dripping bytes
            # cannot keep us inside a single call past the deadline.
            chunk = raw.read1(READ_CHUNK_BYTES, decode_content=True)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchError(
                    f"{response.url} sent more than the limit of {self.max_bytes} bytes",
                    kind="too_large")

    @contextmanager
    def _translate_errors(self, url: str, deadline: float) -> Iterator[None]:
        """Map requests', urllib3's and the socket layer's exceptions onto ``FetchError``."""
        try:
            yield
        except FetchError:
            raise
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            if time.monotonic() >= deadline - DEADLINE_SLACK_SECONDS:
                message = f"gave up on {url} after the total limit of {self.total_timeout:g} s"
            elif isinstance(exc, requests.ConnectTimeout):
                message = f"no connection to {url} within {self.connect_timeout:g} s"
            else:
                message = f"{url} sent nothing for {self.read_timeout:g} s"
            raise FetchError(message, kind="timeout") from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema, urllib3.exceptions.LocationParseError) as exc:
            raise FetchError(f"invalid URL {url!r}: {exc}", kind="invalid_url") from exc
        except (requests.exceptions.ContentDecodingError,
                urllib3.exceptions.DecodeError) as exc:
            raise FetchError(f"could not decode the body of {url}: {exc}",
                             kind="decode") from exc
        except requests.exceptions.SSLError as exc:
            raise FetchError(f"TLS error fetching {url}: {exc}", kind="connection") from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError,
                http.client.HTTPException, OSError) as exc:
            raise FetchError(f"connection error fetching {url}: {exc}",
                             kind="connection") from exc


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", kind="invalid_url") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise FetchError(f"invalid URL {url!r}: need an http or https URL with a host",
                         kind="invalid_url")


def _redirect_target(session: requests.Session, response: requests.Response) -> str:
    # get_redirect_target repairs Location headers sent as raw UTF-8, as requests itself does.
    location = session.get_redirect_target(response) or ""
    target = requote_uri(urljoin(response.url, location))
    try:
        _check_url(target)
    except FetchError as exc:
        raise FetchError(f"{response.url} redirects to an unusable URL {location!r}",
                         kind="invalid_url") from exc
    return target


def _remaining(deadline: float, url: str, total_timeout: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError(f"gave up on {url} after the total limit of {total_timeout:g} s",
                         kind="timeout")
    return remaining


def _limit_next_read(raw: BaseHTTPResponse, seconds: float) -> None:
    # urllib3 offers no per-read timeout once the body streams; the socket is reachable on
    # the connection it keeps while the body is unread. Without it, read_timeout still bounds
    # each read and the deadline is checked between reads.
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _http_error(response: requests.Response) -> FetchError:
    status = response.status_code
    try:
        reason = response.reason or HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown Status"
    message = f"HTTP {status} {reason} from {response.url}"
    retry_after = response.headers.get("retry-after")
    if status in RETRY_AFTER_STATUSES and retry_after:
        message += f" (Retry-After: {retry_after.strip()})"
    return FetchError(message, kind="http", status=status)
