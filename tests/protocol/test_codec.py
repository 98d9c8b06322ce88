"""The one door to msgpack: canonical packing, strict unpacking, typed failures only."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.codec import Value, pack, unpack
from protocol.errors import DecodeError, Reason

values: st.SearchStrategy[Value] = st.recursive(
    st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=40) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=6).map(tuple),
    max_leaves=20,
)


@given(values)
def test_round_trip(value: Value) -> None:
    assert unpack(pack(value)) == value


@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_named(value: Value, extra: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        unpack(pack(value) + extra)
    assert info.value.reason in {Reason.TRAILING_BYTES, Reason.MALFORMED}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.MALFORMED),
        (b"\xc1", Reason.MALFORMED),
        (b"\xa2\xff\xfe", Reason.MALFORMED),  # invalid UTF-8
        (b"\x92\x01", Reason.MALFORMED),  # truncated array
        (b"\xd6\xff\x00", Reason.MALFORMED),  # truncated timestamp
        (b"\x01\x02", Reason.TRAILING_BYTES),
    ],
)
def test_bad_input(data: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        unpack(data)
    assert info.value.reason is reason


def test_shortest_forms() -> None:
    assert pack(127) == b"\x7f"
    assert pack(128) == b"\xcc\x80"
    assert pack(-32) == b"\xe0"
    assert pack(-33) == b"\xd0\xdf"
    assert pack("a" * 31)[:1] == b"\xbf"
    assert pack("a" * 32)[:2] == b"\xd9\x20"
    assert pack(b"x")[:2] == b"\xc4\x01"
    assert pack((None,) * 15)[:1] == b"\x9f"


@given(st.binary(min_size=1000, max_size=70_000), st.integers(1, 40))
def test_values_larger_than_the_starting_buffer_pack_as_msgpack_does(
    data: bytes, parts: int
) -> None:
    """`pack` starts with a small buffer (a record's size); a wire message of many
    records grows it, and must come out as msgpack's own `packb` writes it."""
    value: Value = tuple(data[k::parts] for k in range(parts))
    assert pack(value) == msgpack.packb(value, use_bin_type=True)
    assert unpack(pack(value)) == value
