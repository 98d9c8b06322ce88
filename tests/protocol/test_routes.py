"""Distance-vector routes (protocol.routes): tables settle on the graph's shortest paths."""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import DecodeError, Reason
from protocol.routes import (
    UNREACHABLE,
    Role,
    Route,
    RouteTable,
    decode_routes,
    encode_routes,
    source_key,
)


def _name(n: int) -> bytes:
    return n.to_bytes(2, "big") * 16


class _Graph:
    """Tables of n members linked by `edges`, exchanging routes until nothing changes."""

    def __init__(self, n: int, edges: set[tuple[int, int]], *, max_hops: int = 32) -> None:
        self.n = n
        self.tables = [RouteTable(_name(i), max_hops=max_hops) for i in range(n)]
        self.neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
        for a, b in edges:
            self.link(a, b)

    def link(self, a: int, b: int) -> None:
        self.neighbours[a].add(b)
        self.neighbours[b].add(a)
        self.tables[a].add_peer(_name(b))
        self.tables[b].add_peer(_name(a))

    def cut(self, a: int) -> None:
        for b in self.neighbours.pop(a):
            self.neighbours[b].discard(a)
            self.tables[b].remove_peer(_name(a))
        self.neighbours[a] = set()

    def settle(self, rng: random.Random, *, rounds: int = 10_000) -> int:
        """Deliver updates in random order until none is left; returns the messages sent."""
        sent = 0
        for _ in range(rounds):
            pending = [(a, b) for a in range(self.n) for b in sorted(self.neighbours[a])]
            rng.shuffle(pending)
            moved = False
            for a, b in pending:
                updates = self.tables[a].updates_for(_name(b))
                if updates:
                    # Through the wire form, as a node would.
                    routes = decode_routes(encode_routes(updates))
                    self.tables[b].receive(_name(a), routes)
                    sent += 1
                    moved = True
            if not moved:
                return sent
        raise AssertionError("routes never settled")

    def hops_from(self, source: int) -> dict[int, int]:
        seen = {source: 0}
        queue = deque([source])
        while queue:
            a = queue.popleft()
            for b in self.neighbours[a]:
                if b not in seen:
                    seen[b] = seen[a] + 1
                    queue.append(b)
        return seen


def _check_shortest_path_trees(graph: _Graph, alive: set[int]) -> None:
    for s in alive:
        key = source_key(_name(s))
        hops = graph.hops_from(s)
        for v in alive:
            table = graph.tables[v]
            if v not in hops:
                assert table.distance(key) is None
                continue
            assert table.distance(key) == hops[v]
            parent = table.parent(key)
            if v == s:
                assert parent is None
                continue
            assert parent is not None
            u = next(i for i in graph.neighbours[v] if _name(i) == parent)
            assert hops[u] == hops[v] - 1  # the parent is one hop nearer
            for w in graph.neighbours[v]:
                # Every neighbour knows whether v is its child for s: one push each.
                expected = Role.CHILD if w == u else Role.OTHER
                assert graph.tables[w].role(_name(v), key) is expected
                for unknown in (False, True):  # the batch form says the same
                    assert graph.tables[w].children(_name(v), [key], unknown=unknown) == [w == u]


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[int, set[tuple[int, int]], int]:
    n = draw(st.integers(2, 24))
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))
    connected = draw(st.booleans())
    edges = {(min(a, b), max(a, b)) for a, b in extra if a != b}
    if connected:  # a random spanning tree under the extra links
        for v in range(1, n):
            u = draw(st.integers(0, v - 1))
            edges.add((u, v))
    return n, edges, draw(st.integers(0, 2**32))


@settings(max_examples=150, deadline=None)
@given(_graphs())
def test_tables_settle_on_shortest_path_trees(
    graph_spec: tuple[int, set[tuple[int, int]], int],
) -> None:
    n, edges, seed = graph_spec
    graph = _Graph(n, edges)
    graph.settle(random.Random(seed))
    _check_shortest_path_trees(graph, set(range(n)))


@settings(max_examples=100, deadline=None)
@given(_graphs(), st.data())
def test_a_member_leaving_is_forgotten_and_routes_heal(
    graph_spec: tuple[int, set[tuple[int, int]], int], data: st.DataObject
) -> None:
    n, edges, seed = graph_spec
    rng = random.Random(seed)
    graph = _Graph(n, edges)
    graph.settle(rng)
    gone = data.draw(st.integers(0, n - 1))
    graph.cut(gone)
    graph.settle(rng)
    alive = set(range(n)) - {gone}
    _check_shortest_path_trees(graph, alive)
    for v in alive:
        assert graph.tables[v].distance(source_key(_name(gone))) is None


