"""A node invites to, and gossips, addresses a neighbour can dial (issue 21, defects 6, 10)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from node.errors import RequestError
from node.net.addresses import detect_host_addresses
from node.service import NodeConfig, open_node
from protocol.invite import decode_invite

pytestmark = pytest.mark.slow


def config(folder: Path, **fields: object) -> NodeConfig:
    return NodeConfig(
        data_dir=folder, community_id=secrets.token_bytes(32),
        community_key=secrets.token_bytes(32), **fields,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_invites_carry_the_advertised_addresses(tmp_path: Path) -> None:
    advertised = ("198.51.100.7:7400", "[2001:db8::7]:7400")
    made = config(tmp_path, listen="0.0.0.0:0", advertise=advertised)
    async with open_node(made) as node:
        assert decode_invite(node.invite()).bootstrap == advertised
        assert node.peer_manager is not None
        assert node.peer_manager.sample()[:2] == advertised
        once = node.invite(advertise=["node.example.org:1"])
        assert decode_invite(once).bootstrap == ("node.example.org:1",)
        for bad in ("no port", "0.0.0.0:7400", "[::]:1", "198.51.100.7:0"):
            with pytest.raises(RequestError):
                node.invite(advertise=[bad])


async def test_a_wildcard_listener_invites_to_the_machines_addresses(tmp_path: Path) -> None:
    async with open_node(config(tmp_path, listen="0.0.0.0:0")) as node:
        bootstrap = decode_invite(node.invite()).bootstrap
        assert node.peer_manager is not None
        shared = node.peer_manager.sample()
    assert all(not a.startswith("0.0.0.0") for a in (*bootstrap, *shared))
    hosts = [a.rpartition(":")[0] for a in bootstrap]
    assert hosts == list(detect_host_addresses()[:8]) or hosts == ["127.0.0.1"]


async def test_an_offline_node_invites_from_its_config(tmp_path: Path) -> None:
    made = config(tmp_path, listen="0.0.0.0:7400")
    async with open_node(made, network=False) as node:
        bootstrap = decode_invite(node.invite()).bootstrap
    assert all(a.endswith(":7400") and not a.startswith("0.0.0.0") for a in bootstrap)
