"""Failure behaviour of the Noise state machine: typed errors, then refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import DecodeError, LocalProtocolError, Reason, RemoteProtocolError
from protocol.handshake import CipherState, HandshakeState, KeyPair, Role

NAME = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b"
PSK = bytes(range(32))


def pair(n: int) -> KeyPair:
    return KeyPair.from_private(bytes([n]) * 32)


def sides(psk_i: bytes = PSK, psk_r: bytes = PSK) -> tuple[HandshakeState, HandshakeState]:
    initiator = HandshakeState(
        protocol_name=NAME, role=Role.INITIATOR, prologue=b"p", s=pair(1), e=pair(2), psks=[psk_i]
    )
    responder = HandshakeState(
        protocol_name=NAME, role=Role.RESPONDER, prologue=b"p", s=pair(3), e=pair(4), psks=[psk_r]
    )
    return initiator, responder


def complete() -> tuple[HandshakeState, HandshakeState, list[bytes]]:
    initiator, responder = sides()
    wire = [initiator.write_message(b"one")]
    responder.read_message(wire[0])
    wire.append(responder.write_message(b"two"))
    initiator.read_message(wire[1])
    wire.append(initiator.write_message(b"three"))
    responder.read_message(wire[2])
    return initiator, responder, wire


def test_round_trip_and_identities() -> None:
    initiator, responder, _ = complete()
    assert initiator.remote_static == pair(3).public
    assert responder.remote_static == pair(1).public
    assert initiator.handshake_hash == responder.handshake_hash
    send, _recv = initiator.split()
    _send, recv = responder.split()
    assert recv.decrypt_with_ad(b"", send.encrypt_with_ad(b"", b"hello")) == b"hello"


@given(st.binary(min_size=32, max_size=32))
def test_wrong_psk_fails_on_the_first_message(other: bytes) -> None:
    if other == PSK:
        return
    initiator, responder = sides(psk_i=other)
    with pytest.raises(DecodeError) as info:
        responder.read_message(initiator.write_message(b""))
    assert info.value.reason is Reason.DECRYPT_FAILED
    with pytest.raises(LocalProtocolError):
        responder.write_message(b"")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_any_flipped_byte_fails_typed(index: int) -> None:
    _, _, wire = complete()
    for position in range(len(wire[index])):
        initiator, responder = sides()
        states = [(initiator, responder), (responder, initiator), (initiator, responder)]
        for step in range(index):
            writer, reader = states[step]
            reader.read_message(writer.write_message([b"one", b"two", b"three"][step]))
        writer, reader = states[index]
        message = bytearray(writer.write_message([b"one", b"two", b"three"][index]))
        message[position] ^= 0x40
        with pytest.raises(DecodeError):
            reader.read_message(bytes(message))


@given(st.binary(max_size=200))
def test_arbitrary_first_message_fails_typed(data: bytes) -> None:
    _, responder = sides()
    with pytest.raises(RemoteProtocolError):
        responder.read_message(data)


def test_truncated_and_oversized() -> None:
    initiator, responder = sides()
    first = initiator.write_message(b"")
    with pytest.raises(DecodeError) as info:
        responder.read_message(first[:20])
    assert info.value.reason is Reason.MALFORMED
    _, responder = sides()
    with pytest.raises(DecodeError) as info:
        responder.read_message(bytes(70_000))
    assert info.value.reason is Reason.MALFORMED


def test_out_of_turn_and_misuse() -> None:
    initiator, responder = sides()
    with pytest.raises(LocalProtocolError):
        responder.write_message(b"")
    with pytest.raises(LocalProtocolError):
        initiator.read_message(b"x" * 64)
    with pytest.raises(LocalProtocolError):
        initiator.split()
    with pytest.raises(LocalProtocolError):
        HandshakeState(protocol_name="Noise_XX1_25519_ChaChaPoly_BLAKE2b", role=Role.INITIATOR)
    with pytest.raises(LocalProtocolError):
        HandshakeState(protocol_name="Noise_XX_448_AESGCM_SHA256", role=Role.INITIATOR)
    with pytest.raises(LocalProtocolError):
        HandshakeState(protocol_name=NAME, role=Role.INITIATOR, psks=[])
    initiator, _, _ = complete()
    with pytest.raises(LocalProtocolError):
        initiator.write_message(b"")


def test_low_order_ephemeral_is_refused() -> None:
    initiator, responder = sides()
    first = bytearray(initiator.write_message(b""))
    # Replace the ephemeral key by a low-order point: the DH result would be zero.
    first[:32] = bytes(32)
    with pytest.raises(DecodeError):
        responder.read_message(bytes(first))


def test_transport_rekey_and_bad_tags() -> None:
    initiator, responder, _ = complete()
    send, _ = initiator.split()
    _, recv = responder.split()
    for _ in range(3):
        assert recv.decrypt_with_ad(b"ad", send.encrypt_with_ad(b"ad", b"m")) == b"m"
    send.rekey()
    recv.rekey()
    ciphertext = send.encrypt_with_ad(b"", b"after rekey")
    with pytest.raises(DecodeError) as info:
        recv.decrypt_with_ad(b"", ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]))
    assert info.value.reason is Reason.DECRYPT_FAILED
    assert recv.decrypt_with_ad(b"", ciphertext) == b"after rekey"  # nonce unchanged on failure
    with pytest.raises(DecodeError):
        recv.decrypt_with_ad(b"", b"short")
    with pytest.raises(LocalProtocolError):
        CipherState().rekey()