def test_a_new_link_shortens_routes_and_moves_the_child() -> None:
    graph = _Graph(5, {(0, 1), (1, 2), (2, 3), (3, 4)})
    rng = random.Random(1)
    graph.settle(rng)
    far = source_key(_name(0))
    assert graph.tables[4].distance(far) == 4
    assert graph.tables[3].role(_name(4), far) is Role.CHILD
    graph.link(0, 4)
    graph.settle(rng)
    assert graph.tables[4].distance(far) == 1
    assert graph.tables[3].role(_name(4), far) is Role.OTHER
    assert graph.tables[0].role(_name(4), far) is Role.CHILD
    _check_shortest_path_trees(graph, set(range(5)))


def test_updates_are_differences_only() -> None:
    graph = _Graph(3, {(0, 1), (1, 2)})
    graph.settle(random.Random(2))
    for a in range(3):
        for b in graph.neighbours[a]:
            assert graph.tables[a].updates_for(_name(b)) == []
    # A new neighbour gets the whole table at once.
    graph.tables[1].add_peer(_name(9))
    assert {r[0] for r in graph.tables[1].updates_for(_name(9))} == {
        source_key(_name(i)) for i in range(3)
    }


def test_counting_to_infinity_stops_at_max_hops() -> None:
    # A ring: when its member 0 goes, the others' routes to it count up, then go.
    n = 6
    graph = _Graph(n, {(i, (i + 1) % n) for i in range(n)}, max_hops=8)
    rng = random.Random(3)
    graph.settle(rng)
    graph.cut(0)
    graph.settle(rng)
    assert all(graph.tables[v].distance(source_key(_name(0))) is None for v in range(1, n))


def test_only_a_member_is_zero_hops_from_itself() -> None:
    table = RouteTable(_name(0))
    table.add_peer(_name(1))
    table.receive(_name(1), [(source_key(_name(1)), 0, False)])
    assert table.distance(source_key(_name(1))) == 1
    with pytest.raises(DecodeError) as caught:
        table.receive(_name(1), [(source_key(_name(2)), 0, False)])
    assert caught.value.reason is Reason.OUT_OF_RANGE


def test_a_neighbour_cannot_grow_the_table_without_bound() -> None:
    table = RouteTable(_name(0), max_sources=100)
    table.add_peer(_name(1))
    table.receive(_name(1), [(i.to_bytes(8, "big"), 3, False) for i in range(1, 1000)])
    assert len(table) <= 100
    assert table.distance(source_key(_name(0))) == 0  # ourselves, always


def test_children_of_an_untold_source_follow_the_fallback() -> None:
    table = RouteTable(_name(0))
    table.add_peer(_name(1))
    told, untold = source_key(_name(2)), source_key(_name(3))
    table.receive(_name(1), [(told, 2, True)])
    assert table.children(_name(1), [told, untold], unknown=False) == [True, False]
    assert table.children(_name(1), [told, untold], unknown=True) == [True, True]
    assert table.children(_name(9), [told], unknown=True) == [True]  # not a neighbour at all


def test_routes_from_a_stranger_are_ignored() -> None:
    table = RouteTable(_name(0))
    table.receive(_name(5), [(source_key(_name(5)), 0, False)])
    assert table.distance(source_key(_name(5))) is None


@given(
    st.lists(
        st.tuples(st.binary(min_size=8, max_size=8), st.integers(0, 126), st.booleans()),
        max_size=50,
    )
)
def test_routes_round_trip(entries: list[tuple[bytes, int, bool]]) -> None:
    routes: list[Route] = entries
    data = encode_routes(routes)
    assert len(data) == 9 * len(routes)
    assert decode_routes(data) == routes


def test_a_withdrawn_parent_is_refused() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_routes(bytes(8) + bytes([0x80 | UNREACHABLE]))
    assert caught.value.reason is Reason.OUT_OF_RANGE


@given(st.binary(max_size=60))
def test_decoding_any_bytes_gives_routes_or_a_typed_error(data: bytes) -> None:
    malformed = len(data) % 9 or any(b == 0x80 | UNREACHABLE for b in data[8::9])
    if malformed:
        with pytest.raises(DecodeError) as caught:
            decode_routes(data)
        assert caught.value.reason is Reason.OUT_OF_RANGE
    else:
        assert encode_routes(decode_routes(data)) == data
