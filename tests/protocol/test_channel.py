"""The community handshake and the encrypted records, sans-I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.channel import (
    MAX_RECORD_PLAINTEXT,
    ChannelHandshake,
    ChannelRecords,
    Community,
)
from protocol.errors import (
    DecodeError,
    LocalProtocolError,
    Reason,
    RemoteProtocolError,
    VerificationError,
)
from protocol.events import END_OF_STREAM, NEED_DATA, EndOfStream, NeedData
from protocol.handshake import HandshakeState, KeyPair, Role
from protocol.identity import IdentityKey

ALICE, BOB = IdentityKey.from_seed(bytes([1]) * 32), IdentityKey.from_seed(bytes([2]) * 32)
COMMUNITY = Community(id=bytes(range(32)), keys=(bytes([7]) * 32,))


def pair(n: int) -> KeyPair:
    return KeyPair.from_private(bytes([n]) * 32)


def handshakes(
    community_i: Community = COMMUNITY, community_r: Community = COMMUNITY, *, salt: int = 0
) -> tuple[ChannelHandshake, ChannelHandshake]:
    initiator = ChannelHandshake(
        role=Role.INITIATOR, community=community_i, identity_key=ALICE,
        static=pair(10), ephemeral=pair(11 + salt),
    )  # fmt: skip
    responder = ChannelHandshake(
        role=Role.RESPONDER, community=community_r, identity_key=BOB,
        static=pair(20), ephemeral=pair(21 + salt),
    )  # fmt: skip
    return initiator, responder


def run(initiator: ChannelHandshake, responder: ChannelHandshake) -> list[bytes]:
    first = initiator.start()
    second = responder.receive(first)
    third = initiator.receive(second)
    assert responder.receive(third) == b""
    return [first, second, third]


def test_both_sides_learn_the_verified_identity() -> None:
    initiator, responder = handshakes()
    run(initiator, responder)
    assert initiator.keys.peer == BOB.identity
    assert responder.keys.peer == ALICE.identity
    assert initiator.keys.handshake_hash == responder.keys.handshake_hash


def test_wrong_community_key_fails_at_the_first_message() -> None:
    outsider = Community(id=COMMUNITY.id, keys=(bytes([8]) * 32,))
    initiator, responder = handshakes(community_i=outsider)
    with pytest.raises(DecodeError) as info:
        responder.receive(initiator.start())
    assert info.value.reason is Reason.DECRYPT_FAILED
    with pytest.raises(LocalProtocolError):
        responder.receive(b"")


def test_other_community_id_fails_too() -> None:
    other = Community(id=bytes(32), keys=COMMUNITY.keys)
    initiator, responder = handshakes(community_i=other)
    with pytest.raises(DecodeError):
        responder.receive(initiator.start())


def test_rotation_accepts_the_previous_key() -> None:
    old = Community(id=COMMUNITY.id, keys=(bytes([9]) * 32,))
    rotated = Community(id=COMMUNITY.id, keys=(bytes([10]) * 32, old.key))
    initiator, responder = handshakes(community_i=old, community_r=rotated)
    run(initiator, responder)
    assert responder.keys.peer == ALICE.identity


def test_replayed_handshake_fails() -> None:
    transcript = run(*handshakes())
    _, fresh_responder = handshakes(salt=1)  # a new responder ephemeral
    fresh_responder.receive(transcript[0])
    with pytest.raises(DecodeError) as info:
        fresh_responder.receive(transcript[2])
    assert info.value.reason is Reason.DECRYPT_FAILED


def test_identity_proof_for_another_static_key_is_refused() -> None:
    initiator, _ = handshakes()
    # A responder that proves Bob's identity for some other Noise key.
    liar = HandshakeState(
        protocol_name="Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b", role=Role.RESPONDER,
        prologue=COMMUNITY.prologue, s=pair(30), e=pair(31), psks=[COMMUNITY.key],
    )  # fmt: skip
    liar.read_message(initiator.start())
    other = pair(32).public
    proof = BOB.identity + BOB.sign(b"trustnode/noise-static/v1\x00" + COMMUNITY.id + other)
    with pytest.raises(VerificationError) as info:
        initiator.receive(liar.write_message(proof))
    assert info.value.reason is Reason.BAD_HANDSHAKE


@pytest.mark.parametrize("cut", [0, 1, 31, 48])
def test_truncated_messages_fail_typed(cut: int) -> None:
    initiator, responder = handshakes()
    second = responder.receive(initiator.start())
    with pytest.raises(RemoteProtocolError):
        initiator.receive(second[:cut])


@given(st.binary(max_size=200))
def test_any_first_message_fails_typed(data: bytes) -> None:
    _, responder = handshakes()
    with pytest.raises(RemoteProtocolError):
        responder.receive(data)


def records() -> tuple[ChannelRecords, ChannelRecords]:
    initiator, responder = handshakes()
    run(initiator, responder)
    return ChannelRecords(initiator.keys, rekey_interval=3), ChannelRecords(
        responder.keys, rekey_interval=3
    )


def drain(reader: ChannelRecords) -> tuple[bytes, bool]:
    out, ended = bytearray(), False
    while True:
        event = reader.next_event()
        if isinstance(event, NeedData):
            return bytes(out), ended
        if isinstance(event, EndOfStream):
            return bytes(out), True
        out += event


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=10), st.data())
def test_records_survive_any_split_and_rekey(chunks: list[bytes], data: st.DataObject) -> None:
    writer, reader = records()
    stream = b"".join(writer.encrypt(c) for c in chunks) + writer.close()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    got, ended = bytearray(), False
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.receive_data(stream[start:stop])
        part, ended = drain(reader)
        got += part
    assert bytes(got) == b"".join(chunks)
    assert ended


def test_large_writes_are_cut_into_records() -> None:
    writer, reader = records()
    blob = bytes(range(256)) * 600  # 153600 bytes: three records
    reader.receive_data(writer.encrypt(blob))
    assert drain(reader) == (blob, False)
    assert MAX_RECORD_PLAINTEXT == 65519


def test_tampered_reordered_and_trailing_records_fail() -> None:
    writer, reader = records()
    first, second = writer.encrypt(b"one"), writer.encrypt(b"two")
    reader.receive_data(second)  # out of order: wrong nonce
    with pytest.raises(DecodeError) as info:
        reader.next_event()
    assert info.value.reason is Reason.DECRYPT_FAILED
    with pytest.raises(LocalProtocolError):
        reader.next_event()
    writer, reader = records()
    record = bytearray(writer.encrypt(b"hello"))
    record[5] ^= 1
    reader.receive_data(bytes(record))
    with pytest.raises(DecodeError):
        reader.next_event()
    writer, reader = records()
    reader.receive_data(writer.close() + writer.encrypt(b"late"))
    with pytest.raises(DecodeError) as info:
        drain(reader)
    assert info.value.reason is Reason.MALFORMED
    _, reader = records()
    reader.receive_data(b"\x00\x05hello")
    with pytest.raises(DecodeError) as info:
        reader.next_event()
    assert info.value.reason is Reason.MALFORMED
    assert first  # (the first record was never delivered)


def test_misuse_is_local() -> None:
    initiator, responder = handshakes()
    with pytest.raises(LocalProtocolError):
        responder.start()
    with pytest.raises(LocalProtocolError):
        initiator.keys  # noqa: B018
    with pytest.raises(LocalProtocolError):
        Community(id=b"short", keys=(bytes(32),))
    with pytest.raises(LocalProtocolError):
        Community(id=bytes(32), keys=())
    assert isinstance(END_OF_STREAM, EndOfStream)
    assert isinstance(NEED_DATA, NeedData)
