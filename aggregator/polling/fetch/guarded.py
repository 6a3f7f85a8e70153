"""A requests adapter whose connections only reach addresses a ``NetGuard`` allows.

Owns the urllib3 hook of the private-address refusal. Each new connection resolves its host
once through the guard, connects to one of the checked IPs itself (so no second DNS answer can
slip in: DNS rebinding) and checks the socket's peer address before a byte is sent; the host
name still goes into the Host header, TLS SNI and certificate check as usual.
"""

from __future__ import annotations

import socket
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

from aggregator.polling.fetch.adapter import FeedAdapter
from aggregator.safety.netguard import NetGuard, parse_address


def guarded_adapter(guard: NetGuard) -> FeedAdapter:
    """An adapter to mount on http:// and https:// of a session used for untrusted sources."""

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_checked(self, guard)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_checked(self, guard)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(FeedAdapter):
        def init_poolmanager(
            self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
        ) -> None:
            super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": GuardedHTTPPool,
                "https": GuardedHTTPSPool,
            }

    return GuardedAdapter()


def _connect_checked(connection: HTTPConnection, guard: NetGuard) -> socket.socket:
    """Open the TCP connection for ``connection`` to an address the guard checked.

    Errors are raised as urllib3's own, so requests reports them as it would for a plain
    connection; a refused address raises the guard's ``FetchError`` untouched.
    """
    host = connection.host
    try:
        addresses = guard.addresses(host, connection.port)
    except socket.gaierror as exc:
        raise NameResolutionError(host, connection, exc) from exc
    last_error: OSError | None = None
    for address in addresses:
        try:
            sock = create_connection(
                (str(address), connection.port),
                connection.timeout,
                source_address=connection.source_address,
                socket_options=connection.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                connection, f"connection to {host} timed out (connect timeout={connection.timeout})"
            ) from exc
        except OSError as exc:
            last_error = exc
            continue
        try:
            # Belt and braces: what we are connected to is what was checked, whatever the
            # socket layer did in between.
            guard.check(host, parse_address(str(sock.getpeername()[0])))
        except BaseException:
            sock.close()
            raise
        return sock
    raise NewConnectionError(connection, f"Failed to establish a new connection: {last_error}")
