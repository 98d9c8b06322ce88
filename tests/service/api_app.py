"""The API under test, in process: a node without a network and its ASGI app behind
an httpx client, shared by the API test modules (tests/service/conftest.py offers
them as the `node` and `client` fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from node.api.app import create_app
from node.home.config import NodeConfig
from node.service import Node, open_node

TOKEN = "t" * 43


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    config = NodeConfig(data_dir=tmp_path / "n", community_id=bytes(32))
    async with open_node(config, network=False) as opened:
        yield opened


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, token=TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as opened:
        yield opened
