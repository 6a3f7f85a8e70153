"""POSTs to downstream addresses (webhook deliveries) through the fetch layer's requests
sessions: no redirects followed, the environment's proxies ignored, a total time limit, and,
unless private addresses are allowed, every connection through the address guard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests

from aggregator.errors import FetchError
from aggregator.polling.fetch.guarded import guarded_adapter
from aggregator.safety.netguard import NetGuard

# The answer's body is only kept for the delivery log.
MAX_ANSWER_BYTES = 4096


@dataclass(frozen=True)
class PostAnswer:
    """What one POST came to: the HTTP status, or the transport error in words."""

    status: int | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Poster:
    """Sends POSTs; thread-safe (one session per thread). ``allow_private`` lets targets on
    loopback and private addresses through, as ``AGGREGATOR_ALLOW_PRIVATE_ADDRESSES`` does
    for API-added sources."""

    def __init__(
        self, *, user_agent: str, timeout: float, allow_private: bool, guard: NetGuard | None = None
    ) -> None:
        self.user_agent = user_agent
        self.timeout = timeout
        self.allow_private = allow_private
        self.guard = guard or NetGuard()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["User-Agent"] = self.user_agent
            if not self.allow_private:
                adapter = guarded_adapter(self.guard)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostAnswer:
        started = time.monotonic()
        try:
            with self._session().post(
                url,
                data=body,
                headers=dict(headers),
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                response.raw.read(MAX_ANSWER_BYTES, decode_content=False)
                status = response.status_code
        except FetchError as exc:
            return PostAnswer(None, str(exc), time.monotonic() - started)
        except requests.RequestException as exc:
            # The guard's refusal arrives wrapped in requests' ConnectionError.
            inner = exc.__context__ if isinstance(exc.__context__, FetchError) else exc
            return PostAnswer(None, f"{type(inner).__name__}: {inner}", time.monotonic() - started)
        return PostAnswer(status, None, time.monotonic() - started)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
