"""The local HTTP API (DESIGN §8): token-protected, loopback by default, OpenAPI-described."""

from __future__ import annotations

from node.api.app import API_VERSION, create_app
from node.api.server import serve_api

__all__ = ["API_VERSION", "create_app", "serve_api"]
