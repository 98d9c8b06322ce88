"""Which addresses a node tells others and which it dials (issue 21, defects 6 and 10)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.net.addresses import (
    detect_host_addresses,
    format_address,
    host_of,
    invite_warnings,
    is_dialable,
    is_local_only,
    own_addresses,
)

LAN = ("10.77.1.1", "192.168.1.20")


def detect(ipv6: bool) -> tuple[str, ...]:
    return (*LAN, "2001:db8::7") if ipv6 else LAN


@pytest.mark.parametrize(
    ("address", "local", "dialable"),
    [
        ("0.0.0.0:7400", True, False),
        ("[::]:7400", True, False),
        ("[0:0::0]:7400", True, False),
        ("10.0.0.1:0", True, False),
        ("127.0.0.1:7400", False, False),
        ("127.1.2.3:7400", False, False),
        ("[::1]:7400", False, False),
        ("localhost:7400", False, False),
        ("LOCALHOST:7400", False, False),
        ("127.0.0.1:7400", True, True),
        ("10.0.0.1:7400", False, True),
        ("[2001:db8::1]:7400", False, True),
        ("node.example.org:7400", False, True),
        ("n17", False, True),  # a simulated network's name: the dialler decides
    ],
)
def test_what_is_dialable(address: str, local: bool, dialable: bool) -> None:
    assert is_dialable(address, local=local) is dialable


def test_a_node_is_local_when_it_has_only_loopback_addresses() -> None:
    assert is_local_only(["127.0.0.1:7400", "[::1]:7400"])
    assert is_local_only([])
    assert not is_local_only(["127.0.0.1:7400", "10.0.0.1:7400"])
    assert not is_local_only(["n1"])


def test_advertise_wins_over_the_listen_address() -> None:
    # Defect 10: `Node` took the bound listen address before `[network] advertise`.
    mine = own_addresses(
        listen="0.0.0.0:7400", bound=("0.0.0.0", 7400), advertise=("198.51.100.7:7400",),
        detect=detect,
    )  # fmt: skip
    assert mine == ("198.51.100.7:7400",)


def test_a_wildcard_becomes_the_machines_addresses() -> None:
    # Defect 6/10: `0.0.0.0:7400` was invited to and gossiped as a dialable address.
    v4 = own_addresses(listen="0.0.0.0:7400", bound=None, advertise=(), detect=detect)
    assert v4 == ("10.77.1.1:7400", "192.168.1.20:7400")
    v6 = own_addresses(listen="[::]:0", bound=("::", 7411), advertise=(), detect=detect)
    assert v6 == ("10.77.1.1:7411", "192.168.1.20:7411", "[2001:db8::7]:7411")
    alone = own_addresses(listen="0.0.0.0:7400", bound=None, advertise=(), detect=lambda _: ())
    assert alone == ("127.0.0.1:7400",)


def test_a_specific_host_is_itself_and_port_zero_is_unknown() -> None:
    assert own_addresses(listen="10.0.0.5:7400", bound=None, advertise=(), detect=detect) == (
        "10.0.0.5:7400",
    )
    assert own_addresses(listen="127.0.0.1:0", bound=None, advertise=(), detect=detect) == ()
    bound = own_addresses(listen="[::1]:0", bound=("::1", 9), advertise=(), detect=detect)
    assert bound == ("[::1]:9",)


def test_at_most_eight_addresses() -> None:
    many = tuple(f"10.0.0.{i}" for i in range(1, 20))
    mine = own_addresses(listen="0.0.0.0:1", bound=None, advertise=(), detect=lambda _: many)
    assert len(mine) == 8


def test_warnings_say_when_an_invite_only_works_here() -> None:
    assert len(invite_warnings(("127.0.0.1:7400",), listen="127.0.0.1:7400")) == 1
    # advertised elsewhere, but nothing listens there
    assert len(invite_warnings(("198.51.100.7:7400",), listen="127.0.0.1:7400")) == 1
    assert invite_warnings(("10.77.1.1:7400",), listen="0.0.0.0:7400") == []


@pytest.mark.slow
@given(st.ip_addresses(), st.integers(0, 65535))
def test_format_and_host_of_agree(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    address = format_address(str(ip), port)
    assert host_of(address) == str(ip)
    assert is_dialable(address, local=True) is (port != 0 and not ip.is_unspecified)


@pytest.mark.slow
@given(st.text(max_size=80))
def test_any_text_is_judged_without_raising(text: str) -> None:
    assert isinstance(is_dialable(text, local=False), bool)
    assert isinstance(is_local_only([text]), bool)


def test_detected_addresses_are_reachable_from_elsewhere() -> None:
    for text in detect_host_addresses(ipv6=True):
        ip = ipaddress.ip_address(text)
        assert not ip.is_loopback, text
        assert not ip.is_link_local, text
        assert not ip.is_unspecified, text
