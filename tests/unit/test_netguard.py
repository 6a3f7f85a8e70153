"""The address policy for untrusted sources, and resolution through an injected resolver."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest

from aggregator.errors import FetchError
from aggregator.safety.netguard import NetGuard, forbidden_reason, parse_address, system_resolver


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "private"),  # documentation range: "private" to Python's ipaddress
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_forbidden(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "1.1.1.1",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",
        "100.63.255.255",
        "100.128.0.1",  # just outside 100.64.0.0/10
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_zone_ids_are_ignored() -> None:
    assert parse_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")


def fixed(answers: dict[str, Sequence[str]]) -> NetGuard:
    def resolve(host: str, port: int) -> Sequence[str]:
        return answers[host]

    return NetGuard(resolver=resolve)


def test_public_answers_pass() -> None:
    guard = fixed({"news.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    assert [str(a) for a in guard.addresses("news.example", 443)] == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]


def test_a_private_answer_is_refused_naming_host_and_address() -> None:
    guard = fixed({"intranet.example": ["10.0.0.7"]})
    with pytest.raises(FetchError) as caught:
        guard.addresses("intranet.example", 80)
    assert caught.value.kind == "blocked_address"
    assert "intranet.example (10.0.0.7)" in str(caught.value)
    assert "private" in str(caught.value)


def test_one_bad_answer_among_good_ones_refuses_the_host() -> None:
    # Public and private answers together are the DNS-rebinding pattern.
    guard = fixed({"rebind.example": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(FetchError, match="loopback"):
        guard.addresses("rebind.example", 80)


def test_allowed_hosts_skip_the_check() -> None:
    guard = NetGuard(
        resolver=lambda host, port: ["10.0.0.7"], allowed_hosts=frozenset({"intranet.example"})
    )
    assert guard.addresses("Intranet.Example.", 80) == [ipaddress.ip_address("10.0.0.7")]
    guard.check("intranet.example", ipaddress.ip_address("127.0.0.1"))
    with pytest.raises(FetchError):
        guard.check("other.example", ipaddress.ip_address("10.0.0.7"))


def test_no_answer_is_a_resolution_error() -> None:
    with pytest.raises(socket.gaierror):
        fixed({"void.example": []}).addresses("void.example", 80)


def test_system_resolver_resolves_ip_literals_without_dns() -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    with pytest.raises(FetchError, match="loopback"):
        NetGuard().addresses("127.0.0.1", 80)
