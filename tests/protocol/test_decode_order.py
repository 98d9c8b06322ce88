"""SPEC §2.5's order is normative: with several defects, the earliest step names the reason."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.attestation import decode_envelope
from protocol.errors import DecodeError, Reason

ISSUER, SUBJECT, T0 = bytes([1]) * 32, bytes([2]) * 32, 1_700_000_000_000
# Index in a trust body -> a value of the right type that the protocol refuses (step 7).
RANGE_DEFECTS: list[tuple[int, object]] = [
    (3, -1), (3, 2**53), (4, T0), (6, "Carpool"), (6, ""), (7, 101), (7, -101),
]  # fmt: skip
# Index -> a value of the wrong type or size (step 6); -1 is the signature.
TYPE_DEFECTS: list[tuple[int, object]] = [
    (2, bytes(31)), (3, "1"), (4, 1.5), (5, "urn:x"), (6, b"carpool"), (7, True), (-1, bytes(63)),
]  # fmt: skip


def _envelope(defects: list[tuple[int, object]]) -> bytes:
    fields: list[object] = [1, 1, ISSUER, T0, None, SUBJECT, "carpool", 55]
    signature: object = bytes(64)
    for index, value in defects:
        if index == -1:
            signature = value
        else:
            fields[index] = value
    packed: bytes = msgpack.packb([fields, signature], use_bin_type=True)
    return packed


@given(
    ranges=st.lists(st.sampled_from(RANGE_DEFECTS), min_size=1, max_size=3),
    types=st.lists(st.sampled_from(TYPE_DEFECTS), min_size=1, max_size=3),
)
def test_a_type_defect_anywhere_wins_over_range_defects(
    ranges: list[tuple[int, object]], types: list[tuple[int, object]]
) -> None:
    # Type defects last, so they replace a range defect of the same field.
    with pytest.raises(DecodeError) as info:
        decode_envelope(_envelope([*ranges, *types]))
    assert info.value.reason is Reason.BAD_FIELD


@given(ranges=st.lists(st.sampled_from(RANGE_DEFECTS), min_size=1, max_size=3))
def test_range_defects_alone_are_out_of_range(ranges: list[tuple[int, object]]) -> None:
    with pytest.raises(DecodeError) as info:
        decode_envelope(_envelope(ranges))
    assert info.value.reason is Reason.OUT_OF_RANGE
