"""Write the API's OpenAPI document: `python -m node.api.openapi > node/api/openapi.json`.

The document is committed, so that app developers can read or generate a
client from it without running a node; a test fails when it drifts from
the code.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio
from fastapi import FastAPI

from node.api.app import create_app
from node.home.config import NodeConfig
from node.service import open_node

__all__ = ["DOCUMENT", "openapi_document", "render"]

DOCUMENT = Path(__file__).with_name("openapi.json")


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (it does not depend on the node behind it)."""
    return app.openapi()


def render() -> str:
    """The committed file's exact text, for an app over a throwaway node."""

    async def build() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as folder:
            config = NodeConfig(data_dir=Path(folder), community_id=bytes(32))
            async with open_node(config, network=False) as node:
                return openapi_document(create_app(node, token="x" * 32))

    return json.dumps(trio.run(build), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
