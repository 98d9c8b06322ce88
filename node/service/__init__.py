"""The embedding API: `async with open_node(config) as node:` in any trio program (DESIGN §8)."""

from __future__ import annotations

from node.home.config import NodeConfig, load_config
from node.service.node import Node
from node.service.opening import open_node
from node.service.records import Certificate, NodeStatus, PeerInfo

__all__ = [
    "Certificate",
    "Node",
    "NodeConfig",
    "NodeStatus",
    "PeerInfo",
    "load_config",
    "open_node",
]
