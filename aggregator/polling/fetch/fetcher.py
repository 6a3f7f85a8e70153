"""The ``Fetcher``: a source URL in, a ``FetchResult`` or a ``FetchError`` out.

Owns one fetch from start to end: conditional GET, redirects hop by hop (each hop takes a turn
at its host's gate and, for untrusted sources, connects through the address guard), statuses
(Retry-After for the whole host, 410), the size and time limits enforced while the body streams,
refusal of non-feed content, and the translation of every transport problem into ``FetchError``.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.utils import requote_uri
from urllib3.response import BaseHTTPResponse

from aggregator.clock import utc_now
from aggregator.errors import FetchError
from aggregator.polling.fetch.adapter import FeedAdapter
from aggregator.polling.fetch.content import binary_type, html_title, looks_like_html_page
from aggregator.polling.fetch.guarded import guarded_adapter
from aggregator.polling.fetch.options import RequestPlan, request_plan
from aggregator.polling.fetch.retry_after import DEFAULT_429_RETRY_AFTER, retry_after_time
from aggregator.polling.hosts import HostGate
from aggregator.safety.netguard import NetGuard
from aggregator.types import FetchOptions, FetchResult

log = logging.getLogger("aggregator.fetch.fetcher")

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/xml;q=0.9, */*;q=0.8"
)
# Only what requests/urllib3 can always decode; br and zstd need optional packages.
ACCEPT_ENCODING = "gzip, deflate"
# Feed URLs move rarely; a chain longer than this is a loop or a misconfigured site.
MAX_REDIRECTS = 10
# Upper bound for one read; a read returns as soon as any bytes arrive. urllib3 also caps what
# one read may decompress at this size, which keeps a gzip bomb from inflating in one go.
READ_CHUNK_BYTES = 64 * 1024
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})
GONE_STATUS = 410
ALLOWED_SCHEMES = frozenset({"http", "https"})
# A socket timeout this close to the deadline was cut short by it, not by read_timeout.
DEADLINE_SLACK_SECONDS = 0.05
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 60.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# How long a fetch may queue for a turn at a busy host before it gives its worker back (the
# source is then deferred, kind host_backoff). Queueing does not count against total_timeout.
DEFAULT_HOST_WAIT = 60.0


class _Attempt:
    """One fetch in progress: the URL of the current hop and the time limit.

    The limit starts with the first request, not while the fetch queues for a host's turn.
    """

    def __init__(self, url: str, total: float) -> None:
        self.origin = url
        self.url = url
        self.total = total
        self.started: float | None = None
        self.deadline: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = time.monotonic()
            self.deadline = self.started + self.total

    def remaining(self) -> float:
        """Seconds left; raises ``FetchError`` (timeout) when none are."""
        if self.deadline is None:
            return self.total
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FetchError(
                f"gave up on {self.url} after the total limit of {self.total:g} s",
                kind="timeout",
                url=self.url,
            )
        return left

    def expired(self) -> bool:
        return (
            self.deadline is not None and time.monotonic() >= self.deadline - DEADLINE_SLACK_SECONDS
        )

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started


class Fetcher:
    """Fetches feed URLs with conditional GET, redirects, politeness, and size and time limits.

    Thread-safe: share one instance across a ``ThreadPoolExecutor``; each thread gets its own
    ``requests.Session`` (one for trusted and one for untrusted sources). ``gate`` spaces and
    caps the requests per host and remembers Retry-After host-wide; without one, neither
    happens. ``guard`` decides which addresses untrusted fetches (``allow_private=False``) may
    reach. ``now`` is the wall clock for Retry-After dates. ``close()`` releases connections;
    the fetcher stays usable and opens new sessions if called again.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        gate: HostGate | None = None,
        guard: NetGuard | None = None,
        now: Callable[[], datetime] = utc_now,
        host_wait: float = DEFAULT_HOST_WAIT,
    ) -> None:
        if not user_agent.strip():
            raise ValueError("user_agent must not be empty: sources deserve to know who asks")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("total_timeout", total_timeout),
            ("max_bytes", max_bytes),
            ("host_wait", host_wait),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        self.user_agent = user_agent
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self.gate = gate
        self.guard = guard if guard is not None else NetGuard()
        self.host_wait = host_wait
        self._now = now
        self._local = threading.local()
        self._lock = threading.Lock()
        # Keyed by (thread, guarded) so sessions of finished threads can be closed.
        self._sessions: dict[tuple[threading.Thread, bool], requests.Session] = {}
        self._generation = 0

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's sessions and their pooled connections."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            # Threads still holding a closed session notice the new generation and replace it.
            self._generation += 1
        for session in sessions:
            session.close()

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        allow_private: bool = True,
        accept_html: bool = False,
        options: FetchOptions | None = None,
    ) -> FetchResult:
        """GET ``url``, conditionally when validators are given.

        ``allow_private`` False (sources from the API or admin pages) refuses every hop that
        would reach a non-public address. ``accept_html`` lets an HTML page through (for
        autodiscovery); otherwise a page is refused as not_a_feed. ``options`` are the
        source's own headers, user agent, credentials (sent only to its own origin) and proxy.

        Returns a result for 2xx and for 304 (``content`` None). Raises ``FetchError`` for
        everything else; ``kind`` is http, gone (410), host_backoff (the host asked us to wait,
        or stayed busy), blocked_address, not_a_feed, timeout, connection, too_large,
        redirects, invalid_url, decode or credentials. ``retry_after`` is set for 429/503
        and host_backoff.
        """
        _check_url(url)
        plan = request_plan(url, options)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempt = _Attempt(url, self.total_timeout)
        session = self._session(guarded=not allow_private)
        with self._translate_errors(attempt):
            return self._follow(session, attempt, headers, plan, accept_html=accept_html)

    # -- one fetch -------------------------------------------------------------------------

    def _follow(
        self,
        session: requests.Session,
        attempt: _Attempt,
        headers: dict[str, str],
        plan: RequestPlan,
        *,
        accept_html: bool,
    ) -> FetchResult:
        """Request the URL and follow redirects hop by hop.

        Followed here rather than by requests so every hop gets the remaining time budget, a
        turn at its own host, and (through the session's adapter) the address check.
        """
        permanent: str | None = None
        # Only an unbroken run of permanent hops from the start moves the source: after a
        # temporary hop, the source's own URL still stands.
        still_permanent = True
        for _ in range(MAX_REDIRECTS + 1):
            with self._host_turn(attempt):
                attempt.start()
                response = self._exchange(
                    session, attempt, {**plan.for_hop(attempt.url), **headers}, plan.proxies
                )
                try:
                    if not response.is_redirect:
                        return self._conclude(
                            response, attempt, headers, permanent, accept_html=accept_html
                        )
                    target = _redirect_target(session, response)
                finally:
                    _release(response)
            if still_permanent and response.status_code in PERMANENT_REDIRECT_STATUSES:
                permanent = target
            else:
                still_permanent = False
            attempt.url = target
        raise FetchError(
            f"more than {MAX_REDIRECTS} redirects from {attempt.origin}", kind="redirects"
        )

    @contextmanager
    def _host_turn(self, attempt: _Attempt) -> Iterator[None]:
        """Hold a turn at the hop's host for the request and its body."""
        gate = self.gate
        if gate is None:
            yield
            return
        host = urlsplit(attempt.url).hostname or ""
        self._refuse_if_blocked(gate, host, attempt.url)
        first_hop = attempt.started is None
        wait = self.host_wait if first_hop else attempt.remaining()
        if not gate.acquire(host, timeout=wait):
            if not first_hop:
                attempt.remaining()  # raises the timeout once the deadline is gone
            raise FetchError(
                f"did not contact {host}: it stayed busy with {gate.max_per_host} of our "
                f"requests for {wait:g} s",
                kind="host_backoff",
                retry_after=self._now() + timedelta(seconds=self.host_wait),
                url=attempt.url,
            )
        try:
            # Another request may have been told to back off while this one queued.
            self._refuse_if_blocked(gate, host, attempt.url)
            yield
        finally:
            gate.release(host)

    def _refuse_if_blocked(self, gate: HostGate, host: str, url: str) -> None:
        until = gate.blocked_until(host, self._now())
        if until is not None:
            raise FetchError(
                f"not contacting {host} before {until:%Y-%m-%d %H:%M:%S} UTC: it asked us to "
                "wait (Retry-After)",
                kind="host_backoff",
                retry_after=until,
                url=url,
            )

    def _exchange(
        self,
        session: requests.Session,
        attempt: _Attempt,
        headers: dict[str, str],
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP request, without following redirects and with the body left unread."""
        remaining = attempt.remaining()
        timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
        return session.get(
            attempt.url,
            headers=headers,
            stream=True,
            allow_redirects=False,
            timeout=timeout,
            proxies=proxies or None,
        )

    def _conclude(
        self,
        response: requests.Response,
        attempt: _Attempt,
        sent: dict[str, str],
        permanent: str | None,
        *,
        accept_html: bool,
    ) -> FetchResult:
        """The result of the last hop: its body for 2xx, nothing for 304, else an error."""
        status = response.status_code
        if status == 304:
            content = None
        elif 200 <= status < 300:
            content = self._feed_body(response, attempt, accept_html=accept_html)
        else:
            raise self._status_error(response)
        response_headers = {name.lower(): value for name, value in response.headers.items()}
        etag = response_headers.get("etag")
        last_modified = response_headers.get("last-modified")
        if status == 304:
            # A 304 confirms the validators we sent, even when it does not repeat them.
            etag = etag or sent.get("If-None-Match")
            last_modified = last_modified or sent.get("If-Modified-Since")
        return FetchResult(
            url=response.url,
            status=status,
            content=content,
            headers=response_headers,
            etag=etag,
            last_modified=last_modified,
            elapsed=attempt.elapsed(),
            permanent_redirect=permanent,
        )

    def _feed_body(
        self, response: requests.Response, attempt: _Attempt, *, accept_html: bool
    ) -> bytes:
        content_type = response.headers.get("content-type")
        binary = binary_type(content_type)
        if binary is not None:
            # Refused from the headers: no point downloading an image or an archive.
            raise FetchError(
                f"not a feed: {response.url} serves {binary} content",
                kind="not_a_feed",
                status=response.status_code,
                url=response.url,
            )
        body = self._read_body(response, attempt)
        if not accept_html and looks_like_html_page(body, content_type):
            title = html_title(body)
            named = f" (title {title!r})" if title else ""
            raise FetchError(
                f"not a feed: {response.url} looks like an HTML page{named}; "
                f"`aggregator sources add {response.url}` can discover the feed it links to",
                kind="not_a_feed",
                status=response.status_code,
                url=response.url,
            )
        return body

    def _read_body(self, response: requests.Response, attempt: _Attempt) -> bytes:
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"{response.url} declares {int(declared)} bytes, over the limit of "
                f"{self.max_bytes}",
                kind="too_large",
            )
        raw: BaseHTTPResponse = response.raw
        body = bytearray()
        while True:
            _limit_next_read(raw, min(self.read_timeout, attempt.remaining()))
            # read1 returns whatever one socket read brings, so a server dripping bytes
            # cannot keep us inside a single call past the deadline.
            chunk = raw.read1(READ_CHUNK_BYTES, decode_content=True)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchError(
                    f"{response.url} sent more than the limit of {self.max_bytes} bytes",
                    kind="too_large",
                )

    def _status_error(self, response: requests.Response) -> FetchError:
        status = response.status_code
        try:
            reason = response.reason or HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown Status"
        message = f"HTTP {status} {reason} from {response.url}"
        header = response.headers.get("retry-after")
        if status in RETRY_AFTER_STATUSES and header:
            message += f" (Retry-After: {header.strip()})"
        retry_after = None
        if status in RETRY_AFTER_STATUSES:
            now = self._now()
            retry_after = retry_after_time(
                header, now, default=DEFAULT_429_RETRY_AFTER if status == 429 else None
            )
            host = urlsplit(response.url).hostname
            if self.gate is not None and host and retry_after is not None and retry_after > now:
                # The server speaks for the host, not just this URL: every source there waits.
                self.gate.block(host, retry_after)
        return FetchError(
            message,
            kind="gone" if status == GONE_STATUS else "http",
            status=status,
            retry_after=retry_after,
            url=response.url,
        )

    # -- sessions and errors ---------------------------------------------------------------

    def _session(self, *, guarded: bool) -> requests.Session:
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            local.sessions = {}
        sessions: dict[bool, requests.Session] = local.sessions
        session = sessions.get(guarded)
        if session is not None:
            return session
        session = requests.Session()
        session.headers.update(
            {
                "User-Agent": self.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            }
        )
        if not _proxy_configured():
            # Without a proxy to honour, requests' per-request look at the environment (proxy
            # variables, ~/.netrc, CA bundle variables) only costs time; and a feed host should
            # never receive the user's netrc credentials anyway. The CA bundle is kept.
            session.trust_env = False
            session.verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
        adapter = guarded_adapter(self.guard) if guarded else FeedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if guarded:
            # A proxy from the environment would resolve and connect for us, and the guard
            # could only check the proxy's address: untrusted fetches go direct.
            session.trust_env = False
        with self._lock:
            # Pools start fresh threads on every poll; close sessions whose thread is gone so
            # a long-running service does not accumulate idle connections.
            for key in [k for k in self._sessions if not k[0].is_alive()]:
                self._sessions.pop(key).close()
            self._sessions[(threading.current_thread(), guarded)] = session
            local.generation = self._generation
        sessions[guarded] = session
        return session

    @contextmanager
    def _translate_errors(self, attempt: _Attempt) -> Iterator[None]:
        """Map requests', urllib3's and the socket layer's exceptions onto ``FetchError``."""
        try:
            yield
        except FetchError as exc:
            if exc.url is None:
                exc.url = attempt.url
            raise
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            url = attempt.url
            if attempt.expired():
                message = f"gave up on {url} after the total limit of {self.total_timeout:g} s"
            elif isinstance(exc, requests.ConnectTimeout):
                message = f"no connection to {url} within {self.connect_timeout:g} s"
            else:
                message = f"{url} sent nothing for {self.read_timeout:g} s"
            raise FetchError(message, kind="timeout", url=url) from exc
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            urllib3.exceptions.LocationParseError,
        ) as exc:
            raise FetchError(
                f"invalid URL {attempt.url!r}: {exc}", kind="invalid_url", url=attempt.url
            ) from exc
        except (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError) as exc:
            raise FetchError(
                f"could not decode the body of {attempt.url}: {exc}", kind="decode", url=attempt.url
            ) from exc
        except requests.exceptions.SSLError as exc:
            raise FetchError(
                f"TLS error fetching {attempt.url}: {network_reason(exc)}",
                kind="connection",
                url=attempt.url,
            ) from exc
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as exc:
            raise FetchError(
                f"cannot connect to {attempt.url}: {network_reason(exc)}",
                kind="connection",
                url=attempt.url,
            ) from exc


