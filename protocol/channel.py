"""trustnode's secure channel, sans-I/O: the community handshake and encrypted records.

Handshake (SPEC §10): `Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b` with the community
key as PSK, so an outsider's very first message fails its AEAD check; the
prologue binds the protocol version and the community id. Each side proves its
Ed25519 identity by signing its Noise static key, inside the encrypted payload
of its `s` message, so after three messages both sides hold the other's
*verified* identity. Transport (SPEC §11): records of at most 65535 bytes, a
close record for a clean end, and a rekey every 2**20 records per direction.

Nothing here does I/O, reads a clock or draws randomness: the shell
(`node/net/transport.py`) frames handshake messages, enforces timeouts and passes
in fresh X25519 keys.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from protocol.errors import DecodeError, LocalProtocolError, Reason, VerificationError
from protocol.events import END_OF_STREAM, NEED_DATA, EndOfStream, NeedData
from protocol.handshake import (
    MAX_MESSAGE_BYTES,
    TAG_BYTES,
    CipherState,
    HandshakeState,
    KeyPair,
    Role,
)
from protocol.identity import IdentityId, IdentityKey

__all__ = [
    "COMMUNITY_ID_BYTES",
    "COMMUNITY_KEY_BYTES",
    "MAX_RECORD_PLAINTEXT",
    "NOISE_PROTOCOL",
    "REKEY_INTERVAL",
    "ChannelHandshake",
    "ChannelKeys",
    "ChannelRecords",
    "Community",
    "frame_handshake_message",
]

NOISE_PROTOCOL = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b"
COMMUNITY_ID_BYTES = 32
COMMUNITY_KEY_BYTES = 32
PROLOGUE_DOMAIN = b"trustnode/channel/v1\x00"
STATIC_DOMAIN = b"trustnode/noise-static/v1\x00"
_PROOF_BYTES = 32 + 64  # identity || signature
LENGTH_BYTES = 2
MAX_RECORD_PLAINTEXT = MAX_MESSAGE_BYTES - TAG_BYTES
REKEY_INTERVAL = 2**20


@dataclass(frozen=True, slots=True)
class Community:
    """A community: a public id and the key that admits members (SPEC §10.1).

    `keys` holds the current key first; during a rotation a node may also
    accept connections made with the previous one.
    """

    id: bytes
    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if type(self.id) is not bytes or len(self.id) != COMMUNITY_ID_BYTES:
            raise LocalProtocolError("a community id has 32 bytes")
        if not self.keys or any(
            type(k) is not bytes or len(k) != COMMUNITY_KEY_BYTES for k in self.keys
        ):
            raise LocalProtocolError("a community needs one or more 32-byte keys")

    @property
    def key(self) -> bytes:
        """The current key: the one we connect with."""
        return self.keys[0]

    @property
    def prologue(self) -> bytes:
        """What both sides hash into the handshake before its first message."""
        return PROLOGUE_DOMAIN + self.id


@dataclass(frozen=True, slots=True)
class ChannelKeys:
    """The outcome of a handshake: who the peer is and the transport cipher states."""

    peer: IdentityId
    handshake_hash: bytes
    send: CipherState
    receive: CipherState


class _Step(enum.Enum):
    SEND_1 = 1
    RECEIVE_1 = 2
    SEND_2 = 3
    RECEIVE_2 = 4
    SEND_3 = 5
    RECEIVE_3 = 6
    DONE = 7
    FAILED = 8


def _static_proof(identity_key: IdentityKey, community: Community, static: KeyPair) -> bytes:
    message = STATIC_DOMAIN + community.id + static.public
    return identity_key.identity + identity_key.sign(message)


def _verify_proof(payload: bytes, community: Community, remote_static: bytes) -> IdentityId:
    if len(payload) != _PROOF_BYTES:
        raise DecodeError(Reason.BAD_HANDSHAKE, f"identity proof of {len(payload)} bytes")
    identity, signature = payload[:32], payload[32:]
    signed = signature + STATIC_DOMAIN + community.id + remote_static
    try:
        nacl.bindings.crypto_sign_open(signed, identity)
    except nacl.exceptions.BadSignatureError:
        raise VerificationError(
            Reason.BAD_HANDSHAKE, "the peer's identity does not sign its Noise key"
        ) from None
    return IdentityId(identity)


class ChannelHandshake:
    """One side of the three-message community handshake.

    Initiator: `start()` -> message 1; `receive(message 2)` -> message 3; done.
    Responder: `receive(message 1)` -> message 2; `receive(message 3)` -> b""; done.
    Then `keys` holds the peer's verified identity and the cipher states.
    Any failure leaves the object FAILED; the shell must close the connection.
    """

    def __init__(
        self,
        *,
        role: Role,
        community: Community,
        identity_key: IdentityKey,
        static: KeyPair,
        ephemeral: KeyPair,
    ) -> None:
        self._role = role
        self._community = community
        self._identity_key = identity_key
        self._static = static
        self._ephemeral = ephemeral
        self._noise: HandshakeState | None = None
        self._keys: ChannelKeys | None = None
        self._step = _Step.SEND_1 if role is Role.INITIATOR else _Step.RECEIVE_1
        if role is Role.INITIATOR:
            self._noise = self._new_noise(community.key)

    def _new_noise(self, psk: bytes) -> HandshakeState:
        return HandshakeState(
            protocol_name=NOISE_PROTOCOL,
            role=self._role,
            prologue=self._community.prologue,
            s=self._static,
            e=self._ephemeral,
            psks=[psk],
        )

    @property
    def is_complete(self) -> bool:
        """Whether the handshake succeeded."""
        return self._step is _Step.DONE

    @property
    def keys(self) -> ChannelKeys:
        """The peer's identity and transport keys, once complete.

        Raises:
            LocalProtocolError: the handshake is not complete.
        """
        if self._keys is None:
            raise LocalProtocolError("the handshake is not complete")
        return self._keys

    def start(self) -> bytes:
        """The initiator's first message (empty payload, protected by the PSK)."""
        self._expect(_Step.SEND_1)
        assert self._noise is not None
        self._step = _Step.RECEIVE_2
        return self._noise.write_message(b"")

    def receive(self, message: bytes) -> bytes:
        """Consume the peer's message; return ours to send next (b"" if none).

        Raises:
            DecodeError: `MALFORMED`, `DECRYPT_FAILED` (wrong community key,
                tampering, replay) or `BAD_HANDSHAKE`.
            VerificationError: `BAD_HANDSHAKE` when the identity proof fails.
            LocalProtocolError: out of order or after a failure.
        """
        if self._step not in (_Step.RECEIVE_1, _Step.RECEIVE_2, _Step.RECEIVE_3):
            raise LocalProtocolError(f"not expecting a message in state {self._step.name}")
        try:
            return self._receive(message)
        except (DecodeError, VerificationError):
            self._step = _Step.FAILED
            raise

    def _receive(self, message: bytes) -> bytes:
        if self._step is _Step.RECEIVE_1:
            self._noise = self._first_message(message)
            self._step = _Step.RECEIVE_3
            return self._noise.write_message(
                _static_proof(self._identity_key, self._community, self._static)
            )
        assert self._noise is not None
        proof = self._noise.read_message(message)
        assert self._noise.remote_static is not None
        peer = _verify_proof(proof, self._community, self._noise.remote_static)
        reply = b""
        if self._step is _Step.RECEIVE_2:
            reply = self._noise.write_message(
                _static_proof(self._identity_key, self._community, self._static)
            )
        self._finish(peer)
        return reply

    def _first_message(self, message: bytes) -> HandshakeState:
        """Read message 1 with each accepted key in turn (key rotation)."""
        failure: DecodeError | None = None
        for psk in self._community.keys:
            noise = self._new_noise(psk)
            try:
                noise.read_message(message)
            except DecodeError as exc:
                failure = exc
                continue
            return noise
        assert failure is not None
        raise failure

    def _finish(self, peer: IdentityId) -> None:
        assert self._noise is not None
        assert self._noise.is_complete
        send, receive = self._noise.split()
        self._keys = ChannelKeys(
            peer=peer, handshake_hash=self._noise.handshake_hash, send=send, receive=receive
        )
        self._step = _Step.DONE

    def _expect(self, step: _Step) -> None:
        if self._step is not step:
            raise LocalProtocolError(f"expected {step.name}, in {self._step.name}")


