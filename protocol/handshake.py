"""The Noise Protocol Framework (revision 34), suite 25519 / ChaChaPoly / BLAKE2b.

Built only from libsodium primitives through PyNaCl (X25519, ChaCha20-Poly1305
IETF) and the standard library's BLAKE2b with RFC 2104 HMAC, as the Noise
specification defines them; no primitive is written by hand. This module is
sans-I/O and draws no randomness: ephemeral private keys are arguments, so the
official test vectors replay byte for byte (tests/vectors/third_party/noise/).

It implements the fundamental one-way and interactive patterns and the `psk`
modifiers. Deferred patterns (X1X, ...) are refused. Every failure on received
bytes raises `DecodeError` (`MALFORMED` for truncated or oversized input,
`DECRYPT_FAILED` for a failed AEAD tag, `BAD_HANDSHAKE` for a degenerate DH);
after one, the handshake object refuses any further use.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from protocol.errors import DecodeError, LocalProtocolError, Reason

__all__ = [
    "DH_BYTES",
    "MAX_MESSAGE_BYTES",
    "TAG_BYTES",
    "CipherState",
    "HandshakeState",
    "KeyPair",
    "Role",
]

DH_BYTES = 32
HASH_BYTES = 64
KEY_BYTES = 32
TAG_BYTES = 16
MAX_MESSAGE_BYTES = 65535
_MAX_NONCE = 2**64 - 1
_SUITE = "_25519_ChaChaPoly_BLAKE2b"

# Pre-messages and message patterns of the fundamental patterns (Noise §7.4, §7.5).
_PATTERNS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    "N": ((), ("s",), (("e", "es"),)),
    "K": (("s",), ("s",), (("e", "es", "ss"),)),
    "X": ((), ("s",), (("e", "es", "s", "ss"),)),
    "NN": ((), (), (("e",), ("e", "ee"))),
    "NK": ((), ("s",), (("e", "es"), ("e", "ee"))),
    "NX": ((), (), (("e",), ("e", "ee", "s", "es"))),
    "XN": ((), (), (("e",), ("e", "ee"), ("s", "se"))),
    "XK": ((), ("s",), (("e", "es"), ("e", "ee"), ("s", "se"))),
    "XX": ((), (), (("e",), ("e", "ee", "s", "es"), ("s", "se"))),
    "KN": (("s",), (), (("e",), ("e", "ee", "se"))),
    "KK": (("s",), ("s",), (("e", "es", "ss"), ("e", "ee", "se"))),
    "KX": (("s",), (), (("e",), ("e", "ee", "se", "s", "es"))),
    "IN": ((), (), (("e", "s"), ("e", "ee", "se"))),
    "IK": ((), ("s",), (("e", "es", "s", "ss"), ("e", "ee", "se"))),
    "IX": ((), (), (("e", "s"), ("e", "ee", "se", "s", "es"))),
}


class Role(enum.Enum):
    """Which side of the handshake we are."""

    INITIATOR = "initiator"
    RESPONDER = "responder"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An X25519 key pair; `from_private` derives the public key."""

    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        """Derive the pair from a 32-byte private key (clamped by X25519 itself)."""
        if type(private) is not bytes or len(private) != DH_BYTES:
            raise LocalProtocolError("an X25519 private key has 32 bytes")
        return cls(private, nacl.bindings.crypto_scalarmult_base(private))

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public.hex()[:16]}…)"


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    # RFC 2104 HMAC over BLAKE2b (block 128 bytes), not BLAKE2b's keyed mode (Noise §4.3).
    return hmac.new(key, data, hashlib.blake2b).digest()


def _hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> list[bytes]:
    temp_key = _hmac(chaining_key, ikm)
    results, previous = [], b""
    for index in range(1, outputs + 1):
        previous = _hmac(temp_key, previous + bytes([index]))
        results.append(previous)
    return results


def _dh(private: bytes, public: bytes) -> bytes:
    try:
        return nacl.bindings.crypto_scalarmult(private, public)
    except nacl.exceptions.RuntimeError:
        # libsodium refuses a low-order point (an all-zero shared secret).
        raise DecodeError(Reason.BAD_HANDSHAKE, "degenerate Diffie-Hellman result") from None


