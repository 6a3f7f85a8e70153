"""A source's own request settings (``types.FetchOptions``) made into what one fetch sends:
its headers, the credentials read from the environment at that moment, and its proxy.

Credentials go only to the source's own origin (scheme, host and port): a redirect elsewhere
is followed without them. Nothing here logs, and no error repeats a secret's value.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aggregator.errors import FetchError
from aggregator.types import FetchOptions


@dataclass(frozen=True)
class RequestPlan:
    """Headers for every hop, credential headers for hops to ``origin``, and the proxy."""

    headers: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    origin: tuple[str, str, int | None] | None = None
    proxies: dict[str, str] = field(default_factory=dict)

    def for_hop(self, url: str) -> dict[str, str]:
        """The headers to send to ``url``: the credentials only on the source's own origin."""
        if self.credentials and _origin(url) == self.origin:
            return {**self.headers, **self.credentials}
        return dict(self.headers)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _secret(name: str, url: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name, "")
    if not value:
        raise FetchError(
            f"the environment variable {name} that this source's credentials "
            "come from is not set in the service's environment",
            kind="credentials",
            url=url,
        )
    return value


def request_plan(
    url: str, options: FetchOptions | None, environ: Mapping[str, str] | None = None
) -> RequestPlan:
    """What a fetch of ``url`` with ``options`` sends; raises ``FetchError`` (credentials)
    naming a variable that is missing or malformed, never its value."""
    if options is None:
        return RequestPlan()
    env = os.environ if environ is None else environ
    headers = dict(options.headers)
    if options.user_agent:
        headers["User-Agent"] = options.user_agent
    credentials: dict[str, str] = {}
    if options.auth_env:
        pair = _secret(options.auth_env, url, env)
        if ":" not in pair:
            raise FetchError(
                f"the environment variable {options.auth_env} must hold "
                "user:password for basic auth",
                kind="credentials",
                url=url,
            )
        token = base64.b64encode(pair.encode("utf-8")).decode("ascii")
        credentials["Authorization"] = f"Basic {token}"
    if options.cookie_env:
        credentials["Cookie"] = _secret(options.cookie_env, url, env)
    proxies = {"http": options.proxy, "https": options.proxy} if options.proxy else {}
    return RequestPlan(
        headers=headers,
        credentials=credentials,
        origin=_origin(url) if credentials else None,
        proxies=proxies,
    )
