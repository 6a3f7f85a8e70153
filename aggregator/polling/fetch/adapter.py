"""The requests transport adapter every fetch session mounts.

Owns how a request maps onto urllib3's connection pools. requests asks the file system whether
a CA bundle path (from ``REQUESTS_CA_BUNDLE``, set on many systems) is a directory on every
request; that was a tenth of the CPU of a poll of unchanged feeds, so it is asked once per path.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from requests import PreparedRequest
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:  # typed dicts of the requests stubs, not names requests exports
    from requests.adapters import _HostParams, _PoolKwargs


@lru_cache(maxsize=8)
def _is_directory(path: str) -> bool:
    return os.path.isdir(path)


class FeedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that looks at the CA bundle path once, not once per request."""

    def build_connection_pool_key_attributes(
        self,
        request: PreparedRequest,
        verify: bool | str,
        cert: tuple[str, str] | str | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        parts = urlsplit(request.url or "")
        # urllib3 takes port None as the scheme's default, as requests itself passes it; the
        # stubs say int.
        host_params: _HostParams = {
            "scheme": parts.scheme.lower(),
            "host": parts.hostname or "",
            "port": parts.port,  # type: ignore[typeddict-item]
        }
        pool_kwargs: _PoolKwargs = {
            "cert_reqs": "CERT_NONE" if verify is False else "CERT_REQUIRED"
        }
        if isinstance(verify, str):
            pool_kwargs["ca_cert_dir" if _is_directory(verify) else "ca_certs"] = verify
        if isinstance(cert, tuple):
            pool_kwargs["cert_file"], pool_kwargs["key_file"] = cert
        elif cert is not None:
            pool_kwargs["cert_file"] = cert
        return host_params, pool_kwargs