def network_reason(exc: BaseException) -> str:
    """The cause of a network failure in a few words ("connection refused"), without the
    connection pool, retry and object details requests and urllib3 wrap it in."""
    current: BaseException = exc
    for _ in range(8):  # the wrappers nest a few levels deep, never in a cycle we follow
        if isinstance(current, urllib3.exceptions.MaxRetryError) and current.reason:
            current = current.reason
        elif (
            isinstance(current, requests.RequestException | urllib3.exceptions.ProtocolError)
            and current.args
            and isinstance(current.args[-1], BaseException)
        ):
            current = current.args[-1]
        else:
            break
    if isinstance(current, urllib3.exceptions.NameResolutionError):
        return "the host name does not resolve"
    text = str(current) or type(current).__name__
    # urllib3 starts with the connection object: "HTTPConnection(host=..., port=...): ..."
    text = _CONNECTION_PREFIX.sub("", text)
    text = _ERRNO.sub("", text).strip()
    return (text[:1].lower() + text[1:])[:200] if text else type(current).__name__


_CONNECTION_PREFIX = re.compile(
    r"^(?:<[^>]*>|\w*Connection\w*\([^)]*\)): (?:Failed to establish a new connection: )?"
)
_ERRNO = re.compile(r"\[Errno -?\d+\] ")


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", kind="invalid_url", url=url) from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise FetchError(
            f"invalid URL {url!r}: need an http or https URL with a host",
            kind="invalid_url",
            url=url,
        )


