"""LAN beacons (protocol/beacon.py, SPEC §15.1): round trips, outsiders, vectors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.beacon import (
    BEACON_BYTES,
    INSTANCE_BYTES,
    MAX_BEACON_AGE_MS,
    NONCE_BYTES,
    Beacon,
    beacon_key,
    open_beacon,
    seal_beacon,
)
from protocol.channel import Community
from protocol.errors import DecodeError, LocalProtocolError
from tests.vectors.beacon_vectors import VECTORS_PATH, build_vectors
from tests.vectors.vector_file import render

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
T0 = 1_700_000_000_000

keys32 = st.binary(min_size=32, max_size=32)
communities = st.builds(lambda i, k: Community(id=i, keys=(k,)), keys32, keys32)
beacons = st.builds(
    Beacon,
    port=st.integers(1, 65535),
    instance=st.binary(min_size=INSTANCE_BYTES, max_size=INSTANCE_BYTES),
    sent_at_ms=st.integers(T0 - MAX_BEACON_AGE_MS, T0 + MAX_BEACON_AGE_MS),
)
nonces = st.binary(min_size=NONCE_BYTES, max_size=NONCE_BYTES)


@given(beacons, communities, nonces)
def test_a_member_reads_what_a_member_sealed(beacon: Beacon, community: Community,
                                             nonce: bytes) -> None:  # fmt: skip
    datagram = seal_beacon(beacon, community=community, nonce=nonce)
    assert len(datagram) == BEACON_BYTES  # one length for every community: it tells nothing
    assert open_beacon(datagram, community=community, now_ms=T0) == beacon


@given(beacons, communities, keys32, nonces)
def test_another_key_learns_nothing(beacon: Beacon, community: Community, other_key: bytes,
                                    nonce: bytes) -> None:  # fmt: skip
    datagram = seal_beacon(beacon, community=community, nonce=nonce)
    if other_key != community.key:
        outsider = Community(id=community.id, keys=(other_key,))
        assert open_beacon(datagram, community=outsider, now_ms=T0) is None


@given(beacons, communities, nonces, st.integers(0, BEACON_BYTES - 1), st.integers(1, 255))
def test_any_flipped_bit_is_not_ours(beacon: Beacon, community: Community, nonce: bytes,
                                     where: int, flip: int) -> None:  # fmt: skip
    datagram = bytearray(seal_beacon(beacon, community=community, nonce=nonce))
    datagram[where] ^= flip
    assert open_beacon(bytes(datagram), community=community, now_ms=T0) is None


@given(beacons, communities, nonces, nonces)
def test_two_beacons_of_one_node_share_no_byte_pattern(beacon: Beacon, community: Community,
                                                       n1: bytes, n2: bytes) -> None:  # fmt: skip
    # Unlinkable: the same beacon under two nonces has nothing in common an
    # outsider could match (the nonce is the only clear part, and it is fresh).
    if n1 != n2:
        a = seal_beacon(beacon, community=community, nonce=n1)
        b = seal_beacon(beacon, community=community, nonce=n2)
        assert a[NONCE_BYTES:] != b[NONCE_BYTES:]


def test_the_previous_key_still_opens_during_a_rotation() -> None:
    old, new = bytes(32), bytes([1]) * 32
    beacon = Beacon(port=7400, instance=bytes(8), sent_at_ms=T0)
    datagram = seal_beacon(beacon, community=Community(id=bytes(32), keys=(old,)),
                           nonce=bytes(24))  # fmt: skip
    rotated = Community(id=bytes(32), keys=(new, old))
    assert open_beacon(datagram, community=rotated, now_ms=T0) == beacon


def test_the_beacon_key_is_neither_the_psk_nor_shared_between_communities() -> None:
    key = bytes([7]) * 32
    assert beacon_key(key, bytes(32)) != key
    assert beacon_key(key, bytes(32)) != beacon_key(key, bytes([1]) * 32)


@pytest.mark.parametrize(
    ("fields", "nonce"),
    [
        ({"port": 0, "instance": bytes(8), "sent_at_ms": 0}, bytes(24)),
        ({"port": 1, "instance": bytes(7), "sent_at_ms": 0}, bytes(24)),
        ({"port": 1, "instance": bytes(8), "sent_at_ms": -1}, bytes(24)),
        ({"port": 1, "instance": bytes(8), "sent_at_ms": 0}, bytes(23)),
    ],
)
def test_bad_local_values_are_refused(fields: dict[str, Any], nonce: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        seal_beacon(Beacon(**fields), community=Community(id=bytes(32), keys=(bytes(32),)),
                    nonce=nonce)  # fmt: skip


# -- the published vectors ---------------------------------------------------------------


def test_file_is_what_the_builder_makes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


def _community(vector: dict[str, Any]) -> Community:
    return Community(id=bytes.fromhex(vector["community_id_hex"]),
                     keys=(bytes.fromhex(vector["community_key_hex"]),))  # fmt: skip


@pytest.mark.parametrize("vector", VECTORS["positive"], ids=lambda v: v["name"])
def test_positive_vector(vector: dict[str, Any]) -> None:
    community = _community(vector)
    assert beacon_key(community.key, community.id).hex() == vector["beacon_key_hex"]
    beacon = Beacon(port=vector["port"], instance=bytes.fromhex(vector["instance_hex"]),
                    sent_at_ms=vector["sent_at_ms"])  # fmt: skip
    datagram = seal_beacon(beacon, community=community, nonce=bytes.fromhex(vector["nonce_hex"]))
    assert datagram.hex() == vector["datagram_hex"]
    assert open_beacon(datagram, community=community, now_ms=vector["sent_at_ms"]) == beacon


@pytest.mark.parametrize("vector", VECTORS["negative"], ids=lambda v: v["name"])
def test_negative_vector(vector: dict[str, Any]) -> None:
    datagram = bytes.fromhex(vector["datagram_hex"])
    community, now_ms = _community(vector), vector["now_ms"]
    if vector["result"] in ("not_ours", "ok"):
        opened = open_beacon(datagram, community=community, now_ms=now_ms)
        assert (opened is None) == (vector["result"] == "not_ours")
    else:
        with pytest.raises(DecodeError) as caught:
            open_beacon(datagram, community=community, now_ms=now_ms)
        assert caught.value.reason.value == vector["result"]
