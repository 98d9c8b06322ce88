"""Wire messages and the framed reader (SPEC §9)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import DecodeError, FieldError, LocalProtocolError, Reason, RemoteProtocolError
from protocol.events import NEED_DATA, NeedData
from protocol.wire import (
    CircuitClose,
    CircuitData,
    CircuitOpen,
    Deliver,
    DialBack,
    DialBackResult,
    ErrorMessage,
    Graft,
    Graft8,
    Hello,
    IHave,
    IHave8,
    Message,
    MessageReader,
    Peers,
    Prune,
    PunchConnect,
    PunchSync,
    Push,
    ReaderState,
    Routes,
    Sync,
    Want,
    decode_message,
    encode_message,
)
from tests.strategies import envelopes

_addresses = st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True)
names = st.from_regex(r"[a-z0-9][a-z0-9._:/-]{0,20}", fullmatch=True)
texts = st.from_regex(r"[\x20-\x7e]{0,64}", fullmatch=True)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        Hello,
        min_version=st.just(1),
        max_version=st.integers(1, 5),
        capabilities=st.lists(names, max_size=5).map(tuple),
        agent=texts,
    ),
    st.builds(
        ErrorMessage,
        code=st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True),
        detail=texts,
    ),
    st.builds(Push, envelopes=st.lists(envelopes(), min_size=1, max_size=4).map(tuple)),
    st.builds(Sync, payload=st.none() | st.binary(max_size=100)),
    st.builds(
        IHave, ids=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=3).map(tuple)
    ),
    st.just(Prune()),
    st.builds(
        Peers,
        addresses=st.lists(st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True), max_size=4).map(
            tuple
        ),
    ),
    st.builds(
        Want, ids=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=5).map(tuple)
    ),
    st.builds(
        Graft, ids=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=5).map(tuple)
    ),
    st.builds(Deliver, envelopes=st.lists(envelopes(), min_size=1, max_size=4).map(tuple)),
    st.builds(
        IHave8,
        prefixes=st.integers(1, 6).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)),
    ),
    st.builds(
        Graft8,
        prefixes=st.integers(1, 6).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)),
    ),
    st.builds(
        Routes,
        entries=st.integers(1, 6).flatmap(lambda n: st.binary(min_size=9 * n, max_size=9 * n)),
    ),
    # SPEC §15.2, §15.3
    st.builds(DialBack, nonce=st.binary(min_size=8, max_size=8),
              addresses=st.lists(_addresses, min_size=1, max_size=8).map(tuple)),
    st.builds(DialBackResult, nonce=st.binary(min_size=8, max_size=8),
              reached=st.lists(_addresses, max_size=8).map(tuple),
              failed=st.lists(_addresses, max_size=8).map(tuple),
              observed=st.just("") | _addresses),
    st.builds(CircuitOpen, circuit=st.binary(min_size=8, max_size=8),
              peer=st.binary(min_size=32, max_size=32)),
    st.builds(CircuitData, circuit=st.binary(min_size=8, max_size=8),
              data=st.binary(min_size=1, max_size=300)),
    st.builds(CircuitClose, circuit=st.binary(min_size=8, max_size=8),
              code=st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)),
    # SPEC §15.4
    st.builds(PunchConnect, nonce=st.binary(min_size=8, max_size=8),
              addresses=st.lists(_addresses, max_size=4).map(tuple)),
    st.builds(PunchSync, nonce=st.binary(min_size=8, max_size=8)),
)  # fmt: skip


def read_all(reader: MessageReader) -> list[Message]:
    out: list[Message] = []
    while not isinstance(event := reader.next_event(), NeedData):
        out.append(event)
    assert event is NEED_DATA
    return out


@given(messages)
def test_round_trip(message: Message) -> None:
    framed = encode_message(message)
    assert decode_message(framed[4:]) == message


@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_any_split_gives_the_same_messages(batch: list[Message], data: st.DataObject) -> None:
    stream = b"".join(encode_message(m) for m in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    reader, got = MessageReader(), []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.receive_data(stream[start:stop])
        got += read_all(reader)
    assert got == batch
    assert reader.buffered_bytes == 0


def test_byte_by_byte() -> None:
    message = Hello(capabilities=("push", "sync-v1"), agent="trustnode/0.1")
    reader, got = MessageReader(), []
    for byte in encode_message(message):
        reader.receive_data(bytes([byte]))
        got += read_all(reader)
    assert got == [message]


@given(st.binary(max_size=300))
def test_any_payload_decodes_or_fails_typed(payload: bytes) -> None:
    reason = None
    try:
        decode_message(payload)
    except RemoteProtocolError as exc:
        reason = exc.reason
    assert reason is None or isinstance(reason, Reason)


@given(st.binary(max_size=300))
def test_any_stream_parses_or_fails_typed(stream: bytes) -> None:
    reader = MessageReader(max_message_bytes=256)
    reader.receive_data(stream)
    try:
        read_all(reader)
    except DecodeError:
        assert reader.state is ReaderState.ERROR
        with pytest.raises(LocalProtocolError):
            reader.next_event()
        with pytest.raises(LocalProtocolError):
            reader.receive_data(b"x")


def test_oversized_length_is_refused_from_the_prefix_alone() -> None:
    reader = MessageReader(max_message_bytes=1000)
    reader.receive_data((1001).to_bytes(4, "big"))
    with pytest.raises(DecodeError) as info:
        reader.next_event()
    assert info.value.reason is Reason.TOO_LARGE
    assert reader.state is ReaderState.ERROR


def test_empty_message_is_malformed() -> None:
    reader = MessageReader()
    reader.receive_data(bytes(4))
    with pytest.raises(DecodeError) as info:
        reader.next_event()
    assert info.value.reason is Reason.MALFORMED


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x93\x02\x01\x01", Reason.UNKNOWN_VERSION),
        (b"\x92\x01\x7f", Reason.UNKNOWN_KIND),
        (b"\x93\x01\x0b\xc4\x07" + bytes(7), Reason.OUT_OF_RANGE),  # ihave8: 7 bytes, not 8
        (b"\x93\x01\x0c\xc4\x00", Reason.OUT_OF_RANGE),  # graft8 of no prefix
        (b"\x93\x01\x0d\xc4\x08" + bytes(8), Reason.OUT_OF_RANGE),  # routes: 8 bytes, not 9
        (b"\x93\x01\x0d\xa1x", Reason.BAD_FIELD),  # routes as text
        (b"\x93\x01\x0b\x90", Reason.BAD_FIELD),  # ihave8 prefixes as an array
        (b"\x92\x01\x09", Reason.BAD_FIELD),  # graft without its ids
        (b"\x93\x01\x0a\x90", Reason.OUT_OF_RANGE),  # deliver of no envelope
        (b"\x93\x01\x02\xa1x", Reason.BAD_FIELD),  # error with one field
        (b"\x94\x01\x02\xa1X\xa0", Reason.OUT_OF_RANGE),  # upper-case code
        (b"\x93\x01\x03\x90", Reason.OUT_OF_RANGE),  # empty push
        (b"\x94\x01\x02\xd9\x01x\xa0", Reason.NON_CANONICAL),  # str8 for a 1-byte code
        (b"\x94\x01\x02\xa1x\xa0\x00", Reason.TRAILING_BYTES),
        (b"\x81\x01\x02", Reason.MALFORMED),
    ],
)
def test_bad_payloads(payload: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        decode_message(payload)
    assert info.value.reason is reason


def test_local_misuse() -> None:
    with pytest.raises(FieldError):
        Hello(min_version=2, max_version=1)
    with pytest.raises(FieldError):
        Push(envelopes=(b"x" * 2000,))
    with pytest.raises(LocalProtocolError):
        MessageReader(max_message_bytes=0)


def test_peers_limits() -> None:
    assert decode_message(encode_message(Peers(addresses=()))[4:]) == Peers(addresses=())
    with pytest.raises(FieldError) as too_many:
        Peers(addresses=tuple(f"n{i}" for i in range(33)))
    assert too_many.value.reason is Reason.OUT_OF_RANGE
    for bad in ("", "has space", "x" * 256, "caf\u00e9"):
        with pytest.raises(FieldError):
            Peers(addresses=(bad,))
