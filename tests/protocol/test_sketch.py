"""Sketches give back exactly the difference of two sets of prefixes, or say they cannot."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import FieldError, Reason
from protocol.sketch import (
    CELL_BYTES,
    MAX_CELLS,
    Sketch,
    cells_for,
    decode_difference,
    prefix_keys,
    range_salt,
)

keys64 = st.integers(0, 2**64 - 1)


def _keys(values: set[int] | list[int]) -> list[int]:
    return sorted(values)


@settings(max_examples=200)
@given(st.sets(keys64, max_size=300), st.sets(keys64, max_size=30), st.sets(keys64, max_size=30))
def test_decodes_exactly_the_difference_when_the_table_is_large_enough(
    shared: set[int], only_theirs: set[int], only_ours: set[int]
) -> None:
    only_theirs -= shared
    only_ours -= shared | only_theirs
    cells = cells_for(2 * (len(only_theirs) + len(only_ours)) + 8)
    salt = range_salt((0, b""), (5, b"\x01"), cells)
    theirs = Sketch.build(_keys(shared | only_theirs), cells, salt)
    ours = Sketch.build(_keys(shared | only_ours), cells, salt)
    decoded = decode_difference(Sketch.decode(theirs.encode()), ours, salt)
    # With twice the cells needed a failure is rare (about 1e-4); never a wrong answer.
    if decoded is not None:
        assert decoded.theirs == frozenset(only_theirs)
        assert decoded.ours == frozenset(only_ours)


def test_failure_rate_matches_the_sizing() -> None:
    # cells_for's docstring: about 1 % failures at an exact difference.
    rng = random.Random(9)
    base = [rng.getrandbits(64) for _ in range(500)]
    failures = 0
    for trial in range(300):
        extra = [rng.getrandbits(64) for _ in range(rng.choice([3, 10, 40, 150]))]
        cells = cells_for(len(extra))
        salt = range_salt((trial, b""), (trial + 1, b""), cells)
        theirs, ours = (
            Sketch.build(_keys(base + extra), cells, salt),
            Sketch.build(_keys(base), cells, salt),
        )
        decoded = decode_difference(theirs, ours, salt)
        if decoded is None:
            failures += 1
        else:
            assert decoded.theirs == set(extra)
            assert not decoded.ours
    assert failures <= 9


def test_an_overloaded_table_fails_rather_than_guessing() -> None:
    rng = random.Random(3)
    extra = [rng.getrandbits(64) for _ in range(400)]
    salt = range_salt((0, b""), (1, b""), 40)
    empty = Sketch.build(_keys([]), 40, salt)
    assert decode_difference(Sketch.build(_keys(extra), 40, salt), empty, salt) is None


@settings(max_examples=300)
@given(st.integers(1, 40).flatmap(lambda k: st.binary(min_size=52 * k, max_size=52 * k)))
def test_any_table_of_valid_length_decodes_or_fails_in_bounded_steps(data: bytes) -> None:
    table = Sketch.decode(data)
    cells = len(table.counts)
    salt = range_salt((0, b""), (9, b""), cells)
    own = Sketch.build(_keys([1, 2, 3]), cells, salt)
    decoded = decode_difference(table, own, salt)
    if decoded is not None:
        assert len(decoded.theirs) + len(decoded.ours) <= 2 * cells


@pytest.mark.parametrize("size", [0, 13, 13 * 5, 13 * 4 * 1025, 13 * 4 + 1])
def test_bad_table_lengths_are_refused(size: int) -> None:
    with pytest.raises(FieldError) as info:
        Sketch.decode(bytes(size))
    assert info.value.reason is Reason.OUT_OF_RANGE


def test_encoding_round_trips_and_sizes() -> None:
    keys = prefix_keys(bytes(range(64)))
    table = Sketch.build(keys, 16, 77)
    data = table.encode()
    assert len(data) == 16 * CELL_BYTES
    again = Sketch.decode(data)
    assert again.encode() == data
    assert cells_for(10**6) == MAX_CELLS
    assert all(cells_for(d) % 4 == 0 and cells_for(d) >= 1.3 * d for d in range(1, 3000, 7))


def test_salt_depends_on_bounds_and_size() -> None:
    salts = {
        range_salt((1, b""), (2, b""), 8),
        range_salt((1, b""), (2, b""), 12),
        range_salt((1, b"\x00"), (2, b""), 8),
        range_salt((1, b""), (3, b""), 8),
    }
    assert len(salts) == 4