def _redirect_target(session: requests.Session, response: requests.Response) -> str:
    # get_redirect_target repairs Location headers sent as raw UTF-8, as requests itself does.
    location = session.get_redirect_target(response) or ""
    target = requote_uri(urljoin(response.url, location))
    try:
        _check_url(target)
    except FetchError as exc:
        raise FetchError(
            f"{response.url} redirects to an unusable URL {location!r}",
            kind="invalid_url",
            url=response.url,
        ) from exc
    return target


def _limit_next_read(raw: BaseHTTPResponse, seconds: float) -> None:
    # urllib3 offers no per-read timeout once the body streams; the socket is reachable on
    # the connection it keeps while the body is unread. Without it, read_timeout still bounds
    # each read and the deadline is checked between reads.
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def _proxy_configured() -> bool:
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in PROXY_VARIABLES)


# Redirect bodies up to this size are read and dropped so the connection can be reused.
REUSABLE_BODY_BYTES = 64 * 1024


def _release(response: requests.Response) -> None:
    """Give a body-less response's connection back to the pool instead of closing it.

    requests closes the socket of a streamed response whose body it did not read itself; for
    a 304 (no body) or a small redirect, draining and releasing keeps the keep-alive
    connection, which is most of the cost of an all-304 poll.
    """
    raw = response.raw
    length = response.headers.get("content-length")
    small = response.status_code in (204, 304) or (
        response.is_redirect
        and length is not None
        and length.isdigit()
        and int(length) <= REUSABLE_BODY_BYTES
    )
    if small and hasattr(raw, "drain_conn") and hasattr(raw, "release_conn"):
        try:
            raw.drain_conn()
            raw.release_conn()
            return
        except Exception as exc:  # any doubt about the connection's state: close it instead
            log.debug("action=release outcome=closing reason=%r", exc)
    response.close()
