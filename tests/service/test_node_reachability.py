"""`[network] reachability_checks` on real nodes (Noise over loopback TCP): peers dial
each other back and `status` says where each node was reached (SPEC §15.2)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import trio

from node.service import NodeConfig, open_node

pytestmark = pytest.mark.slow


def _config(folder: Path, name: str, community: bytes, key: bytes, *bootstrap: str) -> NodeConfig:
    return NodeConfig(
        data_dir=folder / name, community_id=community, community_key=key,
        listen="127.0.0.1:0", bootstrap=bootstrap, reachability_checks=True,
    )  # fmt: skip


async def test_three_nodes_confirm_each_other_and_say_so_in_status(tmp_path: Path) -> None:
    community, key = secrets.token_bytes(32), secrets.token_bytes(32)
    async with open_node(_config(tmp_path, "ann", community, key)) as ann:
        assert ann.listen_address is not None
        async with (
            open_node(_config(tmp_path, "ben", community, key, ann.listen_address)) as ben,
            open_node(_config(tmp_path, "cat", community, key, ann.listen_address)) as cat,
        ):
            nodes = (ann, ben, cat)
            with trio.fail_after(20):
                while True:
                    said = [(await n.status()).reachability for n in nodes]
                    if all(s is not None and s.startswith("reachable at") for s in said):
                        break
                    await trio.sleep(0.2)
            for node in nodes:
                status = await node.status()
                assert status.reachability == f"reachable at {node.listen_address}"
                assert status.advertised == (node.listen_address,)
                assert node.reachability is not None
                assert node.reachability.verdicts.flaps == 0
                assert node.gossip.protocol_errors == 0