class CipherState:
    """A ChaCha20-Poly1305 key and its 64-bit nonce counter (Noise §5.1)."""

    __slots__ = ("_key", "_nonce")

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key
        self._nonce = 0

    @property
    def has_key(self) -> bool:
        """Whether encryption is on (before the first MixKey it is not)."""
        return self._key is not None

    @property
    def nonce(self) -> int:
        """The next nonce; the caller may check it against a rekey policy."""
        return self._nonce

    def _iv(self, nonce: int) -> bytes:
        return bytes(4) + nonce.to_bytes(8, "little")

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """Encrypt and advance the nonce (identity when there is no key yet).

        Raises:
            LocalProtocolError: the nonce space is exhausted (2**64 - 1 messages).
        """
        if self._key is None:
            return plaintext
        if self._nonce >= _MAX_NONCE:
            raise LocalProtocolError("nonce exhausted: rekey or start a new session")
        ciphertext = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            plaintext, ad, self._iv(self._nonce), self._key
        )
        self._nonce += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Decrypt and advance the nonce; a bad tag leaves the nonce unchanged.

        Raises:
            DecodeError: `DECRYPT_FAILED` for a bad tag or a too-short input.
            LocalProtocolError: the nonce space is exhausted.
        """
        if self._key is None:
            return ciphertext
        if self._nonce >= _MAX_NONCE:
            raise LocalProtocolError("nonce exhausted: rekey or start a new session")
        if len(ciphertext) < TAG_BYTES:
            raise DecodeError(Reason.DECRYPT_FAILED, f"ciphertext of {len(ciphertext)} bytes")
        try:
            plaintext = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
                ciphertext, ad, self._iv(self._nonce), self._key
            )
        except nacl.exceptions.CryptoError:
            raise DecodeError(
                Reason.DECRYPT_FAILED, f"AEAD check failed ({len(ciphertext)} bytes)"
            ) from None
        self._nonce += 1
        return plaintext

    def rekey(self) -> None:
        """Replace the key by one derived from it (Noise §11.3); the nonce carries on."""
        if self._key is None:
            raise LocalProtocolError("no key to rekey")
        zeros = bytes(KEY_BYTES)
        self._key = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            zeros, b"", self._iv(_MAX_NONCE), self._key
        )[:KEY_BYTES]


class _SymmetricState:
    """Chaining key, handshake hash and the handshake's CipherState (Noise §5.2)."""

    __slots__ = ("_cipher", "chaining_key", "handshake_hash")

    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASH_BYTES:
            self.handshake_hash = protocol_name.ljust(HASH_BYTES, b"\x00")
        else:
            self.handshake_hash = _hash(protocol_name)
        self.chaining_key = self.handshake_hash
        self._cipher = CipherState()

    @property
    def has_key(self) -> bool:
        return self._cipher.has_key

    def mix_key(self, ikm: bytes) -> None:
        self.chaining_key, temp_key = _hkdf(self.chaining_key, ikm, 2)
        self._cipher = CipherState(temp_key[:KEY_BYTES])

    def mix_hash(self, data: bytes) -> None:
        self.handshake_hash = _hash(self.handshake_hash + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.chaining_key, temp_hash, temp_key = _hkdf(self.chaining_key, ikm, 3)
        self.mix_hash(temp_hash)
        self._cipher = CipherState(temp_key[:KEY_BYTES])

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self._cipher.encrypt_with_ad(self.handshake_hash, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self._cipher.decrypt_with_ad(self.handshake_hash, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        first, second = _hkdf(self.chaining_key, b"", 2)
        return CipherState(first[:KEY_BYTES]), CipherState(second[:KEY_BYTES])


def _parse_name(protocol_name: str) -> tuple[str, tuple[int, ...]]:
    """Split `Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2b` into ("XX", (0, 3))."""
    if not protocol_name.startswith("Noise_") or not protocol_name.endswith(_SUITE):
        raise LocalProtocolError(f"unsupported protocol {protocol_name!r}")
    handshake = protocol_name[len("Noise_") : -len(_SUITE)]
    base = handshake.split("psk", 1)[0]
    psks: list[int] = []
    if base != handshake:
        for modifier in handshake[len(base) :].split("+"):
            number = modifier.removeprefix("psk")
            if not modifier.startswith("psk") or not number.isdigit():
                raise LocalProtocolError(f"unsupported modifier {modifier!r}")
            psks.append(int(number))
    if base not in _PATTERNS:
        raise LocalProtocolError(f"unsupported handshake pattern {base!r}")
    return base, tuple(psks)


def _with_psks(
    messages: tuple[tuple[str, ...], ...], psks: tuple[int, ...]
) -> list[tuple[str, ...]]:
    patterns = [list(message) for message in messages]
    for position in psks:
        if position == 0:
            patterns[0].insert(0, "psk")
        elif position <= len(patterns):
            patterns[position - 1].append("psk")
        else:
            raise LocalProtocolError(f"psk{position} is beyond the pattern's messages")
    return [tuple(message) for message in patterns]


class HandshakeState:
    """One side of a Noise handshake (Noise §5.3), driven message by message.

    Create it with everything the pattern needs for this role; call
    `write_message` and `read_message` in turn; when `is_complete`, `split()`
    returns the (send, receive) cipher states for transport messages.
    """

    def __init__(
        self,
        *,
        protocol_name: str,
        role: Role,
        prologue: bytes = b"",
        s: KeyPair | None = None,
        e: KeyPair | None = None,
        rs: bytes | None = None,
        re: bytes | None = None,
        psks: Sequence[bytes] = (),
    ) -> None:
        base, psk_positions = _parse_name(protocol_name)
        pre_initiator, pre_responder, messages = _PATTERNS[base]
        if len(psks) != len(psk_positions) or any(len(p) != KEY_BYTES for p in psks):
            raise LocalProtocolError(f"{protocol_name} needs {len(psk_positions)} 32-byte psks")
        self._role = role
        self._s, self._e, self._rs, self._re = s, e, rs, re
        self._psks = list(psks)
        self._psk_mode = bool(psk_positions)
        self._messages = _with_psks(messages, psk_positions)
        self._index = 0
        self._failed = False
        self._split: tuple[CipherState, CipherState] | None = None
        self._symmetric = _SymmetricState(protocol_name.encode("ascii"))
        self._symmetric.mix_hash(prologue)
        self._mix_pre_messages(pre_initiator, pre_responder)

    def _mix_pre_messages(self, initiator: tuple[str, ...], responder: tuple[str, ...]) -> None:
        # The initiator's pre-message keys are hashed first, whichever side we are.
        for symbols, of_initiator in ((initiator, True), (responder, False)):
            ours = of_initiator == self._is_initiator
            for symbol in symbols:
                key = self._local_public(symbol) if ours else self._remote_public(symbol)
                self._symmetric.mix_hash(key)

    def _local_public(self, symbol: str) -> bytes:
        pair = self._s if symbol == "s" else self._e
        if pair is None:
            raise LocalProtocolError(f"the pattern needs our {symbol!r} key")
        return pair.public

    def _remote_public(self, symbol: str) -> bytes:
        key = self._rs if symbol == "s" else self._re
        if key is None:
            raise LocalProtocolError(f"the pattern needs the peer's {symbol!r} key")
        return key

    @property
    def _is_initiator(self) -> bool:
        return self._role is Role.INITIATOR

    @property
    def is_complete(self) -> bool:
        """Whether every handshake message has been written or read."""
        return self._index >= len(self._messages)

    @property
    def is_my_turn(self) -> bool:
        """Whether the next handshake message is ours to write."""
        initiator_turn = self._index % 2 == 0
        return not self.is_complete and initiator_turn == self._is_initiator

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key, once known (pre-message or received)."""
        return self._rs

    @property
    def handshake_hash(self) -> bytes:
        """The transcript hash `h`, for channel binding (final once complete)."""
        return self._symmetric.handshake_hash

    def _check_usable(self, *, writing: bool) -> None:
        if self._failed:
            raise LocalProtocolError("the handshake failed; start a new one")
        if self.is_complete:
            raise LocalProtocolError("the handshake is complete")
        if self.is_my_turn != writing:
            raise LocalProtocolError("not our turn to " + ("write" if writing else "read"))

    def write_message(self, payload: bytes = b"") -> bytes:
        """Produce our next handshake message carrying `payload`.

        Raises:
            LocalProtocolError: out of turn, after a failure, a missing key, or
                a message over 65535 bytes.
        """
        self._check_usable(writing=True)
        buffer = bytearray()
        for symbol in self._messages[self._index]:
            buffer += self._write_token(symbol)
        buffer += self._symmetric.encrypt_and_hash(payload)
        if len(buffer) > MAX_MESSAGE_BYTES:
            raise LocalProtocolError("a Noise message has at most 65535 bytes")
        self._advance()
        return bytes(buffer)

    def read_message(self, message: bytes) -> bytes:
        """Consume the peer's next handshake message; return its payload.

        Raises:
            DecodeError: `MALFORMED` (too short or too long), `DECRYPT_FAILED`
                or `BAD_HANDSHAKE`; the object is then unusable.
            LocalProtocolError: out of turn or after a failure.
        """
        self._check_usable(writing=False)
        try:
            if len(message) > MAX_MESSAGE_BYTES:
                raise DecodeError(Reason.MALFORMED, f"handshake message of {len(message)} bytes")
            rest = memoryview(message)
            for symbol in self._messages[self._index]:
                rest = self._read_token(symbol, rest)
            payload = self._symmetric.decrypt_and_hash(bytes(rest))
        except DecodeError:
            self._failed = True
            raise
        self._advance()
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """The (send, receive) cipher states for transport messages.

        Raises:
            LocalProtocolError: the handshake is not complete.
        """
        if self._split is None:
            raise LocalProtocolError("the handshake is not complete")
        # The first key protects initiator-to-responder messages (all of them,
        # in one-way patterns), the second the other direction.
        first, second = self._split
        return (first, second) if self._is_initiator else (second, first)

    def _advance(self) -> None:
        self._index += 1
        if self.is_complete:
            self._split = self._symmetric.split()

    def _write_token(self, symbol: str) -> bytes:
        symmetric = self._symmetric
        if symbol == "e":
            if self._e is None:
                raise LocalProtocolError("the pattern needs an ephemeral key: pass e=")
            symmetric.mix_hash(self._e.public)
            if self._psk_mode:
                symmetric.mix_key(self._e.public)
            return self._e.public
        if symbol == "s":
            if self._s is None:
                raise LocalProtocolError("the pattern needs our static key: pass s=")
            return symmetric.encrypt_and_hash(self._s.public)
        self._mix_token(symbol)
        return b""

    def _read_token(self, symbol: str, rest: memoryview) -> memoryview:
        symmetric = self._symmetric
        if symbol == "e":
            if len(rest) < DH_BYTES:
                raise DecodeError(Reason.MALFORMED, "handshake message too short for a key")
            self._re = bytes(rest[:DH_BYTES])
            symmetric.mix_hash(self._re)
            if self._psk_mode:
                symmetric.mix_key(self._re)
            return rest[DH_BYTES:]
        if symbol == "s":
            size = DH_BYTES + (TAG_BYTES if symmetric.has_key else 0)
            if len(rest) < size:
                raise DecodeError(Reason.MALFORMED, "handshake message too short for a key")
            self._rs = symmetric.decrypt_and_hash(bytes(rest[:size]))
            return rest[size:]
        self._mix_token(symbol)
        return rest

    def _mix_token(self, symbol: str) -> None:
        if symbol == "psk":
            self._symmetric.mix_key_and_hash(self._psks.pop(0))
            return
        # "es": initiator's ephemeral with responder's static, whoever computes it.
        local, remote = symbol[0], symbol[1]
        if not self._is_initiator:
            local, remote = remote, local
        pair = self._s if local == "s" else self._e
        public = self._rs if remote == "s" else self._re
        if pair is None or public is None:
            raise LocalProtocolError(f"symbol {symbol!r} needs keys we do not have")
        self._symmetric.mix_key(_dh(pair.private, public))
