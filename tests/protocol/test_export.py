"""Export files (SPEC §14): round trip, and any other bytes give a typed error."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import DecodeError, Reason
from protocol.export import decode_export, encode_export

COMMUNITY = bytes(range(32))
envelopes = st.lists(st.binary(min_size=1, max_size=1024), max_size=20)


@given(envelopes)
def test_round_trip_keeps_every_byte(items: list[bytes]) -> None:
    decoded = decode_export(encode_export(COMMUNITY, items))
    assert decoded.community_id == COMMUNITY
    assert decoded.envelopes == tuple(items)


@given(envelopes, st.data())
def test_any_mutation_decodes_or_fails_typed(items: list[bytes], data: st.DataObject) -> None:
    encoded = bytearray(encode_export(COMMUNITY, items))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(encoded) - 1))
        encoded[position] = data.draw(st.integers(0, 255))
    reason = None
    try:
        decoded = decode_export(bytes(encoded))
    except DecodeError as error:
        reason = error.reason
    else:
        assert len(decoded.community_id) == 32
    assert reason in {None, Reason.MALFORMED, Reason.UNKNOWN_VERSION, Reason.TOO_LARGE}


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_fail_typed(data: bytes) -> None:
    with contextlib.suppress(DecodeError):  # any other exception fails the test
        decode_export(data)


@pytest.mark.parametrize(
    ("text", "reason", "where"),
    [
        (b"", Reason.MALFORMED, "line 1"),
        (b"trustnode-export 2 " + b"ab" * 32 + b"\n", Reason.UNKNOWN_VERSION, "line 1"),
        (b"trustnode-export 1 " + b"AB" * 32 + b"\n", Reason.MALFORMED, "line 1"),
        (b"trustnode-export 1 " + b"ab" * 32 + b"\nabc\n", Reason.MALFORMED, "line 2"),
        (b"trustnode-export 1 " + b"ab" * 32 + b"\n00\n\n", Reason.MALFORMED, "line 3"),
        (
            b"trustnode-export 1 " + b"ab" * 32 + b"\n" + b"00" * 1025 + b"\n",
            Reason.TOO_LARGE,
            "line 2",
        ),
        (b"trustnode-export 1 " + b"ab" * 32 + b"\n\xff\n", Reason.MALFORMED, "ASCII"),
    ],
)
def test_bad_files_name_the_line(text: bytes, reason: Reason, where: str) -> None:
    with pytest.raises(DecodeError, match=where) as info:
        decode_export(text)
    assert info.value.reason is reason


def test_item_limit() -> None:
    data = encode_export(COMMUNITY, [b"\x01"] * 5)
    assert len(decode_export(data, max_items=5).envelopes) == 5
    with pytest.raises(DecodeError, match="more than 4"):
        decode_export(data, max_items=4)
