"""Builds `protocol/vectors/beacons-v1.json`: LAN discovery beacons (SPEC §15.1).

Run `python -m tests.vectors.beacon_vectors` to rewrite the file;
`tests/protocol/test_beacon.py` fails if the file and this builder disagree, and
checks the code against every vector. `positive[]` gives a community (id, key),
the derived `beacon_key_hex`, the beacon's fields, the nonce and the exact
datagram. `negative[]` gives a datagram, the community and time of the receiver,
and what it makes of it: `result` is `not_ours` (open_beacon returns nothing:
another community, tampering) or the reason it is refused with.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nacl.bindings

from protocol.beacon import BEACON_VERSION, Beacon, beacon_key, seal_beacon
from protocol.channel import Community
from protocol.invite import open_community_key
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "beacons-v1.json"
T0 = 1_700_000_000_000
_AD = b"trustnode/lan-beacon/v1\x00"

CLOSED = Community(id=bytes(range(32)), keys=(bytes(range(32, 64)),))
OPEN_ID = bytes([0xAB]) * 32
OPEN = Community(id=OPEN_ID, keys=(open_community_key(OPEN_ID),))
OTHER = Community(id=bytes(range(32)), keys=(bytes(range(64, 96)),))  # same id, another key


def _community(community: Community) -> dict[str, Any]:
    return {"community_id_hex": community.id.hex(), "community_key_hex": community.key.hex()}


def _raw(plaintext: bytes, community: Community, nonce: bytes) -> bytes:
    """A datagram sealed around any plaintext (for the negative vectors)."""
    key = beacon_key(community.key, community.id)
    sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, _AD, nonce, key
    )
    return nonce + sealed


def _positive(name: str, community: Community, beacon: Beacon, nonce: bytes) -> dict[str, Any]:
    return {
        "name": name,
        **_community(community),
        "beacon_key_hex": beacon_key(community.key, community.id).hex(),
        "port": beacon.port,
        "instance_hex": beacon.instance.hex(),
        "sent_at_ms": beacon.sent_at_ms,
        "nonce_hex": nonce.hex(),
        "datagram_hex": seal_beacon(beacon, community=community, nonce=nonce).hex(),
    }


def build_vectors() -> dict[str, Any]:
    """The whole file's content."""
    first = Beacon(port=7400, instance=bytes(range(8)), sent_at_ms=T0)
    nonce = bytes(range(100, 124))
    good = seal_beacon(first, community=CLOSED, nonce=nonce)
    tampered = bytearray(good)
    tampered[30] ^= 1
    instance = bytes(8)

    def fields(version: int, port: int, sent_at_ms: int) -> bytes:
        return bytes([version]) + port.to_bytes(2, "big") + instance + sent_at_ms.to_bytes(8, "big")

    def negative(name: str, datagram: bytes, result: str, *, now_ms: int = T0) -> dict[str, Any]:
        return {
            "name": name,
            **_community(CLOSED),
            "now_ms": now_ms,
            "datagram_hex": datagram.hex(),
            "result": result,
        }

    ten_minutes = 10 * 60 * 1000
    return {
        "description": "LAN discovery beacons (SPEC §15.1); binary values in lowercase hex",
        "version": BEACON_VERSION,
        "positive": [
            _positive("closed-community", CLOSED, first, nonce),
            _positive(
                "open-community",
                OPEN,
                Beacon(port=65535, instance=bytes([0xFF]) * 8, sent_at_ms=2**63 - 1),
                bytes(24),
            ),
            _positive(
                "edge-port-1", CLOSED, Beacon(port=1, instance=instance, sent_at_ms=0), bytes(24)
            ),
        ],
        "negative": [
            negative("too-short", good[:-1], "malformed"),
            negative("too-long", good + b"\x00", "malformed"),
            negative("empty", b"", "malformed"),
            negative("another-key", seal_beacon(first, community=OTHER, nonce=nonce), "not_ours"),
            negative(
                "another-community-id", seal_beacon(first, community=OPEN, nonce=nonce), "not_ours"
            ),
            negative("tampered", bytes(tampered), "not_ours"),
            negative("version-2", _raw(fields(2, 7400, T0), CLOSED, nonce), "unknown_version"),
            negative("port-0", _raw(fields(1, 0, T0), CLOSED, nonce), "out_of_range"),
            negative("time-2-63", _raw(fields(1, 7400, 2**63), CLOSED, nonce), "out_of_range"),
            negative("replayed-late", good, "expired", now_ms=T0 + ten_minutes + 1),
            negative("sent-from-future", good, "from_future", now_ms=T0 - ten_minutes - 1),
            negative("edge-age-ok", good, "ok", now_ms=T0 + ten_minutes),
        ],
    }


def main() -> int:
    """Rewrite the vector file; print its path and digest."""
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
