"""LAN discovery (node/net/lan.py, SPEC §15): real nodes on loopback multicast, and the
receive path's bounds on a MockClock."""

from __future__ import annotations

import random
import secrets
import socket
from pathlib import Path

import pytest
import trio
import trio.testing

from node.net.lan import LanConfig, LanDiscovery
from node.service import NodeConfig, open_node
from protocol.beacon import NONCE_BYTES, Beacon, seal_beacon
from protocol.channel import Community

T0 = 1_700_000_000_000
COMMUNITY = Community(id=bytes(32), keys=(bytes([1]) * 32,))


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(folder: Path, name: str, community: bytes, key: bytes, group: str) -> NodeConfig:
    return NodeConfig(
        data_dir=folder / name, community_id=community, community_key=key,
        listen="127.0.0.1:0", lan_discovery=True, lan_group=group, resync_interval_s=2.0,
    )  # fmt: skip


@pytest.mark.slow
async def test_two_members_find_each_other_and_sync_and_an_outsider_learns_nothing(
    tmp_path: Path,
) -> None:
    group = f"239.255.76.78:{_free_udp_port()}"  # a port of its own: no crosstalk between runs
    community, key = secrets.token_bytes(32), secrets.token_bytes(32)
    outsider_config = _config(tmp_path, "eve", secrets.token_bytes(32), secrets.token_bytes(32),
                              group)  # fmt: skip
    async with (
        open_node(outsider_config) as eve,
        open_node(_config(tmp_path, "ann", community, key, group)) as ann,
        open_node(_config(tmp_path, "ben", community, key, group)) as ben,
    ):
        start = trio.current_time()
        await ann.trust(ben.identity, 80)
        with trio.fail_after(5):  # no address configured anywhere: found and synced in 5 s
            await ben.wait_for(1)
        found_in = trio.current_time() - start
        assert ann.lan is not None
        assert ben.lan is not None
        assert eve.lan is not None
        assert found_in < 5
        assert ben.identity in ann.gossip.peers or ann.identity in ben.gossip.peers
        await trio.sleep(0.5)
        # eve heard beacons but could open none: no address, no peer, nothing stored.
        assert eve.lan.received >= 2
        assert (eve.lan.opened, eve.lan.learned) == (0, 0)
        assert eve.peer_manager is not None
        assert eve.peer_manager.active == []
        assert eve.peer_manager.passive == []
        assert eve.gossip.peers == []
        assert (await eve.status()).attestations == 0
        # The members heard each other and not eve (her beacons are noise to them).
        assert ann.lan.opened >= 1 or ben.lan.opened >= 1


def _discovery(learned: list[str], *, community: Community = COMMUNITY,
               **config: float) -> LanDiscovery:  # fmt: skip
    return LanDiscovery(
        community=community, tcp_port=7400, learn=learned.append, wall_clock_ms=lambda: T0,
        rng=random.Random(1), config=LanConfig(**config),  # type: ignore[arg-type]
    )  # fmt: skip


def _beacon(port: int = 7500, instance: bytes = bytes(8)) -> bytes:
    beacon = Beacon(port=port, instance=instance, sent_at_ms=T0)
    return seal_beacon(beacon, community=COMMUNITY, nonce=secrets.token_bytes(NONCE_BYTES))


async def test_an_address_goes_to_the_peer_manager_once_per_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    learned: list[str] = []
    lan = _discovery(learned, relearn_s=30.0)
    assert lan.receive(_beacon(), "192.168.1.20") == "192.168.1.20:7500"
    assert lan.receive(_beacon(), "192.168.1.20") is None  # heard again: not passed on
    assert lan.receive(_beacon(port=7501), "192.168.1.20") == "192.168.1.20:7501"
    await trio.sleep(31)
    assert lan.receive(_beacon(), "192.168.1.20") == "192.168.1.20:7500"
    assert learned == ["192.168.1.20:7500", "192.168.1.20:7501", "192.168.1.20:7500"]


async def test_own_beacons_foreign_ones_and_noise_are_not_learned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    learned: list[str] = []
    lan = _discovery(learned)
    assert lan.receive(lan.beacon(), "127.0.0.1") is None  # our own, come back by loopback
    other = Community(id=bytes(32), keys=(bytes([2]) * 32,))
    foreign = seal_beacon(Beacon(port=1, instance=bytes(8), sent_at_ms=T0), community=other,
                          nonce=bytes(24))  # fmt: skip
    assert lan.receive(foreign, "10.0.0.9") is None
    assert lan.receive(b"x" * 500, "10.0.0.9") is None
    assert lan.receive(_beacon()[:-1], "10.0.0.9") is None
    assert learned == []
    assert (lan.opened, lan.dropped) == (0, 2)


async def test_a_flood_is_read_at_the_configured_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    learned: list[str] = []
    lan = _discovery(learned, max_per_s=10.0, burst=20.0)
    flood = [_beacon(port=1000 + i) for i in range(200)]
    for i, datagram in enumerate(flood[:100]):
        lan.receive(datagram, f"10.0.{i}.1")
    assert len(learned) == 20  # the burst, then nothing until tokens come back
    await trio.sleep(1.0)
    for i, datagram in enumerate(flood[100:]):
        lan.receive(datagram, f"10.1.{i}.1")
    assert len(learned) == 30  # one second's worth more
    assert lan.dropped == 170
