"""HTTP fetching of sources: the only home of ``requests`` (and of its ``urllib3``).

``Fetcher`` (fetcher.py) does one fetch end to end; guarded.py hooks the private-address policy
of ``aggregator.safety.netguard`` into urllib3's connections; content.py tells pages and binaries
from
feeds; retry_after.py reads Retry-After. Politeness per host lives in ``aggregator.polling.hosts``.
"""

from aggregator.polling.fetch.fetcher import (
    ACCEPT,
    ACCEPT_ENCODING,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST_WAIT,
    DEFAULT_MAX_BYTES,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT,
    MAX_REDIRECTS,
    Fetcher,
)
from aggregator.polling.fetch.retry_after import (
    DEFAULT_429_RETRY_AFTER,
    MAX_RETRY_AFTER,
    retry_after_time,
)

__all__ = [
    "ACCEPT",
    "ACCEPT_ENCODING",
    "DEFAULT_429_RETRY_AFTER",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HOST_WAIT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "MAX_REDIRECTS",
    "MAX_RETRY_AFTER",
    "Fetcher",
    "retry_after_time",
]
