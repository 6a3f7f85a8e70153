"""WebSub publisher pings: tell the hub which feed URLs changed, so it can push them on.

A small adapter over requests: each changed URL is POSTed as ``hub.mode=publish&hub.url=…``
(the form every public hub accepts) from one background thread, so neither a request nor a
poll ever waits on the hub. A failed ping is logged and dropped: subscribers still poll, and
the next change pings again.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Final

import requests

log = logging.getLogger("aggregator.websub")

TIMEOUT_SECONDS: Final = 10.0
PUBLISH_MODE: Final = "publish"


class HubNotifier:
    """Pings one hub for changed feed URLs, in order, each URL once per batch."""

    def __init__(self, hub_url: str, *, user_agent: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.hub_url = hub_url
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent
        # The environment's proxies and netrc are not for a hub we were told about.
        self._session.trust_env = False
        self._pending: deque[str] = deque()
        self._busy = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.sent = 0
        self.failed = 0

    def notify(self, urls: Iterable[str]) -> None:
        """Queue pings for ``urls``; returns at once."""
        with self._changed:
            if self._closed:
                return
            for url in urls:
                if url not in self._pending:
                    self._pending.append(url)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued ping was sent or failed; False if ``timeout`` ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float | None = TIMEOUT_SECONDS) -> None:
        """Send what is queued (up to ``timeout``), then stop the thread."""
        self.flush(timeout)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._session.close()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                url = self._pending.popleft()
                self._busy += 1
            try:
                self._ping(url)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()

    def _ping(self, url: str) -> None:
        try:
            response = self._session.post(
                self.hub_url,
                data={"hub.mode": PUBLISH_MODE, "hub.url": url},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self.failed += 1
            log.warning(
                "action=websub_ping outcome=error hub=%s url=%s error=%s", self.hub_url, url, exc
            )
            return
        if 200 <= response.status_code < 300:
            self.sent += 1
            log.info(
                "action=websub_ping outcome=ok hub=%s url=%s status=%d",
                self.hub_url,
                url,
                response.status_code,
            )
        else:
            self.failed += 1
            log.warning(
                "action=websub_ping outcome=refused hub=%s url=%s status=%d body=%r",
                self.hub_url,
                url,
                response.status_code,
                response.text[:200],
            )


def ping_hub(
    hub_url: str, urls: Iterable[str], *, user_agent: str, timeout: float = TIMEOUT_SECONDS
) -> int:
    """Ping once for each of ``urls`` and wait; returns how many the hub accepted."""
    notifier = HubNotifier(hub_url, user_agent=user_agent, timeout=timeout)
    notifier.notify(urls)
    notifier.close(timeout=None)
    return notifier.sent
