"""Source trees (SPEC §9.4): routes learned before any message carry each issuer's
attestations along its own shortest-path tree, once to each member."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence

import trio
import trio.testing

from node.net.simnet import LinkModel, SimNetwork
from protocol.attestation import Attestation
from protocol.routes import encode_routes, source_key
from protocol.wire import Routes
from simulations.convergence import link
from tests.node.test_gossip import Member, _until

LATENCY_S = 0.1


def _graph(rng: random.Random, count: int, dials: int) -> list[tuple[int, int]]:
    edges: set[tuple[int, int]] = set()
    for a in range(count):
        for b in rng.sample([i for i in range(count) if i != a], dials):
            edges.add((min(a, b), max(a, b)))
    return sorted(edges)


def _hops(count: int, edges: Sequence[tuple[int, int]], source: int) -> dict[int, int]:
    neighbours: dict[int, list[int]] = {i: [] for i in range(count)}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    seen = {source: 0}
    queue = deque([source])
    while queue:
        a = queue.popleft()
        for b in neighbours[a]:
            if b not in seen:
                seen[b] = seen[a] + 1
                queue.append(b)
    return seen


def _community(
    count: int, seed: int, *, routes: Callable[[int], bool] = lambda _: True
) -> tuple[random.Random, SimNetwork, list[Member], list[tuple[int, int]]]:
    """`count` members (each dials 2: about 4 links each) on fixed-latency links."""
    rng = random.Random(seed)
    net = SimNetwork(seed=seed, model=LinkModel(min_latency_s=LATENCY_S, max_latency_s=LATENCY_S))
    members = [
        Member(f"n{i}", seed * 1000 + i, wide_seed=True, routes=routes(i)) for i in range(count)
    ]
    return rng, net, members, _graph(rng, count, 2)


async def _link_all(
    net: SimNetwork, nursery: trio.Nursery, members: list[Member], edges: list[tuple[int, int]]
) -> None:
    for a, b in edges:
        await link(net, nursery, members[a], members[b])


async def _cancellable_link(net: SimNetwork, a: Member, b: Member, scope: trio.CancelScope) -> None:
    """A link between `a` and `b` that ends when `scope` is cancelled."""
    with scope:
        async with trio.open_nursery() as inner:
            await link(net, inner, a, b)
            await trio.sleep_forever()


async def _spread(
    members: list[Member], author: Member, attestation: Attestation
) -> tuple[dict[int, float], int]:
    """Arrival times (s) per member index, and the payload copies received on the way."""
    before = sum(m.gossip.payload_copies_received for m in members)
    start = trio.current_time()
    await author.gossip.publish([attestation])
    arrived: dict[int, float] = {}
    while len(arrived) < len(members) and trio.current_time() - start < 20:
        await trio.sleep(LATENCY_S / 10)
        for n, member in enumerate(members):
            if n not in arrived and member.store.contains(attestation.id):
                arrived[n] = trio.current_time() - start
    await trio.sleep(2)  # let late copies land
    return arrived, sum(m.gossip.payload_copies_received for m in members) - before


async def test_each_issuer_reaches_everyone_once_along_shortest_paths(
    autojump_clock: trio.testing.MockClock,
) -> None:
    count = 40
    rng, net, members, edges = _community(count, 7)
    async with trio.open_nursery() as nursery:
        await _link_all(net, nursery, members, edges)
        await trio.sleep(15)  # routes settle; no attestation has travelled yet
        # Every member's distance to every other is the link graph's.
        for s in range(count):
            hops = _hops(count, edges, s)
            key = source_key(members[s].key.identity)
            assert [m.gossip.routes.distance(key) for m in members] == [
                hops[n] for n in range(count)
            ]
        for n, s in enumerate(rng.sample(range(count), 8)):  # each author's first attestation
            author = members[s]
            arrived, copies = await _spread(members, author, author.attest(members[0], n))
            hops = _hops(count, edges, s)
            assert len(arrived) == count
            assert copies == count - 1  # one copy per member: no flood, no duplicate
            for v, seconds in arrived.items():
                # Along the shortest path: one latency and a little coalescing per hop.
                assert seconds <= hops[v] * (LATENCY_S + 0.02) + 0.02, (v, hops[v], seconds)
        nursery.cancel_scope.cancel()


async def test_a_member_that_forwards_nothing_costs_a_graft_not_a_loss(
    autojump_clock: trio.testing.MockClock,
) -> None:
    count = 30
    _, net, members, edges = _community(count, 8)
    hub = max(range(count), key=lambda v: sum(v in e for e in edges))
    # It keeps telling honest routes (it is many members' parent) and never forwards.
    members[hub].gossip.push.forward = lambda *args, **kwargs: None  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await _link_all(net, nursery, members, edges)
        await trio.sleep(15)
        authors = [v for v in range(count) if v != hub][:5]
        for n, s in enumerate(authors):
            arrived, _ = await _spread(members, members[s], members[s].attest(members[0], n))
            assert len(arrived) == count  # the lazy announcements and a graft repair it
            # A member behind it waits a graft timeout (1 s); one whose only other
            # neighbour is behind it too, two.
            assert max(arrived.values()) <= 4.0
        nursery.cancel_scope.cancel()


async def test_members_without_routes_still_get_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    count = 30
    rng, net, members, edges = _community(count, 9, routes=lambda i: i % 2 == 0)
    async with trio.open_nursery() as nursery:
        await _link_all(net, nursery, members, edges)
        await trio.sleep(15)
        for n in range(6):
            author = members[rng.randrange(count)]
            arrived, _ = await _spread(members, author, author.attest(members[0], n))
            assert len(arrived) == count
        nursery.cancel_scope.cancel()


async def test_routes_to_a_member_that_left_are_withdrawn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    count = 12
    _, net, members, edges = _community(count, 10)
    async with trio.open_nursery() as nursery:
        scopes = {}
        for a, b in edges:
            scopes[a, b] = trio.CancelScope()
            nursery.start_soon(_cancellable_link, net, members[a], members[b], scopes[a, b])
        await trio.sleep(15)
        gone = 0
        key = source_key(members[gone].key.identity)
        assert all(m.gossip.routes.distance(key) is not None for m in members)
        for (a, b), scope in scopes.items():
            if gone in (a, b):
                scope.cancel()
        await trio.sleep(120)  # counting to infinity ends at 32 hops, told every 2 s
        assert [m.gossip.routes.distance(key) for m in members[1:]] == [None] * (count - 1)
        rest = [(a, b) for a, b in edges if gone not in (a, b)]
        for s in range(1, count):
            hops = _hops(count, rest, s)
            distances = [members[v].gossip.routes.distance(source_key(members[s].key.identity))
                         for v in range(1, count)]  # fmt: skip
            assert distances == [hops.get(v) for v in range(1, count)]
        nursery.cancel_scope.cancel()


async def test_a_closing_member_skips_route_repair_and_its_neighbours_do_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, net, members, _ = _community(3, 11)
    scopes = [trio.CancelScope(), trio.CancelScope()]
    async with trio.open_nursery() as nursery:
        for (a, b), scope in zip([(0, 1), (1, 2)], scopes, strict=True):
            nursery.start_soon(_cancellable_link, net, members[a], members[b], scope)
        await trio.sleep(10)
        ends = [source_key(members[0].key.identity), source_key(members[2].key.identity)]
        assert [members[1].gossip.routes.distance(k) for k in ends] == [1, 1]
        members[1].gossip.close()  # going down: losing its links repairs nothing
        for scope in scopes:
            scope.cancel()
        await trio.sleep(10)
        assert [members[1].gossip.routes.distance(k) for k in ends] == [1, 1]
        # Its neighbours keep running: their routes through it are gone.
        assert members[0].gossip.routes.distance(ends[1]) is None
        assert members[2].gossip.routes.distance(ends[0]) is None
        nursery.cancel_scope.cancel()


async def test_a_peer_flooding_routes_is_read_at_the_route_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=11)
    a, b = Member("a", 1), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        peer = b.gossip._peers[a.key.identity]
        # 80 messages of 4096 made-up members at distance 3: 327 680 entries.
        start = trio.current_time()
        for n in range(80):
            entries = [(((n << 16) + i + 1).to_bytes(8, "big"), 3, False) for i in range(4096)]
            await peer.send(Routes(entries=encode_routes(entries)))
        await trio.sleep(2)
        # A table of the largest size (65 536 routes from one neighbour), no more...
        assert len(a.gossip.routes) <= 65_536 + 2
        assert a.gossip.route_entries_received < 80 * 4096
        # ...and the rest is read at 20 000 entries a second, not at once.
        await _until(lambda: a.gossip.route_entries_received >= 80 * 4096)
        assert trio.current_time() - start >= (80 * 4096 - 2 * 65_536) / 20_000 * 0.9
        assert a.gossip.peers == [b.key.identity]  # throttled, not dropped
        nursery.cancel_scope.cancel()


async def test_a_peer_claiming_to_be_everyone_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=12)
    a, b, c = Member("a", 1), Member("b", 2), Member("c", 3)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        peer = b.gossip._peers[a.key.identity]
        lie = [(source_key(c.key.identity), 0, False)]  # only c is 0 hops from c
        await peer.send(Routes(entries=encode_routes(lie)))
        await trio.sleep(2)
        assert a.gossip.protocol_errors == 1
        assert a.gossip.peers == []
        assert a.gossip.routes.distance(source_key(c.key.identity)) is None
        nursery.cancel_scope.cancel()
