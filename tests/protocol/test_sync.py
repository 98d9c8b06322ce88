"""Set reconciliation finds exactly the symmetric difference, in few bounded rounds."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import DecodeError, LocalProtocolError, Reason, RemoteProtocolError
from protocol.sync import (
    INFINITY,
    Mode,
    Range,
    Reconciler,
    SyncMessage,
    decode_sync_message,
    encode_sync_message,
)

Item = tuple[int, bytes]


def item(n: int, ts: int) -> Item:
    return (ts, hashlib.blake2b(n.to_bytes(8, "big"), digest_size=32).digest())


def reconcile(
    mine: list[Item], theirs: list[Item], **options: Any
) -> tuple[Reconciler, Reconciler, int, int]:
    """Run a session to the end; return both sides, round trips and bytes exchanged."""
    client, server = Reconciler(sorted(mine), **options), Reconciler(sorted(theirs), **options)
    first = client.initiate()
    message: bytes | None = first
    sent, turns, side = len(first), 0, server
    while message is not None:
        message = side.receive(message)
        sent += 0 if message is None else len(message)
        side = client if side is server else server
        turns += 1
        assert turns < 5000, "reconciliation must terminate"
    return client, server, (turns + 1) // 2, sent


@st.composite
def two_sets(draw: st.DrawFn) -> tuple[list[Item], list[Item]]:
    universe = draw(st.integers(0, 400))
    times = draw(st.sampled_from([1, 3, 1000]))  # few timestamps: many id tie-breaks
    rng = random.Random(draw(st.integers(0, 2**32)))
    items = [item(n, rng.randrange(times)) for n in range(universe)]
    share, only_a = draw(st.floats(0, 1)), draw(st.floats(0, 1))
    a, b = [], []
    for it in items:
        if rng.random() < share:
            a.append(it)
            b.append(it)
        elif rng.random() < only_a:
            a.append(it)
        else:
            b.append(it)
    return a, b


@settings(max_examples=200)
@given(
    two_sets(),
    st.sampled_from([(2, 1), (4, 8), (16, 32)]),
    st.sampled_from([400, 1 << 20]),
    st.booleans(),
)
def test_finds_exactly_the_symmetric_difference(
    sets: tuple[list[Item], list[Item]], shape: tuple[int, int], budget: int, compact: bool
) -> None:
    a, b = sets
    buckets, threshold = shape
    client, server, _, _ = reconcile(
        a,
        b,
        buckets=buckets,
        leaf_buckets=min(buckets, 4),
        leaf_items=64,
        id_list_threshold=threshold,
        max_message_bytes=budget,
        push_missing=compact,
        compact=compact,
    )
    ids_a, ids_b = {i for _, i in a}, {i for _, i in b}
    # What a side lacks it knows by id (need) or is sent as records (the peer's have).
    assert client.need | server.have == ids_b - ids_a
    assert server.need | client.have == ids_a - ids_b
    if not compact:  # full forms list every missing id back
        assert (client.need, server.need) == (ids_b - ids_a, ids_a - ids_b)


@settings(max_examples=100)
@given(two_sets())
def test_push_missing_splits_the_difference_between_need_and_have(
    sets: tuple[list[Item], list[Item]],
) -> None:
    a, b = sets
    client, server, _, _ = reconcile(a, b, push_missing=True)
    ids_a, ids_b = {i for _, i in a}, {i for _, i in b}
    # What a side lacks it either wants (need) or is sent by the other (have).
    assert client.need | server.have == ids_b - ids_a
    assert server.need | client.have == ids_a - ids_b
    assert client.need <= ids_b - ids_a
    assert server.need <= ids_a - ids_b


def test_a_compact_side_and_a_full_side_still_reconcile() -> None:
    # Each side chooses its own forms; both understand all modes.
    rng = random.Random(3)
    items = [item(n, rng.randrange(500)) for n in range(3000)]
    a = sorted(x for x in items if rng.random() < 0.9)
    b = sorted(x for x in items if rng.random() < 0.9)
    client = Reconciler(a, push_missing=True, compact=True)
    server = Reconciler(b, push_missing=True)
    message: bytes | None = client.initiate()
    side = server
    while message is not None:
        message = side.receive(message)
        side = client if side is server else server
    ids_a, ids_b = {i for _, i in a}, {i for _, i in b}
    assert client.need | server.have == ids_b - ids_a
    assert server.need | client.have == ids_a - ids_b


def test_compact_forms_cost_far_fewer_bytes_for_scattered_loss() -> None:
    rng = random.Random(5)
    items = sorted(item(n, rng.randrange(10**9)) for n in range(50_000))
    mine = [x for x in items if rng.random() >= 0.01]
    _, _, _, full = reconcile(mine, items, push_missing=True)
    client, server, _, compact = reconcile(mine, items, push_missing=True, compact=True)
    assert client.need | server.have == {i for _, i in items} - {i for _, i in mine}
    assert compact < 0.75 * full


def test_identical_sets_settle_in_one_round_trip() -> None:
    items = [item(n, n // 3) for n in range(10_000)]
    client, server, rounds, sent = reconcile(items, items)
    assert client.need == server.need == set()
    assert rounds == 1
    assert sent < 1024


def test_clustered_difference_is_cheap() -> None:
    items = [item(n, n) for n in range(20_000)]
    client, _, rounds, sent = reconcile(items[:-200], items)
    assert len(client.need) == 200
    assert rounds <= 4
    assert sent < 200 * 32 * 2


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_fail_typed(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_sync_message(data)


@pytest.mark.parametrize(
    ("ranges", "reason"),
    [
        ((), Reason.OUT_OF_RANGE),
        (((5, b"", 0, None),), Reason.OUT_OF_RANGE),  # does not reach infinity
        (((5, b"", 0, None), (3, b"", 0, None), (INFINITY[0], b"", 0, None)), Reason.OUT_OF_RANGE),
        (((INFINITY[0], b"", 1, b"short"),), Reason.BAD_FIELD),
        (((INFINITY[0], b"", 2, (b"x",)),), Reason.BAD_FIELD),
        (((INFINITY[0], b"", 9, None),), Reason.BAD_FIELD),
        (((INFINITY[0], b"", 2, (bytes(32),) * 257),), Reason.OUT_OF_RANGE),
        (((INFINITY[0], b"", 4, bytes(12)),), Reason.OUT_OF_RANGE),  # not 8-byte prefixes
        (((INFINITY[0], b"", 4, bytes(8 * 257)),), Reason.OUT_OF_RANGE),
        (((INFINITY[0], b"", 5, (bytes(8),)),), Reason.BAD_FIELD),  # one bin, not an array
        (((INFINITY[0], b"", 6, bytes(16)),), Reason.BAD_FIELD),  # a short fingerprint: 8
    ],
)
def test_invalid_messages(ranges: tuple[object, ...], reason: Reason) -> None:
    import msgpack

    data = msgpack.packb([1, list(ranges)], use_bin_type=True)
    with pytest.raises(DecodeError) as info:
        decode_sync_message(data)
    assert info.value.reason is reason


def test_round_trip_encoding() -> None:
    message = SyncMessage(
        (
            Range((5, b"\x01"), Mode.FINGERPRINT, fingerprint=bytes(16)),
            Range((9, b""), Mode.ID_LIST, ids=(bytes(32),)),
            Range((10, b"\x07"), Mode.PREFIX_LIST, prefixes=bytes(16)),
            Range((11, b""), Mode.WANTED, prefixes=b"\x01" * 8),
            Range((12, b""), Mode.FINGERPRINT8, fingerprint=bytes(8)),
            Range(INFINITY, Mode.SKIP),
        )
    )
    assert decode_sync_message(encode_sync_message(message)) == message


def test_local_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        Reconciler([item(1, 5), item(2, 1)])
    with pytest.raises(LocalProtocolError):
        Reconciler([], buckets=1)
    with pytest.raises(LocalProtocolError):
        Reconciler([], compact=True)  # the peer learns by records: needs push_missing
