"""Which network addresses a fetch of an untrusted source may connect to.

Owns the address policy (no loopback, private, link-local, multicast, reserved, unspecified,
shared CGNAT or cloud metadata addresses, IPv4-mapped forms included) and the resolution step
that applies it. The fetcher calls it for every new connection and connects to the checked IP.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aggregator.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Resolves a host name (or IP literal) and port to IP address strings, in connection order.
Resolver = Callable[[str, int], Sequence[str]]

# Cloud instance metadata endpoints; most fall in ranges refused anyway, but naming them makes
# the error say what was at stake.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack …
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
# RFC 6598 shared address space (carrier-grade NAT): not global, yet not "private" to Python.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# RFC 6052 NAT64 prefix: the last 32 bits are an IPv4 address the gateway will reach.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


def forbidden_reason(address: IPAddress) -> str | None:
    """Why an untrusted fetch must not connect to ``address``; None when it is public."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or _nat64_embedded(address)
        if embedded is not None:
            reason = forbidden_reason(embedded)
            return f"{reason} (IPv4 inside IPv6)" if reason else None
    # Order matters only for the wording: the most specific description first.
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in SHARED_ADDRESS_SPACE, "a shared (carrier-grade NAT) address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        # Catches what the flags above miss (documentation and benchmarking ranges …).
        (not address.is_global, "a non-public address"),
    )
    return next((reason for flagged, reason in checks if flagged), None)


def _nat64_embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address not in NAT64_PREFIX:
        return None
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def parse_address(text: str) -> IPAddress:
    """An IP address from a resolver or a socket, without any IPv6 zone (``%eth0``)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host``, TCP addresses in its order, no repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class NetGuard:
    """The address policy plus how names are resolved.

    ``allowed_hosts`` are names trusted whatever they resolve to (an operator's intranet feed,
    or a test's stand-in for a public host); IP literals and other names are checked.
    """

    resolver: Resolver = system_resolver
    allowed_hosts: frozenset[str] = frozenset()

    def trusted(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_hosts

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` and return its addresses if every one of them is allowed.

        One refused address refuses the host: a name that answers with both public and
        private addresses is the DNS-rebinding pattern. Raises ``FetchError`` (kind
        blocked_address); resolution failures propagate as ``socket.gaierror``.
        """
        found = [parse_address(text) for text in self.resolver(host, port)]
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"no address for {host}")
        if not self.trusted(host):
            for address in found:
                self.check(host, address)
        return found

    def check(self, host: str, address: IPAddress) -> None:
        """Raise ``FetchError`` (kind blocked_address) unless ``host`` may use ``address``."""
        if self.trusted(host):
            return
        reason = forbidden_reason(address)
        if reason is not None:
            shown = host if host == str(address) else f"{host} ({address})"
            raise FetchError(
                f"refused to connect to {shown}: {address} is {reason}, and this source may "
                "only reach public addresses (AGGREGATOR_ALLOW_PRIVATE_ADDRESSES allows others)",
                kind="blocked_address",
            )
