"""The numpy sketch builder gives the reference's bytes and positions, for any input."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.gossip.sketch_fast import NumpySketchBuilder
from protocol.sketch import MAX_CELLS, PureSketchBuilder, SketchBuilder, build_table, match_prefixes
from protocol.sync import Mode, Reconciler, decode_sync_message

FAST: SketchBuilder = NumpySketchBuilder()
PURE: SketchBuilder = PureSketchBuilder()
prefix_lists = st.lists(st.binary(min_size=8, max_size=8), max_size=200).map(b"".join)
# Keys near 0 and 2**64 - 1 exercise the wrap-around of the 64-bit arithmetic.
edge_prefixes = st.lists(
    st.sampled_from([0, 1, 2**63, 2**64 - 1, 2**64 - 2, 0x9E3779B97F4A7C15]).map(
        lambda k: k.to_bytes(8, "big")
    ),
    max_size=20,
).map(b"".join)


@pytest.mark.slow
@settings(max_examples=300)
@given(
    st.one_of(prefix_lists, edge_prefixes),
    st.integers(1, MAX_CELLS // 4).map(lambda q: 4 * q),
    st.integers(0, 2**64 - 1),
)
def test_tables_are_byte_identical(prefixes: bytes, cells: int, salt: int) -> None:
    fast = FAST.build_table(prefixes, cells=cells, salt=salt)
    assert fast == build_table(prefixes, cells=cells, salt=salt)
    assert fast == PURE.build_table(prefixes, cells=cells, salt=salt)


@pytest.mark.slow
@settings(max_examples=300)
@given(prefix_lists, st.frozensets(st.integers(0, 2**64 - 1), max_size=10), st.data())
def test_prefix_matches_are_identical(
    prefixes: bytes, extra: frozenset[int], data: st.DataObject
) -> None:
    held = [int.from_bytes(prefixes[i : i + 8], "big") for i in range(0, len(prefixes), 8)]
    # Keys we hold (some, possibly repeated in `prefixes`), keys we may not.
    chosen = data.draw(st.frozensets(st.sampled_from(held), max_size=20)) if held else frozenset()
    for keys in (chosen, chosen | extra, extra):
        assert FAST.match_prefixes(prefixes, keys) == match_prefixes(prefixes, keys)


def test_a_session_is_the_same_with_either_builder() -> None:
    # The builders are interchangeable on the wire: every message byte for byte.
    rng = random.Random(4)
    items = sorted((rng.randrange(10**6), rng.randbytes(32)) for _ in range(4000))
    mine = [x for x in items if rng.random() >= 0.03]
    transcripts = []
    for builder in (PURE, FAST):
        client, server = (
            Reconciler(side, push_missing=True, compact=True, sketch=True, sketch_builder=builder)
            for side in (mine, items)
        )
        message: bytes | None = client.initiate()
        sent, side = [], server
        while message is not None:
            sent.append(message)
            message = side.receive(message)
            side = client if side is server else server
        assert client.need | server.have == {i for _, i in items} - {i for _, i in mine}
        transcripts.append(sent)
    assert transcripts[0] == transcripts[1]
    modes = {r.mode for m in transcripts[0] for r in decode_sync_message(m).ranges}
    assert Mode.SKETCH in modes
