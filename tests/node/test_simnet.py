"""The simulated network: a conformant stream, seeded latency, partitions and crashes."""

from __future__ import annotations

import math
import random

import pytest
import trio
import trio.testing
from trio.testing import check_two_way_stream

from node.net.simnet import LinkModel, SimNetwork, SimStream
from node.net.transport import SecureStream, open_secure_stream
from protocol.channel import Community
from protocol.handshake import Role
from protocol.identity import IdentityKey

ALICE, BOB = IdentityKey.from_seed(bytes([1]) * 32), IdentityKey.from_seed(bytes([2]) * 32)
COMMUNITY = Community(id=bytes(32), keys=(bytes([7]) * 32,))


async def sim_pair(
    seed: int = 1, model: LinkModel | None = None
) -> tuple[SimNetwork, SimStream, trio.abc.Stream]:
    net = SimNetwork(seed=seed, model=model)
    listener = net.listen("b")
    client = await net.connect("a", "b")
    server = await listener.accept()
    return net, client, server


async def stream_pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
    _, client, server = await sim_pair()
    return client, server


async def secure_over_sim() -> tuple[SecureStream, SecureStream]:
    _, client, server = await sim_pair()
    made: dict[str, SecureStream] = {}

    async def side(name: str, stream: trio.abc.Stream, role: Role, key: IdentityKey) -> None:
        made[name] = await open_secure_stream(
            stream, role=role, community=COMMUNITY, identity_key=key
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, "a", client, Role.INITIATOR, ALICE)
        nursery.start_soon(side, "b", server, Role.RESPONDER, BOB)
    return made["a"], made["b"]


async def test_sim_stream_conforms(autojump_clock: trio.testing.MockClock) -> None:
    await check_two_way_stream(stream_pair, None)


async def test_secure_stream_over_sim_conforms(autojump_clock: trio.testing.MockClock) -> None:
    await check_two_way_stream(secure_over_sim, None)


async def test_latency_is_seeded_and_applied(autojump_clock: trio.testing.MockClock) -> None:
    model = LinkModel(min_latency_s=0.05, max_latency_s=0.05)
    _, client, server = await sim_pair(model=model)
    start = trio.current_time()
    await client.send_all(b"ping")
    assert await server.receive_some() == b"ping"
    assert trio.current_time() - start == pytest.approx(0.05)
    first = SimNetwork(seed=9)._link_latency("x", "y")
    assert SimNetwork(seed=9)._link_latency("y", "x") == first


@pytest.mark.parametrize(("resolution", "arrival"), [(0.001, 0.013), (0.0, 0.0127)])
async def test_arrivals_fall_on_the_grid(
    autojump_clock: trio.testing.MockClock, resolution: float, arrival: float
) -> None:
    model = LinkModel(min_latency_s=0.0123, max_latency_s=0.0123, resolution_s=resolution)
    net = SimNetwork(seed=1, model=model)
    await trio.sleep(0.0004 - trio.current_time())
    assert net.due_time("a", "b", last_due=0.0) == pytest.approx(arrival)  # 0.4 + 12.3 ms
    # Rounded up, never down; in order behind what is in flight; a due time on the grid stays.
    assert net.due_time("a", "b", last_due=0.02) == pytest.approx(0.02)


async def test_every_chunk_arrives_when_due(autojump_clock: trio.testing.MockClock) -> None:
    """Readers on many links wake exactly when each chunk is due (one alarm task
    serves the whole network), whatever the links and the pattern of sends."""
    net = SimNetwork(seed=3, model=LinkModel(min_latency_s=0.01, max_latency_s=0.05))
    names = [f"n{i}" for i in range(5)]
    listeners = {name: net.listen(name) for name in names}
    rng = random.Random(5)
    late: list[tuple[bytes, float, float]] = []
    count = 0

    async def read(stream: trio.abc.Stream, sent: dict[bytes, float], latency: float) -> None:
        nonlocal count
        while data := bytes(await stream.receive_some(4)):
            due = math.ceil((sent[data] + latency) / 0.001 - 1e-6) * 0.001
            count += 1
            if trio.current_time() != pytest.approx(due):
                late.append((data, due, trio.current_time()))

    async def write(stream: trio.abc.Stream, sent: dict[bytes, float], pauses: list[float]) -> None:
        for n, pause in enumerate(pauses):
            await trio.sleep(pause)
            sent[n.to_bytes(4, "big")] = trio.current_time()
            await stream.send_all(n.to_bytes(4, "big"))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            a, b = rng.sample(names, 2)
            client = await net.connect(a, b)
            server = await listeners[b].accept()
            sent: dict[bytes, float] = {}
            pauses = [rng.choice([0.0, 0.0004, 0.003, 0.02, 0.07]) for _ in range(25)]
            nursery.start_soon(read, server, sent, net._link_latency(a, b))
            nursery.start_soon(write, client, sent, pauses)
    assert count == 8 * 25
    assert late == []


async def test_window_applies_back_pressure(autojump_clock: trio.testing.MockClock) -> None:
    _, client, server = await sim_pair(model=LinkModel(window_bytes=10))
    with trio.move_on_after(5) as scope:
        await client.send_all(b"x" * 100)  # nobody reads: blocks after 10 bytes
    assert scope.cancelled_caught
    assert await server.receive_some() == b"x" * 10


async def test_loss_delays_but_never_loses(autojump_clock: trio.testing.MockClock) -> None:
    model = LinkModel(min_latency_s=0.01, max_latency_s=0.01, loss=0.5, retransmit_s=1.0)
    _, client, server = await sim_pair(seed=3, model=model)
    for index in range(50):
        await client.send_all(bytes([index]))
    received = bytearray()
    while len(received) < 50:
        received += await server.receive_some()
    assert bytes(received) == bytes(range(50))
    assert trio.current_time() > 1.0  # some chunks were retransmitted


async def test_partition_breaks_and_refuses(autojump_clock: trio.testing.MockClock) -> None:
    net, client, server = await sim_pair()
    net.partition([{"a"}, {"b"}])
    with pytest.raises(trio.BrokenResourceError):
        await client.send_all(b"x")
    with pytest.raises(trio.BrokenResourceError):
        await server.receive_some()
    with pytest.raises(ConnectionRefusedError):
        await net.connect("a", "b")
    net.heal()
    again = await net.connect("a", "b")
    await again.send_all(b"back")


async def test_crash_and_recovery(autojump_clock: trio.testing.MockClock) -> None:
    net, client, _server = await sim_pair()
    net.take_down("b")
    with pytest.raises(trio.BrokenResourceError):
        await client.receive_some()
    with pytest.raises(ConnectionRefusedError):
        await net.connect("a", "b")
    net.bring_up("b")
    await net.connect("a", "b")
    with pytest.raises(ConnectionRefusedError):
        await net.connect("a", "nobody")