def frame_handshake_message(message: bytes) -> bytes:
    """A handshake message on the wire: 2-byte big-endian length, then the message."""
    return len(message).to_bytes(LENGTH_BYTES, "big") + message


class ChannelRecords:
    """Encrypted records after the handshake (SPEC §11), sans-I/O.

    `encrypt(data)` cuts outgoing bytes into records; `receive_data` and
    `next_event` turn incoming records back into plaintext. A record is a
    2-byte length and ChaCha20-Poly1305 ciphertext; an empty plaintext is the
    close record. Both directions rekey every `rekey_interval` records.
    """

    def __init__(self, keys: ChannelKeys, *, rekey_interval: int = REKEY_INTERVAL) -> None:
        if rekey_interval < 1:
            raise LocalProtocolError("rekey_interval must be positive")
        self._send = keys.send
        self._receive = keys.receive
        self._rekey_interval = rekey_interval
        self._sent = 0
        self._received = 0
        self._buffer = bytearray()
        self._closed_by_peer = False
        self._failed = False

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet returned."""
        return len(self._buffer)

    def encrypt(self, data: bytes) -> bytes:
        """Records carrying `data` (nothing for empty data: empty means close)."""
        out = bytearray()
        view = memoryview(data)
        for start in range(0, len(view), MAX_RECORD_PLAINTEXT):
            out += self._record(bytes(view[start : start + MAX_RECORD_PLAINTEXT]))
        return bytes(out)

    def close(self) -> bytes:
        """The close record: tells the peer the channel ends cleanly here."""
        return self._record(b"")

    def _record(self, plaintext: bytes) -> bytes:
        ciphertext = self._send.encrypt_with_ad(b"", plaintext)
        self._sent += 1
        if self._sent % self._rekey_interval == 0:
            self._send.rekey()
        return len(ciphertext).to_bytes(LENGTH_BYTES, "big") + ciphertext

    def receive_data(self, data: bytes) -> None:
        """Append received bytes; call `next_event` until NeedData before feeding more."""
        if self._failed:
            raise LocalProtocolError("the channel failed; close it")
        self._buffer += data

    def next_event(self) -> bytes | NeedData | EndOfStream:
        """Plaintext of the next record, `NEED_DATA`, or `END_OF_STREAM`.

        Raises:
            DecodeError: `DECRYPT_FAILED` (tampered, replayed, reordered or
                truncated record), `MALFORMED` (a length below the tag size,
                or bytes after the close record).
        """
        if self._failed:
            raise LocalProtocolError("the channel failed; close it")
        try:
            return self._next()
        except DecodeError:
            self._failed = True
            raise

    def _next(self) -> bytes | NeedData | EndOfStream:
        if self._closed_by_peer:
            if self._buffer:
                raise DecodeError(Reason.MALFORMED, "bytes after the close record")
            return END_OF_STREAM
        if len(self._buffer) < LENGTH_BYTES:
            return NEED_DATA
        length = int.from_bytes(self._buffer[:LENGTH_BYTES], "big")
        if length < TAG_BYTES:
            raise DecodeError(Reason.MALFORMED, f"record of {length} bytes")
        if len(self._buffer) < LENGTH_BYTES + length:
            return NEED_DATA
        ciphertext = bytes(self._buffer[LENGTH_BYTES : LENGTH_BYTES + length])
        del self._buffer[: LENGTH_BYTES + length]
        plaintext = self._receive.decrypt_with_ad(b"", ciphertext)
        self._received += 1
        if self._received % self._rekey_interval == 0:
            self._receive.rekey()
        if not plaintext:
            self._closed_by_peer = True
            return self._next()
        return plaintext
