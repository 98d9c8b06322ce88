"""LAN discovery beacons, sans-I/O: sealed so that only members can read them (SPEC §15).

A node that announces itself on its network segment (UDP multicast, driven by
`node/net/lan.py`) must not tell outsiders which community it belongs to, who
it is, or even that two beacons came from the same node. So a beacon carries
nothing in clear but a random nonce: everything else is sealed with
XChaCha20-Poly1305 (libsodium) under a *beacon key* derived from the community
key with keyed BLAKE2b (libsodium's KDF construction: key = community key,
personal = the protocol's label, message = community id). Every beacon has the
same length whatever the community, so the length tells nothing either.

What a member learns from a beacon (the TCP port to dial at the datagram's
source address, and a random per-process instance tag that lets a node ignore
its own beacons) is *hearsay*, like peer exchange: the handshake (SPEC §10)
confirms membership. Who holds the community key can forge beacons; it can
also complete handshakes, so a forged beacon costs members at most a dial,
which `node/net/lan.py` rate-limits.

Nothing here does I/O, reads a clock or draws randomness: the shell passes the
nonce, the instance tag and the time in.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash

from protocol.channel import Community
from protocol.errors import DecodeError, LocalProtocolError, Reason

__all__ = [
    "BEACON_BYTES",
    "BEACON_VERSION",
    "INSTANCE_BYTES",
    "MAX_BEACON_AGE_MS",
    "NONCE_BYTES",
    "Beacon",
    "beacon_key",
    "open_beacon",
    "seal_beacon",
]

BEACON_VERSION = 1
NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
INSTANCE_BYTES = 8
_TAG_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
# version (1) || port (2) || instance (8) || sent_at_ms (8), all big-endian
_PLAINTEXT_BYTES = 1 + 2 + INSTANCE_BYTES + 8
BEACON_BYTES = NONCE_BYTES + _PLAINTEXT_BYTES + _TAG_BYTES  # 59
# A beacon older (or newer) than this is refused: a recorded one replayed later
# cannot send members dialling an address that is long gone. Generous, because
# the clocks of two machines on one segment need not agree closely.
MAX_BEACON_AGE_MS = 10 * 60 * 1000
_PERSONAL = b"tn-lan-beacon-v1"  # 16 bytes: BLAKE2b's personalisation
_AD = b"trustnode/lan-beacon/v1\x00"


@dataclass(frozen=True, slots=True, kw_only=True)
class Beacon:
    """What a beacon tells a member: dial the sender's address on `port`."""

    port: int
    instance: bytes  # random per process: a node recognises (and ignores) its own
    sent_at_ms: int

    def __post_init__(self) -> None:
        if type(self.port) is not int or not 1 <= self.port <= 65535:
            raise LocalProtocolError("a beacon's port is in 1..65535")
        if type(self.instance) is not bytes or len(self.instance) != INSTANCE_BYTES:
            raise LocalProtocolError(f"a beacon's instance tag has {INSTANCE_BYTES} bytes")
        if type(self.sent_at_ms) is not int or not 0 <= self.sent_at_ms < 2**63:
            raise LocalProtocolError("a beacon's time is in 0..2**63-1 ms")


def beacon_key(community_key: bytes, community_id: bytes) -> bytes:
    """The 32-byte key that seals a community's beacons (SPEC §15.1).

    `BLAKE2b-256(key = community_key, personal = "tn-lan-beacon-v1",
    message = community_id)`: a key of its own, so a beacon never uses the
    handshake's PSK directly, and one community key never seals beacons of two
    communities alike.
    """
    digest: bytes = nacl.hash.blake2b(
        community_id,
        digest_size=32,
        key=community_key,
        person=_PERSONAL,
        encoder=nacl.encoding.RawEncoder,
    )
    return digest


def seal_beacon(beacon: Beacon, *, community: Community, nonce: bytes) -> bytes:
    """The datagram announcing `beacon`, sealed under the current community key.

    `nonce` (24 random bytes) must be fresh for every beacon: it is the only
    clear part, and a repeated one would let an outsider link two beacons.
    """
    if type(nonce) is not bytes or len(nonce) != NONCE_BYTES:
        raise LocalProtocolError(f"a beacon nonce has {NONCE_BYTES} bytes")
    plaintext = (
        bytes([BEACON_VERSION])
        + beacon.port.to_bytes(2, "big")
        + beacon.instance
        + beacon.sent_at_ms.to_bytes(8, "big")
    )
    key = beacon_key(community.key, community.id)
    sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, _AD, nonce, key
    )
    return nonce + sealed


def open_beacon(datagram: bytes, *, community: Community, now_ms: int) -> Beacon | None:
    """The beacon in `datagram` if a member of `community` sealed it, else None.

    None is the normal answer to a beacon of another community (or any other
    datagram of the right length): it cannot be told from noise, by design.
    Every key of `community` is tried (the previous one during a rotation).

    Raises:
        DecodeError: `malformed` for a datagram of the wrong length;
            `unknown_version` for a member's beacon of another version;
            `expired` / `from_future` for one sent more than
            `MAX_BEACON_AGE_MS` before / after `now_ms` (a replay, or a clock
            far off).
    """
    if type(datagram) is not bytes or len(datagram) != BEACON_BYTES:
        raise DecodeError(Reason.MALFORMED, f"a beacon has {BEACON_BYTES} bytes")
    nonce, sealed = datagram[:NONCE_BYTES], datagram[NONCE_BYTES:]
    plaintext = None
    for key in community.keys:
        try:
            plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed, _AD, nonce, beacon_key(key, community.id)
            )
        except nacl.exceptions.CryptoError:
            continue
        break
    if plaintext is None:
        return None
    if plaintext[0] != BEACON_VERSION:
        raise DecodeError(Reason.UNKNOWN_VERSION, f"beacon version {plaintext[0]}")
    port = int.from_bytes(plaintext[1:3], "big")
    instance = plaintext[3 : 3 + INSTANCE_BYTES]
    sent_at_ms = int.from_bytes(plaintext[3 + INSTANCE_BYTES :], "big")
    if port == 0 or sent_at_ms >= 2**63:
        raise DecodeError(Reason.OUT_OF_RANGE, "a beacon's port is 1..65535, its time < 2**63")
    if sent_at_ms < now_ms - MAX_BEACON_AGE_MS:
        raise DecodeError(Reason.EXPIRED, "a beacon sent more than 10 min ago")
    if sent_at_ms > now_ms + MAX_BEACON_AGE_MS:
        raise DecodeError(Reason.FROM_FUTURE, "a beacon sent more than 10 min from now")
    return Beacon(port=port, instance=instance, sent_at_ms=sent_at_ms)
